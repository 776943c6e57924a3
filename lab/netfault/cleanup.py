"""Undo what a dead run's network faults left: helper containers and chains in namespaces.

Called by the network-namespace faults' leftover hook
(``lab.scenario.faults.network.NetnsFault.undo_leftovers``, run by the janitor of the
next ``lab run`` or ``lab down``) with the chains their markers name, after the container
faults were undone. Every helper goes (no fault holds while nobody runs), then each
faulted target's chains and our qdisc are removed by the agent's idempotent ``clean``; a
target that is not running has no namespace left to clean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from lab.errors import FaultError, RuntimeUnavailable
from lab.netfault.helper import NetfaultHelper
from lab.stack.engine import Engine, service_name


class CleanupReport(Protocol):
    """Where the janitor's report collects what was done and what failed."""

    actions: list[str]
    errors: list[str]


def clean_namespaces(wanted: Mapping[str, Sequence[str]], report: CleanupReport) -> None:
    """Every helper removed, then ``wanted``'s chains (by target) out of running targets."""
    try:
        engine = Engine.connect()
    except RuntimeUnavailable as exc:
        if wanted:
            report.errors.append(f"cannot reach Docker to undo network faults: {exc}")
        return
    try:
        helper = NetfaultHelper(engine)
        for name in helper.remove_helpers():
            report.actions.append(f"removed netfault helper {name}")
        running = {service_name(c): c.status for c in engine.containers(all=True)}
        for target, chains in sorted(wanted.items()):
            if running.get(target) not in ("running", "paused"):
                continue  # stopped or gone: its namespace went with it
            try:
                helper.clean(target, chains)
                report.actions.append(f"removed network fault chains from {target}")
            except (FaultError, RuntimeUnavailable) as exc:
                report.errors.append(f"clean network faults on {target}: {exc}")
    except (FaultError, RuntimeUnavailable) as exc:
        report.errors.append(str(exc))
    finally:
        engine.close()


def remove_all_helpers(engine: Engine) -> list[str]:
    """Every netfault helper container, whatever left it (``lab down``)."""
    return NetfaultHelper(engine).remove_helpers()
