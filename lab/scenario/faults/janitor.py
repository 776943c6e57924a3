"""The janitor: undo what a run that died left injected, from its marker file alone.

Called first by the next ``lab run`` and by ``lab down``. It reads the marker
(:mod:`lab.scenario.faults.marker`), refuses one whose run is still alive, and then only
dispatches: each fault family's ``Fault.undo_leftovers`` hook gets its own faults'
entries (families whose leftovers block the way to a service first, then those undone
through a service's API), and the runtime's hooks
(:mod:`lab.scenario.runtime.leftovers`, found by the marker's ``runtime``) bring faulted
services back and, last, stop what the dead run's services still do for it. What a
marker entry's keys mean is known only where the entry is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lab.errors import FaultError
from lab.lab_client import LabClient
from lab.scenario.faults.base import Fault
from lab.scenario.faults.kinds import all_fault_kinds
from lab.scenario.faults.leftovers import CleanupReport, Janitor
from lab.scenario.faults.marker import MARKER, default_reports_dir, marker_owner_alive
from lab.scenario.runtime import compose, local, swarm
from lab.scenario.runtime.leftovers import CLIENTS_LIVE_ON, RuntimeLeftovers

RUNTIME_LEFTOVERS: Mapping[str, RuntimeLeftovers] = {
    compose.ComposeRuntime.name: compose.LEFTOVERS,
    local.LocalRuntime.name: local.LEFTOVERS,
    swarm.SwarmRuntime.name: swarm.LEFTOVERS,
}
"""Each runtime's hooks by the name its ``inflight_info`` writes into the marker."""


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
    runtime = RUNTIME_LEFTOVERS.get(str(data.get("runtime")), CLIENTS_LIVE_ON)
    janitor = Janitor(data, runtime, report)
    undo_faults(list(data.get("faults") or []), janitor)
    runtime.settle(data, report, lab)
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


def undo_faults(faults: list[dict[str, Any]], janitor: Janitor) -> None:
    """Every family's hook once, with its entries of ``faults``, in the families' stages."""
    kinds = all_fault_kinds()
    families: dict[type[Fault], list[dict[str, Any]]] = {}
    for cls in kinds.values():  # every family, also one with no entry: it may sweep
        families.setdefault(_family(cls), [])
    for f in faults:
        known = kinds.get(str(f.get("kind")))
        if known is None:  # a kind this version does not know (a marker of another one)
            janitor.did(f"left fault {f.get('id')}: no undo known for its kind {f.get('kind')!r}")
            continue
        families[_family(known)].append(f)
    # sorted() is stable: within a stage, the order of the kinds' registry
    for family in sorted(families, key=lambda c: c.leftover_stage):
        family.undo_leftovers(families[family], janitor)


def _family(cls: type[Fault]) -> type[Fault]:
    """The class whose ``undo_leftovers`` ``cls`` uses: kinds sharing it are one family."""
    return next(c for c in cls.__mro__ if "undo_leftovers" in vars(c))
