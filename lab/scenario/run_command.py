"""``lab run FILE``: one scenario on the Compose lab (default) or on local processes.

Exit codes: 0 every expectation met, 1 an expectation failed, 2 the run could not be
carried out (bad file, lab not up, another run holds the lab, a fault that would not
take, interrupted). Before anything else the run takes the lab's run lock
(:mod:`lab.scenario.runlock`; a second run is refused), then the leftovers of a crashed
run are undone (``reports/.inflight.json``) and the run's own folder is reserved.
``--dry-run`` prints the resolved plan and touches nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from pathlib import Path

from rich.console import Console

from lab.errors import LabError
from lab.scenario.rollback import cleanup_leftovers, default_reports_dir
from lab.scenario.runlock import acquire, lock_path, reserve_run_dir
from lab.scenario.runner import run_scenario
from lab.scenario.runtime import Runtime
from lab.scenario.validate_command import seed_arg


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the scenario file (scenarios/*.yaml)")
    parser.add_argument(
        "--runtime",
        choices=("compose", "local"),
        default=None,
        help="where to run: the Compose lab (`lab up`) or local processes [the file's, compose]",
    )
    parser.add_argument("--seed", type=seed_arg, default=None, help="override the scenario's seed")
    parser.add_argument("--dry-run", action="store_true", help="print the plan; touch nothing")
    parser.add_argument(
        "--fail-fast", action="store_true", help="abort at the first failed expectation"
    )
    parser.add_argument(
        "--reports", type=Path, default=None, help="reports directory [reports/ of the repo]"
    )


def run(args: argparse.Namespace) -> int:
    from lab.scenario.spec import load_scenario

    console = Console(stderr=True)
    scenario = load_scenario(args.file)
    if args.dry_run:
        from lab.scenario.validate_command import describe_plan

        Console().print(describe_plan(scenario))
        return 0
    reports: Path = args.reports or default_reports_dir()
    kind = args.runtime or getattr(scenario, "runtime", "compose")
    command = shlex.join(["lab", "run", *sys.argv[2:]])
    lock = acquire(lock_path(kind, reports), scenario=scenario.name, command=command)
    try:
        if lock.stale is not None:
            console.log(f"a dead run's lock was left behind: {lock.stale.describe()}; taken over")
        report = cleanup_leftovers(reports, log=lambda m: console.log(m))
        if report.found:
            console.log(f"cleaned up after run {report.run_id}")
        run_id, run_dir = reserve_run_dir(reports, scenario.name)
        runtime = _runtime(kind, scenario, run_dir / "logs", args.seed)
        try:
            result = asyncio.run(
                run_scenario(
                    scenario,
                    runtime=runtime,
                    reports_dir=reports,
                    seed=args.seed,
                    fail_fast=args.fail_fast,
                    console=console,
                    run_id=run_id,
                    command=command,
                )
            )
        finally:
            runtime.close()
    finally:
        lock.release()
    for r in result.rollback:
        if not r.ok:
            console.print(f"[red]rollback: {r.label}: {r.error}[/red]")
    where = result.report or result.run_dir
    if result.abort_reason:
        console.print(f"[red]aborted[/red]: {result.abort_reason}; see {where}")
    else:
        console.print(f"{result.verdict}: {where} (wall {result.wall_s:.1f}s)")
    return result.exit_code


def _runtime(kind: str, scenario: object, logdir: Path, seed: int | None) -> Runtime:
    if kind == "compose":
        from lab.scenario.runtime_compose import ComposeRuntime

        return ComposeRuntime.connect()
    if kind == "local":
        from lab.scenario.runtime_local import LocalRuntime

        topo = getattr(scenario, "topology", None)
        clients = [(c.name, c.policy, bool(c.gossip)) for c in getattr(scenario, "clients", ())]
        return LocalRuntime.launch(
            grapes=int(getattr(topo, "grapes", 3)),
            workers=int(getattr(topo, "workers", 3)),
            clients=clients,
            logdir=logdir,
            seed=int(seed if seed is not None else getattr(scenario, "seed", 0)),
        )
    raise LabError(f"--runtime: unknown runtime {kind!r} (compose or local)")
