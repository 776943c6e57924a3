"""``lab worker``: parse the options, then serve until SIGTERM.

Imported only when the subcommand runs (see :mod:`lab.cli`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from lab.worker import settings as worker_settings


def configure(parser: argparse.ArgumentParser) -> None:
    worker_settings.configure(parser)
    parser.add_argument("--log-level", default="INFO", help="logging level [default INFO]")


def run(args: argparse.Namespace) -> int:
    settings = worker_settings.from_args(args)  # SettingsError -> exit 2 in lab.cli
    logging.basicConfig(
        level=str(args.log_level).upper(),
        format=f"%(asctime)s %(levelname)s {settings.name} %(name)s: %(message)s",
    )
    from lab.worker.app import serve  # aiohttp and prometheus only once options are valid

    return asyncio.run(serve(settings))
