"""The steps of a scenario's timeline and the topology their targets live in.

Why a module of its own: the timeline's parser (:mod:`lab.scenario.plan.timeline`), its
expansion into fault intervals (:mod:`lab.scenario.plan.intervals`) and the scenario all
speak of these records; none of them parses or plans anything.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from lab.scenario.plan.kinds import Params

NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
"""What a scenario's name, a client's name and a fault id may be spelt with."""


@dataclass(frozen=True, slots=True)
class Topology:
    """The services a run has: grape-1..N, worker-1..N and the scenario's clients; on a
    swarm also its ``nodes`` (``node-1``..), which node faults target (0: not a swarm)."""

    grapes: int = 3
    workers: int = 3
    clients: tuple[str, ...] = ()  # the scenario's client names (targets of ``pause``)
    worker_concurrency: int = 0  # requests each worker serves at once, the rest queue (0: all)
    nodes: int = 0  # Swarm nodes (runtime swarm only): targets node-1..node-N

    def services(self) -> tuple[str, ...]:
        return tuple(
            [f"grape-{i}" for i in range(1, self.grapes + 1)]
            + [f"worker-{i}" for i in range(1, self.workers + 1)]
            + list(self.clients)
        )

    def kind_of(self, service: str) -> str:
        """``grape``, ``worker``, ``client`` or ``node`` (a name that is no service: a node's,
        validated as such by the timeline): what a name is in this topology."""
        if service in self.clients:
            return "client"
        if service not in self.services():
            return "node"
        return service.rsplit("-", 1)[0]


@dataclass(frozen=True, slots=True)
class FaultStep:
    """``{at, fault, target, ...params}``, optionally ``for`` or ``every``/``for``/``until``."""

    line: int
    at_s: float
    id: str
    kind: str
    target: str
    params: Params = field(default_factory=dict)
    for_s: float | None = None
    every_s: float | None = None
    until_s: float | None = None
    healed_at_s: float | None = None  # set from a later heal step that names this fault
    healed_line: int | None = None

    @property
    def repeating(self) -> bool:
        return self.every_s is not None


@dataclass(frozen=True, slots=True)
class ChaosStep:
    """``count`` faults one after another, each a seeded choice of target and kind."""

    line: int
    at_s: float
    id: str
    targets: tuple[str, ...]
    kinds: tuple[tuple[str, Params], ...]
    count: int
    hold_s: float
    every_s: float


@dataclass(frozen=True, slots=True)
class HealStep:
    """``{at, heal}``: ends one fault, named by its id or by its target."""

    line: int
    at_s: float
    ref: str  # as written: a fault id or a target
    fault_id: str  # resolved


Step = FaultStep | ChaosStep | HealStep


def repeats(start: float, every: float, until: float) -> int:
    """How many repetitions start before ``until`` (at start, start+every, ...)."""
    n = max(0, math.ceil((until - 1e-9 - start) / every))
    while n > 0 and start + (n - 1) * every >= until - 1e-9:  # float rounding at the edge
        n -= 1
    while start + n * every < until - 1e-9:
        n += 1
    return n
