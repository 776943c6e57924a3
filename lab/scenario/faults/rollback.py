"""Rollback: every injected fault is undone on every exit path, even after ``kill -9``.

Two layers, because one is not enough:

1. In-process: :class:`Rollback` is a stack of undo actions. The runner *arms* a fault
   before injecting it (its undo is idempotent and copes with a half-applied fault) and
   *disarms* it once healed. :meth:`Rollback.run` tries every remaining undo in reverse,
   each guarded, records each result and returns the errors; the runner calls it in a
   ``finally`` that exceptions, a failed expectation with fail-fast, Ctrl-C (SIGINT) and
   SIGTERM all pass through.
2. Across processes: a marker file ``reports/.inflight.json`` says what is injected where.
   It is written *before* each injection and removed once rollback succeeded, so a run
   killed with ``-9`` leaves it behind, and :func:`cleanup_leftovers` (called first by the
   next ``lab run`` and by ``lab down``) undoes it from the file alone: removes our toxics
   (named ``lab-...``) and re-enables our proxies, unpauses, starts and reconnects
   containers, restores worker behaviour, removes network-fault helpers and chains,
   stops a dead local run's processes, and stops the load of a dead Compose run's
   clients (their containers outlive the run).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.errors import FaultError, LabError, RuntimeUnavailable
from lab.lab_client import ControlError, HttpLabClient, LabClient, http_json
from lab.netfault.cleanup import undo_netfault_leftovers
from lab.scenario.faults.base import Fault
from lab.scenario.faults.toxic import TOXIC_PREFIX
from lab.scenario.runtime.compose import undo_leftovers
from lab.stack.engine import Paths
from lab.toxiproxy_adapter import ToxiproxyAdapter

MARKER = ".inflight.json"


def default_reports_dir() -> Path:
    """``reports/`` of the repository when lab runs from its tree, else of the cwd."""
    try:
        return Paths.find().root / "reports"
    except LabError:
        return Path.cwd() / "reports"


@dataclass(frozen=True, slots=True)
class UndoResult:
    """One undo action's outcome, for the journal and the summary."""

    label: str
    ok: bool
    error: str | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "ok": self.ok, "error": self.error, "seconds": self.seconds}


@dataclass
class _Entry:
    key: str
    label: str
    undo: Callable[[], None]
    leftover: dict[str, Any] | None


@dataclass
class Rollback:
    """The undo stack plus its marker file (``None``: no marker, e.g. in unit tests)."""

    marker: Path | None
    info: dict[str, Any] = field(default_factory=dict)
    info_source: Callable[[], dict[str, Any]] | None = None  # fresh facts (pids change)
    results: list[UndoResult] = field(default_factory=list)
    _stack: list[_Entry] = field(default_factory=list)
    _failed: list[dict[str, Any]] = field(default_factory=list)

    # -- building the stack -------------------------------------------------------------

    def push(
        self,
        key: str,
        label: str,
        undo: Callable[[], None],
        leftover: dict[str, Any] | None = None,
    ) -> None:
        """Register an undo (and write the marker) *before* the action it undoes."""
        self._stack.append(_Entry(key, label, undo, leftover))
        self._write_marker()

    def arm(self, fault: Fault) -> None:
        """Register ``fault``'s undo before injecting it."""
        self.push(
            f"fault:{fault.id}",
            f"undo {fault.kind} {fault.id} on {fault.target.name}",
            fault.undo,
            fault.leftover(),
        )

    def refresh(self, fault: Fault) -> None:
        """Re-write the marker after injecting (a behaviour fault now knows what to restore)."""
        for e in self._stack:
            if e.key == f"fault:{fault.id}":
                e.leftover = fault.leftover()
        self._write_marker()

    def disarm(self, key: str) -> None:
        """Forget an undo whose action was reversed normally (a healed fault)."""
        self._stack = [e for e in self._stack if e.key != key]
        self._write_marker()

    def pending(self) -> list[str]:
        return [e.label for e in self._stack]

    # -- running it ---------------------------------------------------------------------

    def run(self) -> list[UndoResult]:
        """Try every undo, last first; SIGINT/SIGTERM cannot stop it halfway.

        Returns this call's results (also appended to ``results``); the marker is removed
        only when every undo succeeded, so a failed one is retried by cleanup_leftovers.
        """
        done: list[UndoResult] = []
        with _signals_deferred():
            while self._stack:
                entry = self._stack.pop()
                t0 = time.monotonic()
                try:
                    entry.undo()
                except Exception as exc:  # every undo is tried; errors are collected
                    done.append(
                        UndoResult(entry.label, False, f"{type(exc).__name__}: {exc}",
                                   time.monotonic() - t0)
                    )  # fmt: skip
                    if entry.leftover is not None:
                        self._failed.append(entry.leftover)
                else:
                    done.append(UndoResult(entry.label, True, None, time.monotonic() - t0))
            if self._failed:
                self._write_marker(extra=self._failed)
            else:
                self.remove_marker()
        self.results.extend(done)
        return done

    def remove_marker(self) -> None:
        if self.marker is not None:
            with contextlib.suppress(FileNotFoundError):
                self.marker.unlink()

    def _write_marker(self, extra: list[dict[str, Any]] | None = None) -> None:
        if self.marker is None:
            return
        leftovers = [e.leftover for e in self._stack if e.leftover is not None]
        data = {
            **self.info,
            **(self._fresh_info()),
            "pid": os.getpid(),
            "written_wall": time.time(),
            "faults": leftovers + list(extra or []),
        }
        write_marker(self.marker, data)

    def _fresh_info(self) -> dict[str, Any]:
        if self.info_source is None:
            return {}
        try:
            return self.info_source()
        except Exception:  # the marker must still be written; stale facts beat none
            return {}


def write_marker(path: Path, data: dict[str, Any]) -> None:
    """Atomically (rename) so a crash never leaves half a marker."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


@contextlib.contextmanager
def _signals_deferred() -> Any:
    """Hold SIGINT/SIGTERM while rollback runs; deliver them (as KeyboardInterrupt) after."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: object) -> None:
        caught.append(signum)

    old = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if caught:
            raise KeyboardInterrupt(f"signal {signal.Signals(caught[0]).name} during rollback")


# -- leftovers of a run that died ------------------------------------------------------


@dataclass
class CleanupReport:
    """What :func:`cleanup_leftovers` found and did."""

    found: bool = False
    run_id: str | None = None
    actions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def marker_owner_alive(data: dict[str, Any]) -> bool:
    """Whether the run that wrote a marker is still running (not this process)."""
    pid = int(data.get("pid", 0) or 0)
    return bool(pid) and pid != os.getpid() and _alive(pid) and _is_lab_process(pid)


def cleanup_leftovers(
    reports_dir: Path | None = None,
    log: Callable[[str], None] = lambda _m: None,
    force: bool = False,
    lab: LabClient | None = None,
) -> CleanupReport:
    """Undo what a crashed run left injected, as described by its marker file.

    Raises FaultError when the marker belongs to a run that is still alive (two runs must
    not share a lab) or when an undo failed (the marker stays for the next attempt).
    ``force`` (``lab down``, which removes the whole lab next) logs those instead, and
    removes the marker. ``lab`` reaches the clients (default: over HTTP).
    """
    marker = (reports_dir or default_reports_dir()) / MARKER
    report = CleanupReport()
    try:
        data = json.loads(marker.read_text())
    except FileNotFoundError:
        return report
    except ValueError:
        log(f"cleanup: {marker} is not JSON; removing it")
        marker.unlink(missing_ok=True)
        return report
    report.found = True
    report.run_id = data.get("run_id")
    pid = int(data.get("pid", 0) or 0)
    if marker_owner_alive(data) and not force:
        raise FaultError(
            f"run {report.run_id} (pid {pid}) is still in flight on this lab; "
            f"stop it first (kill {pid}) or wait for it"
        )
    faults: list[dict[str, Any]] = list(data.get("faults") or [])
    api = data.get("toxiproxy_api")
    if api:
        _clean_toxiproxy(ToxiproxyAdapter(str(api), timeout=2.0), faults, report)
    runtime = data.get("runtime")
    if runtime == "compose":
        actions, errors = undo_leftovers(faults)
        report.actions.extend(actions)
        report.errors.extend(errors)
        undo_netfault_leftovers(faults, report)
    for f in faults:
        if f.get("behaviour_url") and f.get("restore"):
            try:
                http_json("PUT", str(f["behaviour_url"]), f["restore"], timeout=2.0)
                report.actions.append(f"restored behaviour of {f.get('target')}")
            except RuntimeUnavailable as exc:
                if runtime != "local":  # a dead local run's workers are gone anyway
                    report.errors.append(f"restore behaviour of {f.get('target')}: {exc}")
    for f in faults:
        if f.get("antagonist_url"):
            try:
                http_json("DELETE", str(f["antagonist_url"]), timeout=2.0)
                report.actions.append(f"stopped the antagonist on {f.get('target')}")
            except RuntimeUnavailable as exc:
                if runtime != "local":
                    report.errors.append(f"stop the antagonist on {f.get('target')}: {exc}")
    if runtime == "local":  # its clients are among the processes stopped
        _stop_local(data.get("local_pids") or [], report)
    else:
        _quiet_clients(data.get("clients") or [], report, lab)
    for a in report.actions:
        log(f"cleanup: {a}")
    for e in report.errors if force else ():
        log(f"cleanup: {e} (ignored: the lab is coming down)")
    if report.errors and not force:
        raise FaultError(
            f"cleanup of run {report.run_id} left problems (marker {marker} kept): "
            + "; ".join(report.errors)
        )
    marker.unlink(missing_ok=True)
    return report


def _is_lab_process(pid: int) -> bool:
    """Whether ``pid`` still runs python (a recycled pid of another program is not ours)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # cannot tell: be careful, assume it is
    # Empty while the process is in the middle of exec (seen when a run had just been
    # spawned; its comm then is still the parent's): cannot tell either.
    return not cmdline or b"python" in cmdline or b"lab" in cmdline


def _is_ours(pid: int) -> bool:
    """A local run's process: ``lab`` services or Toxiproxy (never a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"-m\x00lab" in cmdline or b"toxiproxy" in cmdline


def _clean_toxiproxy(
    toxi: ToxiproxyAdapter, faults: list[dict[str, Any]], report: CleanupReport
) -> None:
    """Remove every ``lab-`` toxic and re-enable the proxies our faults disabled."""
    disabled = [str(f.get("proxy")) for f in faults if f.get("disabled") and f.get("proxy")]
    try:
        swept = toxi.sweep(ours=TOXIC_PREFIX, reenable=disabled)
    except FaultError as exc:
        if any(f.get("proxy") for f in faults):
            report.errors.append(str(exc))
        return
    report.actions.extend(f"removed toxic {t} from proxy {p}" for p, t in swept.removed)
    report.actions.extend(f"re-enabled proxy {p}" for p in swept.enabled)
    report.errors.extend(swept.errors)


def _quiet_clients(
    clients: list[dict[str, Any]], report: CleanupReport, lab: LabClient | None
) -> None:
    """Stop a dead run's load and clear the oracle's faulty list (Compose clients live on).

    Best effort: a client that does not answer has no load to stop that matters (the next
    run's ``/load/start`` replaces any load, and its prepare resets the oracle), so this
    is an action, never an error that would keep the marker. Synchronous callers only
    (``lab down``, ``lab run`` before its loop, the runner through a thread).
    """
    wanted = [c for c in clients if c.get("control_url")]
    if wanted:
        asyncio.run(_quiet(wanted, report, lab))


async def _quiet(
    clients: list[dict[str, Any]], report: CleanupReport, lab: LabClient | None
) -> None:
    if lab is None:
        async with HttpLabClient() as http:
            await _quiet(clients, report, http)
        return
    for c in clients:
        url, name = str(c["control_url"]), c.get("name")
        try:
            await lab.stop_load(url, budget_s=2.0)
            if c.get("policy") == "oracle":
                await lab.set_oracle(url, [], budget_s=2.0)
            report.actions.append(f"stopped the load of {name}")
        except ControlError as exc:
            report.actions.append(f"could not stop the load of {name}: {exc}")


def _stop_local(pids: list[int], report: CleanupReport) -> None:
    """SIGCONT then SIGKILL each process group of a dead local run (they had own sessions)."""
    for pid in pids:
        pid = int(pid)
        if not _alive(pid) or not _is_ours(pid):
            continue
        for sig in (signal.SIGCONT, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
        report.actions.append(f"stopped local process {pid}")


def clean_network(toxi: ToxiproxyAdapter) -> None:
    """Start from whole network paths: every proxy enabled, no toxic anywhere.

    The marker cleanup undoes what a crashed run of ours recorded; this catches the rest
    (a hand-made toxic, a run of an older version, an abort in the middle of an API
    call), which would otherwise fail the steady state before any fault. Said on stderr.
    """
    swept = toxi.sweep()
    if swept.dirty:
        print(
            f"lab run: proxies {', '.join(p.name for p in swept.dirty)} were disabled or had "
            "toxics: reset",
            file=sys.stderr,
        )
