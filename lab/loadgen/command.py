"""``lab client``: parse the options, then serve until SIGTERM.

Imported only when the subcommand runs (see :mod:`lab.cli`), so ``lab --help`` never
pays for aiohttp or the balancer.
"""

from __future__ import annotations

import argparse

from lab.loadgen import settings as client_settings
from lab.service_logging import setup_logging
from lab.service_runtime import run_service, service_configure

configure = service_configure(client_settings.configure)


def run(args: argparse.Namespace) -> int:
    settings = client_settings.from_args(args)  # SettingsError -> exit 2 in lab.cli
    setup_logging(args.log_level, settings.name)
    from lab.loadgen.app import serve  # why: heavy imports only once the options are valid

    return run_service(serve(settings), args.event_loop)
