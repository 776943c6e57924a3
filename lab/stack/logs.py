"""``lab logs``: the lab services' logs through Compose (follow, tail, pick services)."""

from __future__ import annotations

import argparse

from lab.stack.engine import Engine


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("services", nargs="*", metavar="SERVICE", help="e.g. grape-1 worker-2")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    parser.add_argument("--tail", default="200", help="lines per service from the end [200]")
    parser.add_argument("-t", "--timestamps", action="store_true", help="show timestamps")


def run(args: argparse.Namespace) -> int:
    engine = Engine.connect()
    try:
        argv = ["logs", "--tail", str(args.tail)]
        if args.follow:
            argv.append("--follow")
        if args.timestamps:
            argv.append("--timestamps")
        engine.compose(*argv, *args.services, capture=False, timeout=None)
        return 0
    finally:
        engine.close()
