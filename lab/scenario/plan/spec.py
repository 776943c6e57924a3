"""Scenario files: schema, validation and the resolved plan.

``load_scenario(path)`` reads a YAML experiment (PyYAML safe loading, line numbers kept)
and returns a frozen :class:`Scenario`, or raises ``ScenarioError`` naming the file, the
line and the field: ``scenarios/x.yaml:12: timeline[1].at: expected a duration like 15s,
got 'soon'``. Unknown keys are errors with a did-you-mean. Validation is complete before
anything is touched (``lab validate`` does only this), including the cross-field rules:
a heal comes after its fault, every time lies within the duration, targets exist in the
topology, two faults never hold one target at once, expectations name clients of the run.

Schema (durations ``15s``/``500ms``/``1m30s`` or seconds; bounds ``"<= 1"``, quoted)::

    name: partition-one-worker        # [A-Za-z0-9_.-]+
    description: text                 # optional
    seed: 7                           # int, default 1: load arrivals and chaos choices
    runtime: compose                  # compose (default) | local
    topology: {grapes: 3, workers: 3} # compose: 3-8 grapes, 1-16 workers, shaped for the run
    #   nodes: 3                         # swarm only: node faults target node-1..node-3
    #   worker_concurrency: 4            # each worker serves 4 at once, the rest queue
    clients: [adaptive, random, oracle]            # a policy -> client "client-<policy>"
    #   or  - {name: client-adaptive-2, policy: adaptive, gossip: true, rate: 5}
    #   or  - policies/mine.py:MyPolicy   # yours; on compose one per run, in policies/
    load: {rate: 100, arrival: constant, payload_bytes: 64, service: rpc_test, timeout: 1s}
    duration: 60s
    warmup: 5s                        # default 5s, excluded from the steady state
    settle: 5s                        # default 5s after the last heal before "after"
    steady_state: {availability: ">= 0.999", p99_ms: "<= 50"}
    timeline:
      - {at: 15s, fault: partition, target: worker-2, id: p1}   # id optional: f1, f2...
      - {at: 35s, heal: p1}                                     # a fault id or a target
      - {at: 40s, fault: latency, target: worker-1, latency_ms: 300, for: 5s}
      - {at: 10s, fault: down, target: worker-1, every: 4s, for: 2s, until: 40s}
      - {at: 20s, fault: chaos, targets: [worker-1, worker-2], kinds: [partition,
         {latency: {latency_ms: 300}}], count: 3, hold: 3s, every: 6s}
    expect:                           # per policy or client name: metric -> bound
      adaptive: {detection_s: "<= 1", availability: ">= 0.999", recovery_s: "<= 5"}

A fault nobody heals is healed at the end of the run; ``restart`` heals itself. A
repeating step (``every``/``for``/``until``) expands to faults ``<id>.1``, ``<id>.2``...;
a chaos step to ``count`` faults ``<id>.1``... one after another, each a seeded choice of
target and kind. :meth:`Scenario.plan` returns the resolved, time-ordered steps; the
same seed gives the same plan.

This module reads the file and holds the sections together; the sections with rules of
their own live beside it: ``clients`` (clients and load), ``expectations`` (steady state
and expect), ``timeline`` (the steps, as ``steps`` records), ``intervals`` (the steps
expanded and planned).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lab.scenario.plan import netkinds, nodekinds
from lab.scenario.plan.clients import (
    ClientSpec,
    LoadSpec,
    check_client_rates,
    parse_clients,
    parse_load,
)
from lab.scenario.plan.expectations import STEADY_METRICS, RefCheck, parse_bounds, parse_expect
from lab.scenario.plan.fit import Demand, HostFacts, antagonist_cores, problem
from lab.scenario.plan.intervals import Interval, PlannedStep, check_overlaps, expand, plan_of
from lab.scenario.plan.quantities import Bound, format_duration, parse_duration, parse_number
from lab.scenario.plan.steps import NAME, Step, Topology
from lab.scenario.plan.timeline import parse_timeline
from lab.scenario.plan.yamlsource import (
    Field,
    Section,
    YList,
    describe,
    did_you_mean,
    load_text,
    quote,
    read_file,
)

__all__ = ["Scenario", "load_scenario", "parse_scenario"]

RUNTIMES: tuple[str, ...] = ("compose", "local", "swarm")

COMPOSE_GRAPES = 3
COMPOSE_WORKERS = 3
COMPOSE_MAX_GRAPES = 8  # lab.stack.shape.MAX_GRAPES (not imported: no Docker SDK to validate)
COMPOSE_MAX_WORKERS = 16  # lab.stack.shape.MAX_WORKERS
_TOP_KEYS = (
    "name",
    "description",
    "seed",
    "runtime",
    "topology",
    "clients",
    "load",
    "duration",
    "warmup",
    "settle",
    "steady_state",
    "timeline",
    "expect",
)


# -- the model ------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One validated scenario file: every section resolved, the timeline not yet expanded."""

    path: str
    name: str
    description: str
    seed: int
    runtime: str
    topology: Topology
    clients: tuple[ClientSpec, ...]
    load: LoadSpec
    duration_s: float
    warmup_s: float
    settle_s: float
    steady_state: Mapping[str, Bound]
    timeline: tuple[Step, ...]
    expect: Mapping[str, Mapping[str, Bound]]
    text: str = ""

    def client_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.clients)

    def clients_for(self, key: str) -> tuple[ClientSpec, ...]:
        """The clients an expectation key names: one client by name, or every one of a policy."""
        named = tuple(c for c in self.clients if c.name == key)
        return named or tuple(c for c in self.clients if c.policy == key)

    def plan(self, seed: int | None = None) -> tuple[PlannedStep, ...]:
        """The time-ordered inject/heal steps; chaos choices follow ``seed`` (default: own)."""
        intervals = expand(self.timeline, self.seed if seed is None else seed)
        check_overlaps(intervals, self.path, self.duration_s)
        return plan_of(intervals, self.duration_s)

    def fault_span(self) -> tuple[float, float] | None:
        """(first inject, last heal) in seconds of the plan, or None without faults."""
        steps = self.plan()
        if not steps:
            return None
        return min(s.at_s for s in steps), max(s.at_s for s in steps)


# -- loading --------------------------------------------------------------------------


def load_scenario(
    path: str | Path, run_as: str | None = None, remote_swarm: bool = False
) -> Scenario:
    """Read and validate one scenario file; raises ``ScenarioError`` naming file:line: field.

    ``run_as``/``remote_swarm``: as :func:`parse_scenario`'s."""
    label = str(path)
    return parse_scenario(read_file(Path(path)), label, run_as=run_as, remote_swarm=remote_swarm)


def parse_scenario(
    text: str,
    label: str = "<scenario>",
    host: HostFacts | None = None,
    root: Path | None = None,
    run_as: str | None = None,
    remote_swarm: bool = False,
) -> Scenario:
    """Validate scenario text; ``label`` is the file name the errors carry.

    ``host``: the machine a compose shape must fit (default: this one, read once).
    ``root``: the repository whose ``policies/`` the Compose clients mount (default: the
    one the Compose runtime uses, :func:`lab.scenario.plan.byo.compose_root`).
    ``run_as``: the runtime the run will use when not the file's (``lab run --runtime``).
    The shape must fit this machine when the lab runs on it: a compose scenario, or any on
    a swarm of local nodes (they share this machine's cores); not on a ``remote_swarm``,
    whose cores are its nodes'.
    """
    doc = load_text(text, label)
    top = Section(doc, Field(label, 1, ""), "a mapping of scenario fields (name, load, ...)")
    for key in top.extra_keys():
        if key not in _TOP_KEYS:
            raise top.at.key(top.map, key).error(
                f"unknown key {quote(key)}{did_you_mean(key, _TOP_KEYS)}"
            )

    name_v, at = top.need("name")
    if not isinstance(name_v, str) or not NAME.match(name_v):
        raise at.error(f"expected a name of letters, digits, _ . -, got {describe(name_v)}")
    desc_v, at = top.get("description", "")
    if not isinstance(desc_v, str):
        raise at.error(f"expected text, got {describe(desc_v)}")
    seed_v, at = top.get("seed", 1)
    seed = int(parse_number(seed_v, at, low=0, high=2**63 - 1, integer=True))
    runtime, at = top.get("runtime", "compose")
    if runtime not in RUNTIMES:
        raise at.error(
            f"expected one of {', '.join(RUNTIMES)}, got {describe(runtime)}"
            f"{did_you_mean(str(runtime), RUNTIMES)}"
        )

    topo_v, topo_at = top.get("topology")
    topology = _topology(topo_v, topo_at, runtime)
    clients_v, at = top.need("clients")
    clients = parse_clients(clients_v, at, runtime, root)
    topology = replace(topology, clients=tuple(c.name for c in clients))
    load_v, at = top.need("load")
    load = parse_load(load_v, at)
    check_client_rates(clients, load, at)

    dur_v, dur_at = top.need("duration")
    duration = parse_duration(dur_v, dur_at, allow_zero=False)
    warm_v, warm_at = top.get("warmup", "5s")
    warmup = parse_duration(warm_v, warm_at)
    if warmup >= duration:
        raise warm_at.error(
            f"warmup {format_duration(warmup)} leaves nothing of duration "
            f"{format_duration(duration)}"
        )
    settle_v, settle_at = top.get("settle", "5s")
    settle = parse_duration(settle_v, settle_at)

    ss_v, ss_at = top.get("steady_state")
    # a relative steady-state bound holds every client to the ref's figure in the same
    # window (the ref itself trivially meets it), e.g. p99_ms: "<= 2x oracle"
    steady_refs = RefCheck("", tuple(clients))
    steady = parse_bounds(ss_v, ss_at, STEADY_METRICS, steady_refs) if ss_v is not None else {}

    tl_v, tl_at = top.get("timeline")
    timeline = parse_timeline(tl_v if tl_v is not None else YList(), tl_at, topology, duration)
    netkinds.check_runtime(timeline, str(runtime), label)
    nodekinds.check_runtime(timeline, str(runtime), label)
    intervals = expand(timeline, seed)
    check_overlaps(intervals, label, duration)
    held_here = not remote_swarm if (run_as or runtime) == "swarm" else runtime == "compose"
    if held_here:
        _check_fit(topology, clients, load, intervals, duration, topo_at, host)

    if steady and intervals:
        first = min(intervals, key=lambda iv: iv.start)
        last = max(intervals, key=lambda iv: duration if iv.end is None else iv.end)
        last_end = duration if last.end is None else last.end
        if warmup >= first.start:
            where = warm_at if "warmup" in top.map else Field(label, first.line, "warmup")
            raise where.error(
                f"warmup {format_duration(warmup)} leaves no steady state before the first "
                f"fault at {format_duration(first.start)}"
            )
        if last_end + settle >= duration:
            where = (
                settle_at
                if "settle" in top.map
                else Field(label, last.end_line or last.line, "settle")
            )
            raise where.error(
                f"the last heal at {format_duration(last_end)} ({last.fault_id}) + settle "
                f"{format_duration(settle)} leaves no steady state before duration "
                f"{format_duration(duration)}"
            )

    exp_v, exp_at = top.get("expect")
    expect = parse_expect(exp_v, exp_at, clients) if exp_v is not None else {}
    top.done()
    return Scenario(
        path=label,
        name=name_v,
        description=desc_v,
        seed=seed,
        runtime=str(runtime),
        topology=topology,
        clients=clients,
        load=load,
        duration_s=duration,
        warmup_s=warmup,
        settle_s=settle,
        steady_state=steady,
        timeline=timeline,
        expect=expect,
        text=text,
    )


def _check_fit(
    topology: Topology,
    clients: tuple[ClientSpec, ...],
    load: LoadSpec,
    intervals: list[Interval],
    duration: float,
    at: Field,
    host: HostFacts | None,
) -> None:
    """Refuse a compose shape this machine cannot hold (lab.scenario.plan.fit)."""
    burns = [
        (iv.start, duration if iv.end is None else iv.end, float(iv.params.get("share", 0)))
        for iv in intervals
        if iv.kind == "antagonist"
    ]
    demand = Demand(
        grapes=topology.grapes,
        workers=topology.workers,
        clients=len(clients),
        rate=sum(c.rate_of(load) for c in clients),
        antagonist_cores=antagonist_cores(burns),
    )
    why = problem(demand, host or HostFacts.read())
    if why is not None:
        raise at.error(why)


# -- sections -------------------------------------------------------------------------


def _topology(value: Any, at: Field, runtime: str) -> Topology:
    if value is None:
        return Topology(nodes=nodekinds.parse_nodes(None, at, runtime))
    s = Section(value, at, "a mapping like {grapes: 3, workers: 3}")
    g_v, g_at = s.get("grapes", 3)
    w_v, w_at = s.get("workers", 3)
    c_v, c_at = s.get("worker_concurrency", 0)
    n_v, n_at = s.get("nodes")
    s.done()
    nodes = nodekinds.parse_nodes(n_v, n_at, runtime)
    grapes = int(parse_number(g_v, g_at, low=1, high=16, integer=True))
    workers = int(parse_number(w_v, w_at, low=1, high=16, integer=True))
    concurrency = int(parse_number(c_v, c_at, low=0, high=1024, integer=True))
    if runtime == "compose":
        # lab/stack/shape.py brings the lab to this shape for the run
        if not COMPOSE_GRAPES <= grapes <= COMPOSE_MAX_GRAPES:
            raise g_at.error(
                f"the compose lab runs {COMPOSE_GRAPES} to {COMPOSE_MAX_GRAPES} grapes (its "
                f"workers and clients bootstrap from grape-1..{COMPOSE_GRAPES}), got {grapes}"
            )
        if workers > COMPOSE_MAX_WORKERS:
            raise w_at.error(
                f"the compose lab runs at most {COMPOSE_MAX_WORKERS} workers, got {workers}"
            )
    return Topology(grapes, workers, worker_concurrency=concurrency, nodes=nodes)
