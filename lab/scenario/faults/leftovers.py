"""What a fault family's leftover hook is handed: the dead run's facts and a report.

A run killed with ``-9`` leaves its marker (:mod:`lab.scenario.faults.marker`). Each fault
in it was written by its own ``Fault.leftover()``, so only its family knows what the
keys mean and how to undo it: the family's ``Fault.undo_leftovers`` hook gets its
faults' marker entries and a :class:`Janitor`, which holds what is shared (the marker's
run-level facts, the run's Toxiproxy, the runtime's own hooks, the report) and knows no
fault's keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lab.scenario.runtime.leftovers import RuntimeLeftovers
from lab.toxiproxy_adapter import ToxiproxyAdapter

PATHS = 0
"""A family whose leftovers block the way to a service (toxics, disabled proxies, stopped
or disconnected containers, rules in a namespace): undone first."""

SERVICES = 1
"""A family whose leftovers are a service's own state, undone through the service's API:
after :data:`PATHS`, once the way there is whole again."""


@dataclass
class CleanupReport:
    """What :func:`lab.scenario.faults.janitor.cleanup_leftovers` found and did."""

    found: bool = False
    run_id: str | None = None
    actions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class Janitor:
    """What a family's hook acts through: ``info`` is the marker (the runtime's facts)."""

    info: Mapping[str, Any]
    runtime: RuntimeLeftovers
    report: CleanupReport
    _toxiproxy: ToxiproxyAdapter | None = None

    def toxiproxy(self) -> ToxiproxyAdapter | None:
        """The dead run's Toxiproxy, or None when its marker names none."""
        api = self.info.get("toxiproxy_api")
        if not api:
            return None
        if self._toxiproxy is None:
            self._toxiproxy = ToxiproxyAdapter(str(api), timeout=2.0)
        return self._toxiproxy

    def did(self, action: str) -> None:
        self.report.actions.append(action)

    def failed(self, error: str) -> None:
        """An undo that did not happen (the marker stays); said once however many hooks hit it."""
        if error not in self.report.errors:
            self.report.errors.append(error)

    def unreachable(self, what: str, exc: Exception) -> None:
        """A service did not answer: a failure, unless the runtime's services died with the run."""
        if self.runtime.services_outlive_run:
            self.failed(f"{what}: {exc}")
