"""The runtime: what brings the lab's nodes up and down (Jepsen's *db*), as one protocol.

Two implementations share it: :mod:`lab.scenario.runtime.compose` (the Compose lab, driven
through the Docker SDK) and :mod:`lab.scenario.runtime.local` (the same services as local
processes with a real Toxiproxy binary). The nemesis (:mod:`lab.scenario.faults.nemesis`) and the
runner only see this protocol, so a scenario runs unchanged on either.

Every method is synchronous and may block (Docker calls, process waits): the async runner
calls them through ``asyncio.to_thread``; rollback calls them directly, which is what a
signal handler or a ``finally`` needs.

The clock probe lives here because it is the same for every runtime: the client's
``GET /clock`` bracketed by two host readings of ``time.monotonic()``. With one shared
CLOCK_MONOTONIC (same kernel, no time namespace) the client's reading falls inside the
bracket, so ``|offset| <= half the round trip``; the runner records the result in RunMeta.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from lab.errors import RuntimeUnavailable
from lab.lab_client import ControlError, LabClient

KINDS = ("worker", "grape", "client", "toxiproxy")


@dataclass(frozen=True, slots=True)
class Target:
    """One service of the lab as the engine addresses it.

    ``control_url`` is the host-reachable HTTP base of the service's control API (worker
    control port, client control API, grape HTTP API); ``proxy`` the Toxiproxy proxy in
    front of a worker; ``peer`` the address clients see for it (``toxiproxy:21002``).
    """

    name: str
    kind: str
    control_url: str | None = None
    proxy: str | None = None
    peer: str | None = None
    policy: str | None = None


@dataclass(frozen=True, slots=True)
class ClockProbe:
    """One client's clock compared with the host's: ``offset`` within ``± bound`` seconds."""

    client: str
    offset: float  # client reading - midpoint of the host bracket
    bound: float  # half the bracket: the offset's uncertainty
    samples: int

    def to_json(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "offset_s": self.offset,
            "bound_s": self.bound,
            "samples": self.samples,
        }


class Runtime(Protocol):
    """What the engine needs from a lab: targets, process control, health, leftovers."""

    name: str  # "compose" | "local"

    def targets(self) -> Mapping[str, Target]:
        """Every addressable service by its scenario name (``worker-2``, ``client-adaptive``)."""
        ...

    def toxiproxy_api(self) -> str:
        """``http://host:port`` of the Toxiproxy API the host reaches."""
        ...

    def kill(self, name: str) -> None: ...

    def stop(self, name: str) -> None: ...

    def start(self, name: str) -> None: ...

    def pause(self, name: str) -> None: ...

    def unpause(self, name: str) -> None: ...

    def restart(self, name: str) -> None: ...

    def disconnect(self, name: str) -> None:
        """Cut ``name`` off the lab network (grape partitions: DHT traffic is UDP)."""
        ...

    def reconnect(self, name: str) -> None: ...

    def state(self, name: str) -> str:
        """``running`` | ``paused`` | ``stopped`` | ``disconnected``: to confirm a fault."""
        ...

    def check_health(self, timeout: float) -> None:
        """Raise RuntimeUnavailable unless every service is up and clients see every worker."""
        ...

    def service_pids(self) -> Mapping[str, int]:
        """Each service's host PID, to read its cgroup (empty: no cgroup of its own)."""
        ...

    def inflight_info(self) -> dict[str, Any]:
        """The marker's run-level facts: what the runtime's leftover hooks read."""
        ...

    def close(self) -> None: ...


def clients(runtime: Runtime, names: Sequence[str] | None = None) -> list[Target]:
    """The runtime's clients (all, or those named, in that order); unknown names raise."""
    all_clients = {n: t for n, t in runtime.targets().items() if t.kind == "client"}
    if names is None:
        return list(all_clients.values())
    missing = [n for n in names if n not in all_clients]
    if missing:
        raise RuntimeUnavailable(
            f"{runtime.name} runtime has no client(s) {', '.join(missing)}; "
            f"it has {', '.join(all_clients) or 'none'}"
        )
    return [all_clients[n] for n in names]


def target(runtime: Runtime, name: str, kinds: Sequence[str] = KINDS) -> Target:
    """The target ``name`` of one of ``kinds``, or a RuntimeUnavailable naming what exists."""
    found = runtime.targets().get(name)
    if found is None or found.kind not in kinds:
        have = [n for n, t in runtime.targets().items() if t.kind in kinds]
        raise RuntimeUnavailable(
            f"{runtime.name} runtime has no {'/'.join(kinds)} named {name!r}; "
            f"it has {', '.join(have) or 'none'}"
        )
    return found


async def probe_clock(
    lab: LabClient, client: Target, samples: int = 5, budget_s: float = 2.0
) -> ClockProbe:
    """Bracket the client's ``GET /clock`` with host readings; keep the tightest sample."""
    if client.control_url is None:
        raise RuntimeUnavailable(f"client {client.name} has no control URL")
    best: tuple[float, float] | None = None
    for _ in range(max(1, samples)):
        before = time.monotonic()
        try:
            theirs = await lab.clock(client.control_url, budget_s=budget_s)
        except ControlError as exc:
            raise RuntimeUnavailable(f"client {client.name}: {exc}") from None
        after = time.monotonic()
        half = (after - before) / 2.0
        offset = theirs - (before + half)
        if best is None or half < best[1]:
            best = (offset, half)
    assert best is not None
    return ClockProbe(client.name, best[0], best[1], max(1, samples))
