"""Runs one scenario: leftovers, health, clock probe, load, faults on time, checks, report.

Phases (each recorded in ``RunMeta.phases`` with its monotonic start and end):

1. ``prepare``: undo a crashed run's leftovers, check Toxiproxy (>= 2.5) and the lab's
   health, probe every client's clock against the host's (the offset bound goes into
   the run's meta), reset the oracle and set each client's gossip switch;
2. ``load``: start the load on every client with the same seed-derived arrivals (each
   load on a lease the watch renews), then execute the plan's inject/heal steps at their
   times (deadline-based, from the load's start) while the collector streams histories
   into the journal and the watch (:mod:`lab.scenario.runtime.watch`) aborts the run
   within ~1 s if Toxiproxy or a client is lost;
3. ``drain``: stop the load, collect until the clients have nothing new;
4. ``report``: summary.json, JUnit XML, report.html (:mod:`lab.scenario.run.verdict_files`).

Rollback always runs (``finally``), whatever ends the run: an exception, a failed fault,
a failed expectation with fail-fast, SIGINT or SIGTERM (turned into a cancellation of
the run with the signal as the abort reason). An aborted run still writes its journal,
summary and report, marked aborted with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lab.errors import LabError
from lab.history import History, JournalWriter, RunMeta
from lab.lab_client import HttpLabClient, LabClient
from lab.scenario.checks.noise import NoiseMonitor
from lab.scenario.faults.base import Fault, FaultContext
from lab.scenario.faults.janitor import cleanup_leftovers
from lab.scenario.faults.kinds import fault_target, make_fault
from lab.scenario.faults.marker import MARKER
from lab.scenario.faults.rollback import Rollback, UndoResult, clean_network
from lab.scenario.run.collector import Collector
from lab.scenario.run.meta_notes import note_clock, note_watch
from lab.scenario.run.progress import NullProgress, Progress
from lab.scenario.run.result import RunResult
from lab.scenario.run.runlock import reserve_run_dir
from lab.scenario.run.verdict_files import write_verdict_files
from lab.scenario.runtime.protocol import ClockProbe, Runtime, Target, clients, probe_clock
from lab.scenario.runtime.watch import Watch
from lab.toxiproxy_adapter import ToxiproxyAdapter
from lab.verdict import Verdict


class PlannedStepLike(Protocol):
    at_s: float
    action: str
    fault_id: str
    kind: str
    target: str
    params: Mapping[str, Any]


class RunAborted(LabError):
    """The run could not be carried out; the message is the abort reason."""


@dataclass
class _Run:
    """The mutable state of one run, owned by :func:`run_scenario`."""

    scenario: Any
    runtime: Runtime
    run_dir: Path
    seed: int
    fail_fast: bool
    progress: NullProgress
    history: History
    journal: JournalWriter
    rollback: Rollback
    lab: LabClient
    toxi: ToxiproxyAdapter | None = None
    faults: dict[str, Fault] = field(default_factory=dict)
    faulty: dict[str, tuple[str, ...]] = field(default_factory=dict)
    clients: list[Target] = field(default_factory=list)
    load_t0: float | None = None
    abort_reason: str | None = None
    summary_extra: dict[str, Any] = field(default_factory=dict)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        entry: dict[str, Any] = {"name": name, "start": time.monotonic(), "end": None}
        self.history.meta.phases.append(entry)
        self.progress.phase(name)
        try:
            yield
        finally:
            entry["end"] = time.monotonic()
            self.journal.write(self.history.meta)


async def run_scenario(
    scenario: Any,
    *,
    runtime: Runtime,
    reports_dir: Path,
    seed: int | None = None,
    fail_fast: bool = False,
    console: Any = None,
    run_id: str | None = None,
    command: str = "",
    health_timeout: float = 30.0,
    marker_dir: Path | None = None,
    summary_extra: Mapping[str, Any] | None = None,
    lab: LabClient | None = None,
) -> RunResult:
    """Run ``scenario`` on ``runtime``; never raises for a run that started (see RunResult).

    ``lab`` speaks to the clients' control plane (default: over HTTP, for this run).

    The run goes to ``reports_dir/run_id``; the crash marker (``.inflight.json``) lives
    in ``marker_dir`` (default ``reports_dir``), so the runs of a series, one folder
    down, keep theirs where the next ``lab run`` looks. ``summary_extra`` adds sections
    to summary.json (a series says which run of how many this is).
    """
    owned: HttpLabClient | None = None
    if lab is None:  # the run's own: its session opens on first use and closes at the end
        lab = owned = HttpLabClient()
    marker_dir = reports_dir if marker_dir is None else marker_dir
    wall0, mono0 = time.time(), time.monotonic()
    seed = scenario.seed if seed is None else seed
    plan = tuple(scenario.plan(seed))
    if run_id is None:
        run_id, run_dir = reserve_run_dir(reports_dir, scenario.name, wall0)
    else:  # the caller reserved it (reserve_run_dir), e.g. to put the runtime's logs there
        run_dir = reports_dir / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
    if getattr(scenario, "text", ""):
        (run_dir / "scenario.yaml").write_text(scenario.text)
    meta = RunMeta(
        run_id=run_id,
        scenario=scenario.name,
        seed=seed,
        started_wall=wall0,
        started_mono=mono0,
        duration_s=float(scenario.duration_s),
        command=command,
        versions={"runtime": runtime.name},
    )
    journal = JournalWriter(run_dir / "journal.jsonl")
    journal.write(meta)
    rollback = Rollback(
        marker_dir / MARKER,
        info={"run_id": run_id, "run_dir": str(run_dir)},
        info_source=runtime.inflight_info,
    )
    progress: NullProgress = NullProgress() if console is None else Progress.live(console, scenario)
    run = _Run(
        scenario=scenario,
        runtime=runtime,
        run_dir=run_dir,
        seed=seed,
        fail_fast=fail_fast,
        progress=progress,
        history=History(meta=meta),
        journal=journal,
        rollback=rollback,
        lab=lab,
        summary_extra=dict(summary_extra or {}),
    )
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []

    def on_signal(signum: signal.Signals) -> None:
        if run.abort_reason is None:
            run.abort_reason = f"interrupted by {signal.Signals(signum).name}"
            if main is not None:
                main.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
    results: list[UndoResult] = []
    try:
        with progress:
            try:
                await _execute(run, plan, marker_dir, health_timeout)
            except asyncio.CancelledError:
                run.abort_reason = run.abort_reason or "cancelled"
            except RunAborted as exc:
                run.abort_reason = str(exc)
            except LabError as exc:
                run.abort_reason = f"{type(exc).__name__}: {exc}"
            except Exception as exc:  # a bug must still end in rollback and a report
                run.abort_reason = f"internal error: {type(exc).__name__}: {exc}"
            finally:
                results = await asyncio.shield(asyncio.to_thread(run.rollback.run))
                for f in run.faults.values():
                    journal.write(f.record)
                _record_rollback(run, results)
            return _finish(run, results, wall0)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        journal.close()
        if owned is not None:
            await owned.close()


async def _execute(run: _Run, plan: tuple[Any, ...], reports_dir: Path, health_t: float) -> None:
    sc, rt = run.scenario, run.runtime
    with run.phase("prepare"):
        await asyncio.to_thread(cleanup_leftovers, reports_dir)
        run.toxi = ToxiproxyAdapter(rt.toxiproxy_api())
        run.history.meta.versions["toxiproxy"] = await asyncio.to_thread(run.toxi.check_version)
        await asyncio.to_thread(clean_network, run.toxi)
        await asyncio.to_thread(rt.check_health, health_t)
        run.clients = clients(rt, list(sc.client_names()))
        for step in plan:  # every target exists before anything is touched
            fault_target(rt, step.kind, step.target)
        probes = [await probe_clock(run.lab, c) for c in run.clients]
        _record_clock(run, probes)
        gossip = {c.name: bool(getattr(c, "gossip", True)) for c in sc.clients}
        for c in run.clients:
            await run.lab.set_gossip(_url(c), gossip[c.name])
            if c.policy == "oracle":
                await run.lab.set_oracle(_url(c), [])
    collector = Collector(run.clients, run.journal, run.history)
    watch = Watch(rt.toxiproxy_api(), run.clients)
    main = asyncio.current_task()

    def lost(reason: str) -> None:  # the watch's verdict: the lab is broken, abort
        if run.abort_reason is None:
            run.abort_reason = reason
            if main is not None:
                main.cancel()

    await collector.skip_existing(run.lab)  # long-lived (Compose) clients hold old runs
    collector.not_before = time.monotonic()
    stop = asyncio.Event()
    poller = asyncio.create_task(collector.run(run.lab, stop))
    ticker = asyncio.create_task(run.progress.follow(collector, run))
    watcher: asyncio.Task[None] | None = None
    noise = NoiseMonitor(run.runtime.service_pids)
    await noise.start()
    try:
        with run.phase("load"):
            body = {
                **sc.load.control_body(float(sc.duration_s), run.seed),
                **watch.start_body(),
            }
            rates = {c.name: getattr(c, "rate", None) for c in sc.clients}
            run.load_t0 = time.monotonic()
            await asyncio.gather(
                *(
                    run.lab.start_load(
                        _url(c),
                        body if rates.get(c.name) is None else {**body, "rate": rates[c.name]},
                    )
                    for c in run.clients
                )
            )
            watcher = asyncio.create_task(watch.run(run.lab, lost), name="watch")
            await _steps(run, plan)
            await _sleep_until(run.load_t0 + float(sc.duration_s))
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
        note_watch(run.history.meta, watch)
        with run.phase("drain"):
            with contextlib.suppress(Exception):  # a dead client must not block the drain
                await asyncio.gather(
                    *(run.lab.stop_load(_url(c)) for c in run.clients),
                    return_exceptions=True,
                )
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(poller, 10.0)
            await collector.drain(run.lab, within_s=5.0)
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await ticker
            run.history.meta.noise = await noise.stop()
    dropped = {k: v for k, v in collector.dropped().items() if v}
    if dropped:
        run.history.meta.history_dropped = dropped
    stale = {k: v for k, v in collector.stale().items() if v}
    if stale:
        run.history.meta.history_stale = stale


async def _steps(run: _Run, plan: tuple[Any, ...]) -> None:
    assert run.load_t0 is not None and run.toxi is not None
    ctx = FaultContext(runtime=run.runtime, toxiproxy=run.toxi)
    for step in plan:
        await _sleep_until(run.load_t0 + float(step.at_s))
        if step.action == "inject":
            t = fault_target(run.runtime, step.kind, step.target)
            fault = make_fault(step.fault_id, step.kind, t, dict(step.params), ctx)
            run.faults[fault.id] = fault
            run.rollback.arm(fault)  # before: a crash mid-inject is still undone
            try:
                rec = await asyncio.to_thread(fault.inject)
            finally:
                run.journal.write(fault.record)
            run.rollback.refresh(fault)
            run.history.faults.append(rec)
            run.progress.fault(rec)
            if rec.ended is not None:  # instant faults (restart) are over already
                await _heal(run, fault)
            else:
                run.faulty[fault.id] = rec.peers
                if rec.peers:  # a fault on a client or grape changes no oracle's list,
                    await _tell_oracle(run)  # and a paused oracle cannot answer
        elif step.action == "heal":
            healing = run.faults.get(step.fault_id)
            if healing is None:
                raise RunAborted(f"plan heals {step.fault_id!r}, which was never injected")
            await _heal(run, healing)
            if run.faulty.pop(healing.id, ()):
                await _tell_oracle(run)
            if run.fail_fast:
                _fail_fast(run)
        else:
            raise RunAborted(f"plan step with unknown action {step.action!r}")


async def _heal(run: _Run, fault: Fault) -> None:
    try:
        await asyncio.to_thread(fault.heal)
    finally:
        run.journal.write(fault.record)
    run.rollback.disarm(f"fault:{fault.id}")
    for i, f in enumerate(run.history.faults):
        if f.id == fault.id:
            run.history.faults[i] = fault.record
    run.progress.fault(fault.record)


def _fail_fast(run: _Run) -> None:
    """With --fail-fast, judge the history so far after each heal; a failure aborts."""
    try:
        from lab.scenario.output.summary import build_summary  # why: numpy, only when judging
    except ImportError:
        return
    try:
        summary = build_summary(run.history, run.scenario)
    except Exception:  # the full check runs again at the end and reports its error
        return
    failed = [v for v in _verdicts(summary) if Verdict.parse(v.get("verdict")) is Verdict.FAIL]
    if failed:
        v = failed[0]
        raise RunAborted(
            f"expectation failed (fail-fast): {v.get('client')} {v.get('metric')} "
            f"{v.get('bound')} measured {v.get('measured')}"
        )


def _verdicts(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    found = summary.get("expectations") or []
    return [v for v in found if isinstance(v, dict)]


async def _tell_oracle(run: _Run) -> None:
    faulty = sorted({p for peers in run.faulty.values() for p in peers})
    for c in run.clients:
        if c.policy == "oracle":
            await run.lab.set_oracle(_url(c), faulty)


def _url(client: Target) -> str:
    if client.control_url is None:  # runtimes give every client one; a bug otherwise
        raise RunAborted(f"client {client.name} has no control URL")
    return client.control_url


def _record_clock(run: _Run, probes: list[ClockProbe]) -> None:
    bad = note_clock(run.history.meta, probes)
    if bad:
        raise RunAborted(
            "clients do not share the host's CLOCK_MONOTONIC: "
            + ", ".join(f"{p.client} offset {p.offset * 1e3:.1f} ms" for p in bad)
        )


def _record_rollback(run: _Run, results: list[UndoResult]) -> None:
    run.history.meta.phases.append(
        {"name": "rollback", "t": time.monotonic(), "steps": [r.to_json() for r in results]}
    )
    failed = [r for r in results if not r.ok]
    if failed and run.abort_reason is None:
        run.abort_reason = "rollback failed: " + "; ".join(f"{r.label}: {r.error}" for r in failed)


def _finish(run: _Run, results: list[UndoResult], wall0: float) -> RunResult:
    meta = run.history.meta
    meta.ended_mono = time.monotonic()
    meta.status = "aborted" if run.abort_reason else "completed"
    meta.abort_reason = run.abort_reason
    run.journal.write(meta)
    written = write_verdict_files(
        run.history,
        run.scenario,
        run.run_dir,
        aborted=run.abort_reason,
        summary_extra=run.summary_extra,
    )
    if written.checks_error is not None and run.abort_reason is None:
        run.abort_reason = written.checks_error
    summary, verdict, report = written.summary, written.verdict, written.report
    if run.abort_reason:
        verdict = Verdict.ABORTED
    result = RunResult(
        run_id=meta.run_id,
        run_dir=run.run_dir,
        status=meta.status,
        verdict=verdict,
        exit_code=verdict.exit_code,
        abort_reason=run.abort_reason,
        summary=summary,
        rollback=results,
        wall_s=time.time() - wall0,
        report=report,
    )
    run.progress.final(result)
    return result


async def _sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


ConsoleFactory = Callable[[], Any]
