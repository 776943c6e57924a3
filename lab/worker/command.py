"""``lab worker``: parse the options, then serve until SIGTERM.

Imported only when the subcommand runs (see :mod:`lab.cli`).
"""

from __future__ import annotations

import argparse

from lab.service_logging import setup_logging
from lab.service_runtime import run_service, service_configure
from lab.worker import settings as worker_settings

configure = service_configure(worker_settings.configure)


def run(args: argparse.Namespace) -> int:
    settings = worker_settings.from_args(args)  # SettingsError -> exit 2 in lab.cli
    setup_logging(args.log_level, settings.name)
    from lab.worker.app import serve  # why: aiohttp and prometheus only once options are valid

    return run_service(serve(settings), args.event_loop)
