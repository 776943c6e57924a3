"""The ``lab`` command: one entry point, subcommands loaded lazily.

Each subcommand lives in the module that owns its job and exposes ``configure(parser)``
and ``run(args) -> int``. Modules are imported only when their subcommand runs, so
``lab --help`` stays fast and a service image needs nothing it does not use.

Exit codes: 0 success, 1 an expectation failed (``lab run``), 2 the command could not be
carried out (bad input, missing engine, ...), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from lab import __version__
from lab.errors import LabError


@dataclass(frozen=True)
class Subcommand:
    name: str
    module: str
    help: str


SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand("grape", "lab.grape.command", "run a grape: a DHT node with Grenache's HTTP API"),
    Subcommand(
        "worker", "lab.worker.command", "run a worker: a Grenache RPC service with fault knobs"
    ),
    Subcommand("client", "lab.loadgen.command", "run a client service: load generator + policy"),
    Subcommand("up", "lab.stack.up", "build what is missing and start the Compose lab"),
    Subcommand(
        "down", "lab.stack.down", "stop the lab and remove its containers, networks, toxics"
    ),
    Subcommand("status", "lab.stack.status", "show the lab's health, discovery, proxies and load"),
    Subcommand("logs", "lab.stack.logs", "show (or follow) the lab services' logs"),
    Subcommand(
        "validate", "lab.scenario.run.validate_command", "check scenario files; touch nothing"
    ),
    Subcommand(
        "run", "lab.scenario.run.run_command", "run a scenario: faults, load, checks, report"
    ),
    Subcommand("report", "lab.report.command", "re-render a run's HTML report from its journal"),
    Subcommand(
        "challenge", "lab.learn.challenge_command", "grade a policy on the challenge ladder"
    ),
    Subcommand("lookup", "lab.learn.lookup_command", "ask each grape which peers serve a service"),
    Subcommand("call", "lab.learn.call_command", "one RPC through a policy, every attempt shown"),
    Subcommand("peers", "lab.learn.peers_command", "a client's live view of its peers"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lab",
        description=(
            "grenache-lab: grapes, workers and adaptive clients on a Compose network, "
            "with real Toxiproxy and container faults and recovery reports."
        ),
    )
    parser.add_argument("--version", action="version", version=f"grenache-lab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in SUBCOMMANDS:
        sub.add_parser(cmd.name, help=cmd.help, description=cmd.help, add_help=False)
    return parser


def _subparser(cmd: Subcommand) -> tuple[argparse.ArgumentParser, object]:
    module = importlib.import_module(cmd.module)
    parser = argparse.ArgumentParser(prog=f"lab {cmd.name}", description=cmd.help)
    module.configure(parser)
    return parser, module


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    top = build_parser()
    if not args or args[0] in {"-h", "--help"}:
        top.print_help()
        return 0
    if args[0] == "--version":
        print(f"grenache-lab {__version__}")
        return 0
    by_name = {c.name: c for c in SUBCOMMANDS}
    cmd = by_name.get(args[0])
    if cmd is None:
        top.print_usage(sys.stderr)
        known = ", ".join(by_name)
        print(f"lab: unknown command {args[0]!r}; try one of: {known}", file=sys.stderr)
        return 2
    try:
        parser, module = _subparser(cmd)
        ns = parser.parse_args(args[1:])
        result = module.run(ns)  # type: ignore[attr-defined]
        return int(result or 0)
    except KeyboardInterrupt:
        print("lab: interrupted", file=sys.stderr)
        return 130
    except LabError as exc:
        report = getattr(exc, "report", None)  # a policy's fault carries its traceback
        print(f"lab {cmd.name}: {report() if callable(report) else exc}", file=sys.stderr)
        return 2
