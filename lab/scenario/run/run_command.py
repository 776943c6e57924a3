"""``lab run FILE``: one scenario on the Compose lab (default) or on local processes.

Exit codes (``lab.verdict``): 0 pass, 1 an expectation (or steady-state bound)
failed, 2 the run could not be carried out (bad file, lab not up, another run holds the
lab, a fault that would not take, interrupted), 3 unknown (the control, the oracle, missed
a known answer, so the run could not tell a regression from a bad day). Before anything
else the run takes the lab's run lock (:mod:`lab.scenario.run.runlock`; a second run is
refused), then the leftovers of a crashed run are undone (``reports/.inflight.json``) and
the run's own folder is reserved. ``--dry-run`` prints the resolved plan and touches
nothing. ``--repeat N`` runs it N times with seeds seed..seed+N-1 into one folder under
the same lock and judges the series on medians (``lab.scenario.run.repeat``). After every run
the per-policy comparison is printed above the verdict, and ``reports/index.html`` is
refreshed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from lab.balancer.policy_file import is_policy_ref
from lab.errors import LabError
from lab.report.render import render_index
from lab.scenario.faults.janitor import cleanup_leftovers
from lab.scenario.faults.marker import default_reports_dir
from lab.scenario.plan.byo import check_compose_policy, compose_root
from lab.scenario.plan.spec import load_scenario
from lab.scenario.run.result import RunResult
from lab.scenario.run.runlock import acquire, lock_path, reserve_run_dir
from lab.scenario.run.runner import run_scenario
from lab.scenario.run.validate_command import describe_plan, seed_arg
from lab.scenario.runtime.compose import ComposeRuntime
from lab.scenario.runtime.local import LocalRuntime
from lab.scenario.runtime.protocol import Runtime
from lab.scenario.runtime.swarm import SwarmRuntime
from lab.stack import shape as shaping
from lab.stack.engine import Engine, Paths, service_name
from lab.swarm import state as swarm_state


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the scenario file (scenarios/*.yaml)")
    parser.add_argument(
        "--runtime",
        choices=("compose", "local", "swarm"),
        default=None,
        help="where to run: the Compose lab (`lab up`), local processes, or the swarm stack "
        "(`lab up --engine swarm`) [the file's, compose]",
    )
    parser.add_argument("--seed", type=seed_arg, default=None, help="override the scenario's seed")
    parser.add_argument(
        "--repeat",
        type=_positive,
        default=1,
        metavar="N",
        help="run N times (seeds seed..seed+N-1) into one folder; judge on the medians",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan; touch nothing")
    parser.add_argument(
        "--fail-fast", action="store_true", help="abort at the first failed expectation"
    )
    parser.add_argument(
        "--reports", type=Path, default=None, help="reports directory [reports/ of the repo]"
    )


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of runs, got {text!r}") from None
    if not 1 <= n <= 1000:
        raise argparse.ArgumentTypeError(f"expected 1 to 1000 runs, got {n}")
    return n


def _remote_swarm() -> bool:
    """Whether the saved swarm is one of other machines (not ``--local-nodes``): a swarm
    run's shape is then not held to this machine's cores."""
    try:
        saved = swarm_state.load(Paths.find())
    except LabError:
        return False
    return saved is not None and not saved.local


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    scenario = load_scenario(args.file, run_as=args.runtime, remote_swarm=_remote_swarm())
    if args.dry_run:
        Console().print(describe_plan(scenario))
        return 0
    reports: Path = args.reports or default_reports_dir()
    kind = args.runtime or getattr(scenario, "runtime", "compose")
    command = shlex.join(["lab", "run", *sys.argv[2:]])
    lock = acquire(lock_path(kind, reports), scenario=scenario.name, command=command)
    try:
        _need_analysis()  # after the lock: a refused run answers at once, before slow imports
        if lock.stale is not None:
            console.log(f"a dead run's lock was left behind: {lock.stale.describe()}; taken over")
        report = cleanup_leftovers(reports, log=lambda m: console.log(m))
        if report.found:
            console.log(f"cleaned up after run {report.run_id}")
        shaped = _shaped(scenario, console) if kind == "compose" else contextlib.nullcontext()
        with shaped:
            if args.repeat > 1:
                from lab.scenario.run.repeat import run_series  # why: numpy, after _need_analysis

                return run_series(scenario, args, reports, console, command, run_once)
            run_id, _ = reserve_run_dir(reports, scenario.name)
            result = run_once(scenario, args, reports, run_id, args.seed, console, command)
    finally:
        lock.release()
    _refresh_index(reports, console)
    return result.exit_code


def run_once(
    scenario: Any,
    args: argparse.Namespace,
    reports: Path,
    run_id: str,
    seed: int | None,
    console: Console,
    command: str,
    *,
    marker_dir: Path | None = None,
    summary_extra: dict[str, Any] | None = None,
) -> RunResult:
    """One run into ``reports/run_id``, its outcome printed; the runtime closed after."""
    kind = args.runtime or getattr(scenario, "runtime", "compose")
    runtime = _runtime(kind, scenario, reports / run_id / "logs", seed)
    try:
        result = asyncio.run(
            run_scenario(
                scenario,
                runtime=runtime,
                reports_dir=reports,
                seed=seed,
                fail_fast=args.fail_fast,
                console=console,
                run_id=run_id,
                command=command,
                marker_dir=marker_dir,
                summary_extra=summary_extra,
            )
        )
    finally:
        runtime.close()
    for r in result.rollback:
        if not r.ok:
            console.print(f"[red]rollback: {r.label}: {r.error}[/red]")
    where = result.report or result.run_dir
    if result.abort_reason:
        # escaped: the reason may quote code ([brackets] of a policy's traceback)
        console.print(f"[red]aborted[/red]: {escape(result.abort_reason)}; see {where}")
    else:
        why = (result.summary or {}).get("verdict_reason")
        tail = f" ({why})" if why else ""
        console.print(f"{result.verdict}{tail}: {where} (wall {result.wall_s:.1f}s)")
    return result


@contextlib.contextmanager
def _shaped(scenario: Any, console: Console) -> Iterator[None]:
    """The Compose lab in the scenario's shape for the run(s), then back to compose.yaml's.

    Under the run lock, so no other run sees a lab mid-shape; the restore runs on every
    way out (a failed shape too: whatever it half did is undone by reconciling to BASE).
    A learner's policy is part of the shape (``client-byo``), so it too is started for the
    run only and removed after it, whatever way the run ends.
    """

    want = shape_of(scenario)
    engine = Engine.connect()
    try:
        try:
            if want != shaping.BASE or _off_base(engine):
                t0 = time.monotonic()
                for line in shaping.apply(engine, want, log=lambda m: console.log(m)):
                    console.log(f"shape: {line}")
                console.log(f"shape: the lab runs {_describe(want)} ({time.monotonic() - t0:.1f}s)")
            yield
        finally:
            if want != shaping.BASE:
                t0 = time.monotonic()
                shaping.apply(engine, shaping.BASE, log=lambda m: console.log(m))
                console.log(f"shape: back to compose.yaml's lab ({time.monotonic() - t0:.1f}s)")
    finally:
        engine.close()


def shape_of(scenario: Any) -> shaping.Shape:
    """The lab a Compose scenario needs: its counts, profiled clients and learner's client.

    A compose file was validated for this already (one learner's policy, in
    ``policies/``); a ``runtime: local`` file run with ``--runtime compose`` was not, so
    its learner's policy is checked here, before the lab is touched.
    """
    topo = scenario.topology
    profiled = tuple(c.name for c in scenario.clients if c.name in PROFILED_CLIENTS)
    mine = [c for c in scenario.clients if is_policy_ref(c.policy)]
    if len(mine) > 1:
        raise LabError(
            f"{scenario.path}: the compose lab runs one policy of yours per run "
            f"({shaping.BYO_SERVICE}); this one names {len(mine)}: "
            f"{', '.join(c.policy for c in mine)} (run it with --runtime local)"
        )
    byo = mine[0] if mine else None
    if byo is not None and getattr(scenario, "runtime", "compose") != "compose":
        check_compose_policy(byo.policy, compose_root())
    return shaping.Shape(
        grapes=topo.grapes,
        workers=topo.workers,
        clients=profiled,
        worker_concurrency=topo.worker_concurrency,
        byo=None if byo is None else shaping.Byo(byo.name, byo.policy),
    )


PROFILED_CLIENTS = (
    "client-least_request",
    "client-peak_ewma",
    "client-prequal",
    "client-c3",
    "client-adaptive_hedged",
)
"""compose.yaml's clients under the ``policies`` profile (started only for a run naming them)."""


def _off_base(engine: Any) -> bool:
    """The lab is not compose.yaml's base (a killed run's shape): extra containers run,
    or a base worker still has a concurrency bound."""

    extra = {f"worker-{i}" for i in range(shaping.BASE_WORKERS + 1, shaping.MAX_WORKERS + 1)}
    extra |= {f"grape-{i}" for i in range(shaping.BASE_GRAPES + 1, shaping.MAX_GRAPES + 1)}
    extra |= {*PROFILED_CLIENTS, shaping.BYO_SERVICE}
    for c in engine.containers(all=True):
        if service_name(c) in extra:
            return True
        env = (c.attrs.get("Config") or {}).get("Env") or []
        if any(str(e).startswith(f"{shaping.CONCURRENCY_ENV}=") for e in env):
            return True
    return False


def _describe(shape: Any) -> str:
    parts = [f"{shape.grapes} grapes", f"{shape.workers} workers"]
    if shape.worker_concurrency:
        parts.append(f"concurrency {shape.worker_concurrency}")
    if shape.clients:
        parts.append("+ " + ", ".join(shape.clients))
    if shape.byo is not None:
        parts.append(f"+ {shaping.BYO_SERVICE} as {shape.byo.name} ({shape.byo.policy})")
    return ", ".join(parts)


def _need_analysis() -> None:
    """Judging needs the ``analysis`` extra; say so before the lab is touched."""
    try:
        import numpy  # noqa: F401
        import scipy  # noqa: F401
    except ImportError as exc:
        raise LabError(
            f"lab run judges runs with numpy and scipy ({exc.name} is missing): "
            "pip install 'grenache-lab[analysis]' (make venv installs it)"
        ) from None


def _refresh_index(reports: Path, console: Console) -> None:
    try:
        render_index(reports)
    except Exception as exc:  # the run's own report and verdict stand without the index
        console.print(f"[yellow]index not refreshed: {type(exc).__name__}: {exc}[/yellow]")


def _runtime(kind: str, scenario: object, logdir: Path, seed: int | None) -> Runtime:
    if kind == "compose":
        return ComposeRuntime.connect()
    if kind == "local":
        topo = getattr(scenario, "topology", None)
        clients = [(c.name, c.policy, bool(c.gossip)) for c in getattr(scenario, "clients", ())]
        return LocalRuntime.launch(
            grapes=int(getattr(topo, "grapes", 3)),
            workers=int(getattr(topo, "workers", 3)),
            clients=clients,
            logdir=logdir,
            seed=int(seed if seed is not None else getattr(scenario, "seed", 0)),
            worker_concurrency=int(getattr(topo, "worker_concurrency", 0)),
        )
    if kind == "swarm":
        return _fitting(SwarmRuntime.connect(), scenario)
    raise LabError(f"--runtime: unknown runtime {kind!r} (compose, local or swarm)")


def _fitting(runtime: SwarmRuntime, scenario: object) -> SwarmRuntime:
    """The swarm stack, if it runs the scenario's workers and grapes (it is not reshaped
    per run, as the Compose lab is: ``lab up --engine swarm --workers N`` sets them)."""
    topo = getattr(scenario, "topology", None)
    have = {
        k: sum(1 for t in runtime.targets().values() if t.kind == k) for k in ("worker", "grape")
    }
    want = {"worker": int(getattr(topo, "workers", 3)), "grape": int(getattr(topo, "grapes", 3))}
    if have != want:
        runtime.close()
        raise LabError(
            f"the swarm stack runs {have['worker']} workers and {have['grape']} grapes; this "
            f"scenario wants {want['worker']} and {want['grape']}: `lab up --engine swarm "
            f"--workers {want['worker']} --grapes {want['grape']}` redeploys it"
        )
    return runtime
