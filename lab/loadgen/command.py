"""``lab client``: parse the options, then serve until SIGTERM.

Imported only when the subcommand runs (see :mod:`lab.cli`), so ``lab --help`` never
pays for aiohttp or the balancer.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from lab.loadgen import settings as client_settings


def configure(parser: argparse.ArgumentParser) -> None:
    client_settings.configure(parser)
    parser.add_argument("--log-level", default="INFO", help="logging level [default INFO]")


def run(args: argparse.Namespace) -> int:
    settings = client_settings.from_args(args)  # SettingsError -> exit 2 in lab.cli
    logging.basicConfig(
        level=str(args.log_level).upper(),
        format=f"%(asctime)s %(levelname)s {settings.name} %(name)s: %(message)s",
    )
    from lab.loadgen.app import serve  # heavy imports only once the options are valid

    return asyncio.run(serve(settings))
