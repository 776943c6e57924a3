"""Rollback: every injected fault is undone on every exit path, even after ``kill -9``.

Two layers, because one is not enough:

1. In-process: :class:`Rollback` is a stack of undo actions. The runner *arms* a fault
   before injecting it (its undo is idempotent and copes with a half-applied fault) and
   *disarms* it once healed. :meth:`Rollback.run` tries every remaining undo in reverse,
   each guarded, records each result and returns the errors; the runner calls it in a
   ``finally`` that exceptions, a failed expectation with fail-fast, Ctrl-C (SIGINT) and
   SIGTERM all pass through.
2. Across processes: a marker file ``reports/.inflight.json`` says what is injected where
   (each fault's own ``Fault.leftover()``, the runtime's ``inflight_info()``). It is
   written *before* each injection and removed once rollback succeeded, so a run killed
   with ``-9`` leaves it behind, and the janitor
   (:func:`lab.scenario.faults.janitor.cleanup_leftovers`, called first by the next
   ``lab run`` and by ``lab down``) undoes it from the file alone, through each fault
   family's and each runtime's own leftover hooks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.scenario.faults.base import Fault
from lab.scenario.faults.marker import write_marker
from lab.toxiproxy_adapter import ToxiproxyAdapter


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
