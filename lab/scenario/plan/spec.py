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
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lab.balancer.policy_file import check_policy_ref, is_policy_ref
from lab.balancer.registry import POLICY_NAMES
from lab.errors import SettingsError
from lab.loadgen.limits import MAX_PAYLOAD_BYTES, MAX_RATE, load_problem
from lab.scenario.plan import netkinds
from lab.scenario.plan.byo import BYO_SERVICE, check_compose_policy, compose_root
from lab.scenario.plan.fit import Demand, HostFacts, antagonist_cores, problem
from lab.scenario.plan.quantities import (
    Bound,
    format_duration,
    parse_bound,
    parse_duration,
    parse_number,
)
from lab.scenario.plan.timeline import (
    NAME,
    ChaosStep,
    FaultStep,
    HealStep,
    Interval,
    PlannedStep,
    Step,
    Topology,
    check_overlaps,
    expand,
    parse_timeline,
    plan_of,
)
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

__all__ = [
    "ChaosStep",
    "ClientSpec",
    "FaultStep",
    "HealStep",
    "LoadSpec",
    "PlannedStep",
    "Scenario",
    "Step",
    "Topology",
    "load_scenario",
    "parse_scenario",
]

POLICIES: tuple[str, ...] = POLICY_NAMES
RUNTIMES: tuple[str, ...] = ("compose", "local")
ARRIVALS: tuple[str, ...] = ("constant", "poisson")
SERVICES: tuple[str, ...] = ("rpc_test",)
# The Compose lab's fixed cast (compose.yaml): client containers and their policies.
COMPOSE_CLIENTS: dict[str, str] = {
    "client-adaptive": "adaptive",
    "client-random": "random",
    "client-round_robin": "round_robin",
    "client-oracle": "oracle",
    "client-adaptive-2": "adaptive",
    # profile `policies`: started for the runs that name them (lab/stack/shape.py)
    "client-least_request": "least_request",
    "client-peak_ewma": "peak_ewma",
    "client-prequal": "prequal",
    "client-c3": "c3",
    "client-adaptive_hedged": "adaptive_hedged",
}
COMPOSE_GRAPES = 3
COMPOSE_WORKERS = 3
COMPOSE_MAX_GRAPES = 8  # lab.stack.shape.MAX_GRAPES (not imported: no Docker SDK to validate)
COMPOSE_MAX_WORKERS = 16  # lab.stack.shape.MAX_WORKERS
# What an expectation may bound; the checker's definitions are in checks.py.
EXPECT_METRICS: tuple[str, ...] = (
    "detection_s",
    "availability",
    "p99_ratio",
    "recovery_s",
    "p50_ms",
    "p99_ms",
    "p999_ms",
    "errors",
    "retries",
    "gossip_lead_s",
    "gossip_lag_s",
    "max_faulty_share",
)
STEADY_METRICS: tuple[str, ...] = ("availability", "p50_ms", "p99_ms", "p999_ms")
MAX_CLIENTS = 32
"""Clients a scenario may list (the Compose lab has 5; each local one is a process)."""
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


@dataclass(frozen=True, slots=True)
class ClientSpec:
    name: str
    policy: str
    gossip: bool = True
    rate: float | None = None  # this client's own rate; None: the load's rate

    def rate_of(self, load: LoadSpec) -> float:
        return load.rate if self.rate is None else self.rate


@dataclass(frozen=True, slots=True)
class LoadSpec:
    rate: float  # requests per second, per client
    arrival: str = "constant"
    payload_bytes: int = 64
    service: str = "rpc_test"
    timeout_s: float = 1.0  # per-request deadline

    def control_body(self, duration_s: float, seed: int) -> dict[str, Any]:
        """The body of a client's ``POST /load/start`` (contracts.md)."""
        return {
            "rate": self.rate,
            "arrival": self.arrival,
            "payload_bytes": self.payload_bytes,
            "duration_s": duration_s,
            "seed": seed,
            "timeout_s": self.timeout_s,
        }


@dataclass(frozen=True)
class Scenario:
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


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate one scenario file; raises ``ScenarioError`` naming file:line: field."""
    label = str(path)
    return parse_scenario(read_file(Path(path)), label)


def parse_scenario(
    text: str,
    label: str = "<scenario>",
    host: HostFacts | None = None,
    root: Path | None = None,
) -> Scenario:
    """Validate scenario text; ``label`` is the file name the errors carry.

    ``host``: the machine a compose shape must fit (default: this one, read once).
    ``root``: the repository whose ``policies/`` the Compose clients mount (default: the
    one the Compose runtime uses, :func:`lab.scenario.plan.byo.compose_root`).
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
    clients = _clients(clients_v, at, runtime, root)
    topology = replace(topology, clients=tuple(c.name for c in clients))
    load_v, at = top.need("load")
    load = _load(load_v, at)
    for c in clients:
        problem = None if c.rate is None else load_problem(c.rate, load.payload_bytes)
        if problem is not None:
            raise at.error(f"payload_bytes at client {c.name}'s rate: {problem[1]}")

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
    steady = _bounds(ss_v, ss_at, STEADY_METRICS, steady_refs) if ss_v is not None else {}

    tl_v, tl_at = top.get("timeline")
    timeline = parse_timeline(tl_v if tl_v is not None else YList(), tl_at, topology, duration)
    netkinds.check_runtime(timeline, str(runtime), label)
    intervals = expand(timeline, seed)
    check_overlaps(intervals, label, duration)
    if runtime == "compose":
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
    expect = _expect(exp_v, exp_at, clients) if exp_v is not None else {}
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
        return Topology()
    s = Section(value, at, "a mapping like {grapes: 3, workers: 3}")
    g_v, g_at = s.get("grapes", 3)
    w_v, w_at = s.get("workers", 3)
    c_v, c_at = s.get("worker_concurrency", 0)
    s.done()
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
    return Topology(grapes, workers, worker_concurrency=concurrency)


def _policy(value: Any, at: Field, check_ref: Callable[[str], str]) -> str:
    """A built-in policy, or ``path/to/file.py:ClassName`` (its file checked, never run).

    ``check_ref`` checks a file reference: relative to the working directory on the local
    runtime, inside the repository's ``policies/`` on Compose (lab.scenario.plan.byo).
    """
    if isinstance(value, str) and is_policy_ref(value):
        try:
            return check_ref(value)
        except SettingsError as exc:
            raise at.error(str(exc)) from None
    if value not in POLICIES:
        raise at.error(
            f"unknown policy {describe(value)}{did_you_mean(str(value), POLICIES)}; "
            f"policies: {', '.join(POLICIES)}"
        )
    return str(value)


def _client_suffix(policy: str) -> str:
    """``adaptive`` -> ``adaptive``; ``policies/mine.py:MyPolicy`` -> ``MyPolicy``."""
    return policy.rpartition(":")[2] if is_policy_ref(policy) else policy


def _ref_checker(runtime: str, root: Path | None) -> Callable[[str], str]:
    """How this runtime's clients find a policy file (see :func:`_policy`)."""
    if runtime != "compose":
        return lambda text: check_policy_ref(text).text
    return lambda text: check_compose_policy(text, root if root is not None else compose_root())


def _clients(value: Any, at: Field, runtime: str, root: Path | None) -> tuple[ClientSpec, ...]:
    if not isinstance(value, YList) or not value:
        raise at.error(f"expected a non-empty list of policies or clients, got {describe(value)}")
    if len(value) > MAX_CLIENTS:
        raise at.error(f"{len(value)} clients; a scenario may have at most {MAX_CLIENTS}")
    check_ref = _ref_checker(runtime, root)
    out: list[ClientSpec] = []
    for i, item in enumerate(value):
        iat = at.item(value, i)
        if isinstance(item, str):
            policy = _policy(item, iat, check_ref)
            spec = ClientSpec(f"client-{_client_suffix(policy)}", policy)
        else:
            s = Section(item, iat, "a policy name or {name, policy, gossip}")
            n_v, n_at = s.need("name")
            if not isinstance(n_v, str) or not NAME.match(n_v):
                raise n_at.error(f"expected a client name, got {describe(n_v)}")
            known = COMPOSE_CLIENTS.get(n_v) if runtime == "compose" else None
            if s.has("policy") or known is None:
                p_v, p_at = s.need("policy")
                policy = _policy(p_v, p_at, check_ref)
            else:
                policy, p_at = known, n_at
            g_v, g_at = s.get("gossip", True)
            if not isinstance(g_v, bool):
                raise g_at.error(f"expected true or false, got {describe(g_v)}")
            r_v, r_at = s.get("rate")
            rate = None if r_v is None else parse_number(r_v, r_at, low=0.1, high=MAX_RATE)
            s.done()
            if known is not None and known != policy:
                raise p_at.error(f"{n_v} runs policy {known} in the compose lab, not {policy}")
            spec = ClientSpec(n_v, policy, g_v, rate)
        if runtime == "compose" and is_policy_ref(spec.policy):
            _check_byo(spec, out, iat)
        elif runtime == "compose" and spec.name not in COMPOSE_CLIENTS:
            raise iat.error(
                f"the compose lab has no client {quote(spec.name)}"
                f"{did_you_mean(spec.name, COMPOSE_CLIENTS)}; clients: "
                f"{', '.join(COMPOSE_CLIENTS)}, or a policy of yours as "
                "policies/<file>.py:<Class>"
            )
        if any(c.name == spec.name for c in out):
            raise iat.error(f"client {quote(spec.name)} is listed twice")
        out.append(spec)
    return tuple(out)


_SERVICE_NAME = re.compile(r"^(grape-\d+|worker-\d+|toxiproxy)$")
"""Names the Compose lab's other services have (a learner's client may not take one)."""


def _check_byo(spec: ClientSpec, before: list[ClientSpec], at: Field) -> None:
    """A learner's policy on Compose: one per run, under a name no built-in client has.

    It runs in compose.yaml's one ``client-byo`` service (why one: lab.scenario.plan.byo);
    its records carry ``spec.name`` and the reference as written.
    """
    taken = (
        f"the compose lab's {COMPOSE_CLIENTS[spec.name]} client"
        if spec.name in COMPOSE_CLIENTS
        else "a service of the compose lab"
        if _SERVICE_NAME.match(spec.name)
        else None
    )
    if taken is not None:
        raise at.error(
            f"{quote(spec.name)} is {taken}; name the client of {spec.policy} otherwise, "
            f"e.g. {{name: client-mine, policy: {spec.policy}}}"
        )
    other = next((c for c in before if is_policy_ref(c.policy)), None)
    if other is not None:
        raise at.error(
            f"the compose lab runs one policy of yours per run (in {BYO_SERVICE}), and "
            f"{other.name} already runs {other.policy}; compare several with runtime: local"
        )


def _load(value: Any, at: Field) -> LoadSpec:
    s = Section(value, at, "a mapping like {rate: 100}")
    r_v, r_at = s.need("rate")
    rate = parse_number(r_v, r_at, low=0.1, high=MAX_RATE)
    a_v, a_at = s.get("arrival", "constant")
    if a_v not in ARRIVALS:
        raise a_at.error(
            f"expected one of {', '.join(ARRIVALS)}, got {describe(a_v)}"
            f"{did_you_mean(str(a_v), ARRIVALS)}"
        )
    p_v, p_at = s.get("payload_bytes", 64)
    payload = int(parse_number(p_v, p_at, low=0, high=MAX_PAYLOAD_BYTES, integer=True))
    problem = load_problem(rate, payload)  # the clients' own limits (lab.loadgen.limits)
    if problem is not None:
        raise (p_at if problem[0] == "payload_bytes" else r_at).error(problem[1])
    sv_v, sv_at = s.get("service", "rpc_test")
    if sv_v not in SERVICES:
        raise sv_at.error(f"the lab's workers serve {', '.join(SERVICES)}, not {describe(sv_v)}")
    t_v, t_at = s.get("timeout", "1s")
    timeout = parse_duration(t_v, t_at, allow_zero=False)
    if timeout > 60:
        raise t_at.error(f"must be <= 60s, got {format_duration(timeout)}")
    s.done()
    return LoadSpec(rate, str(a_v), payload, str(sv_v), timeout)


def _bounds(
    value: Any,
    at: Field,
    metrics: tuple[str, ...],
    refs: RefCheck | None = None,
) -> dict[str, Bound]:
    """Metric -> bound; ``refs`` allows (and checks) bounds relative to another client."""
    s = Section(value, at, 'a mapping of metric -> bound, like {availability: ">= 0.999"}')
    out: dict[str, Bound] = {}
    for key in list(s.map):
        if key not in metrics:
            name = str(key)
            raise at.key(s.map, name).error(
                f"unknown metric {quote(name)}{did_you_mean(name, metrics)}; metrics: "
                f"{', '.join(metrics)}"
            )
        v, v_at = s.get(key)
        bound = parse_bound(v, v_at, relative=refs is not None)
        if bound.ref is not None and refs is not None:
            refs.check(bound.ref, v_at)
        out[key] = bound
    s.done()
    return out


@dataclass(frozen=True, slots=True)
class RefCheck:
    """Which clients a relative bound of one expectation key may name.

    The ref must name exactly one client of the run (a policy with one client, or a
    client name), and not the client(s) the key itself names: a bound against itself
    always holds and says nothing.
    """

    key: str
    clients: tuple[ClientSpec, ...]

    def _named(self, name: str) -> list[str]:
        named = [c.name for c in self.clients if c.name == name]
        return named or [c.name for c in self.clients if c.policy == name]

    def check(self, ref: str, at: Field) -> None:
        names = [c.name for c in self.clients] + sorted({c.policy for c in self.clients})
        found = self._named(ref)
        if not found:
            raise at.error(
                f"the bound compares with {ref!r}, which is no client or policy of this run"
                f"{did_you_mean(ref, names)}; clients: {', '.join(c.name for c in self.clients)}"
            )
        if len(found) > 1:
            raise at.error(
                f"the bound compares with {ref!r}, which names {len(found)} clients "
                f"({', '.join(found)}); name one client"
            )
        if found[0] in self._named(self.key):
            raise at.error(f"the bound compares {self.key!r} with itself ({ref!r})")


def _expect(value: Any, at: Field, clients: tuple[ClientSpec, ...]) -> dict[str, dict[str, Bound]]:
    s = Section(value, at, "a mapping of policy or client -> {metric: bound}")
    names = [c.name for c in clients] + sorted({c.policy for c in clients})
    out: dict[str, dict[str, Bound]] = {}
    for key in list(s.map):
        name = str(key)
        if name not in names:
            raise at.key(s.map, name).error(
                f"no client or policy {quote(name)} in this run{did_you_mean(name, names)}; "
                f"clients: {', '.join(c.name for c in clients)}"
            )
        v, v_at = s.get(key)
        out[name] = _bounds(v, v_at, EXPECT_METRICS, RefCheck(name, clients))
    s.done()
    return out
