"""Logging for the lab's long-running services (``lab grape``, ``lab worker``, ``lab client``).

One format for all three, tagged with the service's name, so ``lab logs`` over twelve
containers reads as one story; the level is a flag (and ``LAB_LOG_LEVEL``) on each.
"""

from __future__ import annotations

import logging

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
"""What ``--log-level`` (``LAB_LOG_LEVEL``) takes (``lab.service_runtime.SERVICE_OPTIONS``)."""


def setup_logging(level: str, tag: str) -> None:
    """Log to stderr as ``time LEVEL tag logger: message``."""
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s %(levelname)s {tag} %(name)s: %(message)s",
    )
