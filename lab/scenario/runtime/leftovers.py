"""What a runtime does for the janitor after a run of it died: its own leftover hooks.

The janitor (:mod:`lab.scenario.faults.janitor`) reads the in-flight marker of a dead run
and lets each fault family undo its own faults; what is the runtime's to know stays
here and in the runtime's module: how a faulted service is brought back (Compose:
reconnect, unpause, start its container; local: nothing, its processes are stopped) and
what the run's services still do for the dead run once the faults are gone (Compose
clients live on and keep loading; a local run's processes must be stopped).

Each runtime module exposes one :class:`RuntimeLeftovers` object, found by the marker's
``runtime`` (``Runtime.name``); :data:`CLIENTS_LIVE_ON` serves a marker without one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from lab.errors import FaultError
from lab.lab_client import ControlError, HttpLabClient, LabClient
from lab.scenario.runtime.protocol import Runtime, Target


class LeftoverReport(Protocol):
    """Where a hook says what it did and what failed, one sentence each."""

    actions: list[str]
    errors: list[str]


class RuntimeLeftovers(Protocol):
    """A runtime's part of undoing a dead run, from the marker alone."""

    services_outlive_run: bool
    """False when the services die with the run (local processes): an unreachable one
    then has nothing left to undo, and is no error."""

    def restore(self, names: Sequence[str], report: LeftoverReport) -> None:
        """Bring the services ``names`` (left killed, paused, disconnected) back to running."""
        ...

    def settle(
        self, info: Mapping[str, Any], report: LeftoverReport, lab: LabClient | None
    ) -> None:
        """Last step: stop what the run's services still do for it (``info``: the marker)."""
        ...


class ClientsLiveOn:
    """Services outlive the run: nothing to restart here, the clients' load to stop."""

    services_outlive_run = True

    def restore(self, names: Sequence[str], report: LeftoverReport) -> None:
        """A runtime we cannot drive (the marker does not say which): nothing to restore."""

    def settle(
        self, info: Mapping[str, Any], report: LeftoverReport, lab: LabClient | None
    ) -> None:
        quiet_clients(info.get("clients") or [], report, lab)


CLIENTS_LIVE_ON = ClientsLiveOn()


def client_facts(targets: Iterable[Target]) -> list[dict[str, Any]]:
    """The marker's ``clients``: what :func:`quiet_clients` needs of each, by URL."""
    return [
        {"name": t.name, "control_url": t.control_url, "policy": t.policy}
        for t in targets
        if t.kind == "client" and t.control_url
    ]


def quiet_clients(
    clients: Sequence[Mapping[str, Any]], report: LeftoverReport, lab: LabClient | None
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
    clients: Sequence[Mapping[str, Any]], report: LeftoverReport, lab: LabClient | None
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


def restore_by_state(
    rt: Runtime,
    names: Sequence[str],
    report: LeftoverReport,
    *,
    started: str = "started {name}",
    heal_running: bool = False,
) -> None:
    """Reconnect, unpause or start each of ``names`` by the state a dead run left it in.

    One service's failure is reported and the others still tried. ``started`` words the
    action (Swarm starts a new task); ``heal_running`` reconnects a running service too,
    for a runtime whose partitions leave no state it can read back.
    """
    for name in sorted(set(names)):
        if name not in rt.targets():
            continue  # the lab was taken down since: nothing left to undo
        try:
            state = rt.state(name)
            if state == "disconnected":
                rt.reconnect(name)
                report.actions.append(f"reconnected {name}")
            elif state == "paused":
                rt.unpause(name)
                report.actions.append(f"unpaused {name}")
            elif state == "stopped":
                rt.start(name)
                report.actions.append(started.format(name=name))
            elif heal_running:
                rt.reconnect(name)
        except FaultError as exc:
            report.errors.append(str(exc))
