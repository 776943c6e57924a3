"""What every fault is: a context to act through, and inject/heal with confirmed times.

Why confirmed times: detection times of a few hundred milliseconds are measured from the
fault's start, so ``started`` is ``time.monotonic()`` right after the call that put the
fault in place returned (Toxiproxy applies a toxic before it answers; Docker pauses before
it answers), and the state is then read back (toxics listed, proxy state, container
state, worker behaviour): a fault that did not take raises :class:`FaultError` instead of
leaving a start time for something that never happened. ``ended`` is measured the same
way at heal. ``requested`` is taken before the call, so ``started - requested`` is the
API's latency, visible in the journal.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from lab.errors import FaultError, LabError
from lab.history import FaultRecord
from lab.scenario.faults.leftovers import PATHS, Janitor
from lab.scenario.runtime.protocol import Runtime, Target
from lab.toxiproxy_adapter import ToxiproxyAdapter


@dataclass(frozen=True)
class FaultContext:
    """What faults act through; ``now`` is the clock of every recorded time."""

    runtime: Runtime
    toxiproxy: ToxiproxyAdapter
    now: Callable[[], float] = time.monotonic


class Fault(ABC):
    """One planned fault on one target; ``record`` is its journal entry so far."""

    kind: ClassVar[str]
    target_kinds: ClassVar[tuple[str, ...]] = ("worker",)

    def __init__(
        self, fault_id: str, target: Target, params: Mapping[str, Any], ctx: FaultContext
    ) -> None:
        if target.kind not in self.target_kinds:
            raise FaultError(
                f"fault {fault_id}: {self.kind} applies to a {' or '.join(self.target_kinds)}, "
                f"not to {target.kind} {target.name}"
            )
        self.id = fault_id
        self.target = target
        self.params = dict(params)
        self.ctx = ctx
        self.injected = False
        self.healed = False
        self.record = FaultRecord(
            id=fault_id,
            kind=self.kind,
            target=target.name,
            peers=(target.peer,) if target.peer and target.kind == "worker" else (),
            requested=0.0,
            params=dict(params),
        )

    def _needs(self, value: str | None, what: str) -> str:
        """``value``, what of the target this kind acts through, or a FaultError: it has none."""
        if not value:
            raise FaultError(f"fault {self.id}: {self.target.name} has no {what}")
        return value

    # -- the template: timing and confirmation are the same for every kind --------------

    def inject(self) -> FaultRecord:
        """Put the fault in place; ``record.started`` is set once it is confirmed."""
        self.record = replace(self.record, requested=self.ctx.now())
        self.injected = True  # from here on, undo() has something to do
        started = self._started(self._confirmed("inject", self._apply, self._confirm_applied))
        self.record = replace(self.record, started=started)
        return self.record

    def heal(self) -> FaultRecord:
        """Remove the fault; ``record.ended`` is set once its removal is confirmed."""
        if not self.injected:
            raise FaultError(f"fault {self.id}: heal before inject")
        if self.healed:
            return self.record
        ended = self._confirmed("heal", self._remove, self._confirm_removed)
        self.healed = True
        self.record = replace(self.record, ended=self._ended(ended))
        return self.record

    def _confirmed(self, step: str, act: Callable[[], None], confirm: Callable[[], None]) -> float:
        """``act``, then ``confirm`` it took; when ``act`` returned. A LabError of either
        is recorded as the ``step``'s error and raised as a FaultError naming the fault."""
        try:
            act()
            done = self.ctx.now()
            confirm()
        except LabError as exc:
            self.record = replace(self.record, error=f"{step}: {exc}")
            raise FaultError(f"fault {self.id} ({self.kind} on {self.target.name}): {exc}") from exc
        return done

    def undo(self) -> None:
        """Rollback's heal: idempotent, tolerant of a fault that half happened."""
        if self.injected and not self.healed:
            self.heal()

    def leftover(self) -> dict[str, Any]:
        """What the in-flight marker stores so a later process can undo this fault."""
        return {"id": self.id, "kind": self.kind, "target": self.target.name}

    leftover_stage: ClassVar[int] = PATHS
    """When the janitor calls :meth:`undo_leftovers`: :data:`PATHS` first, then
    :data:`SERVICES`."""

    @classmethod
    def undo_leftovers(cls, found: Sequence[Mapping[str, Any]], janitor: Janitor) -> None:
        """Undo this family's faults that a dead run left, from their :meth:`leftover` alone.

        The janitor calls each family's hook once per cleanup, with the family's entries
        of the marker (maybe none: a family may also sweep what a crash left unrecorded).
        A family overrides it where its faults outlive the process that injected them;
        this one has nothing to undo (e.g. the ghost's announcer is a thread of that
        process).
        """
        return None

    def _started(self, t: float) -> float:
        return t

    def _ended(self, t: float) -> float:
        return t

    @abstractmethod
    def _apply(self) -> None: ...

    @abstractmethod
    def _confirm_applied(self) -> None: ...

    @abstractmethod
    def _remove(self) -> None: ...

    @abstractmethod
    def _confirm_removed(self) -> None: ...
