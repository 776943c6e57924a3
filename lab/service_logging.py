"""Logging for the lab's long-running services (``lab grape``, ``lab worker``, ``lab client``).

One format for all three, tagged with the service's name, so ``lab logs`` over twelve
containers reads as one story; the level is a flag (and ``LAB_LOG_LEVEL``) on each.
"""

from __future__ import annotations

import argparse
import logging

from lab.settings import add_option, one_of

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


parse_level = one_of(LEVELS, str.upper)


def add_log_level_option(parser: argparse.ArgumentParser) -> None:
    """``--log-level`` / ``LAB_LOG_LEVEL`` (DEBUG, INFO, WARNING, ERROR)."""
    add_option(
        parser,
        "--log-level",
        env="LAB_LOG_LEVEL",
        parse=parse_level,
        default="INFO",
        help="logging level: DEBUG, INFO, WARNING or ERROR",
    )


def setup_logging(level: str, tag: str) -> None:
    """Log to stderr as ``time LEVEL tag logger: message``."""
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s %(levelname)s {tag} %(name)s: %(message)s",
    )
