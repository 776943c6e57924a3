"""The clients of a scenario and the load they send: the ``clients`` and ``load`` sections.

Why a module of its own: who sends the load is its own set of rules (a policy by name or
a policy file, the Compose lab's fixed cast of client containers, each client's own rate
within the clients' limits), and the checks and the runtimes read these records, not the
YAML.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.balancer.policy_file import check_policy_ref, is_policy_ref
from lab.balancer.registry import POLICY_NAMES
from lab.errors import SettingsError
from lab.loadgen.limits import MAX_PAYLOAD_BYTES, MAX_RATE, load_problem
from lab.scenario.plan.byo import BYO_SERVICE, check_compose_policy, compose_root
from lab.scenario.plan.quantities import format_duration, parse_duration, parse_number
from lab.scenario.plan.steps import NAME
from lab.scenario.plan.yamlsource import Field, Section, YList, describe, did_you_mean, quote

POLICIES: tuple[str, ...] = POLICY_NAMES
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
MAX_CLIENTS = 32
"""Clients a scenario may list (the Compose lab has 5; each local one is a process)."""


@dataclass(frozen=True, slots=True)
class ClientSpec:
    """One client of the run: its service name, policy, gossip switch and own rate."""

    name: str
    policy: str
    gossip: bool = True
    rate: float | None = None  # this client's own rate; None: the load's rate

    def rate_of(self, load: LoadSpec) -> float:
        return load.rate if self.rate is None else self.rate


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """The load every client sends (each at its own rate where it has one)."""

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


def parse_clients(
    value: Any, at: Field, runtime: str, root: Path | None = None
) -> tuple[ClientSpec, ...]:
    """The ``clients`` list: policy names or ``{name, policy, gossip, rate}``, none twice.

    ``root``: the repository whose ``policies/`` the Compose clients mount (default: the
    one the Compose runtime uses, :func:`lab.scenario.plan.byo.compose_root`).
    """
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


def parse_load(value: Any, at: Field) -> LoadSpec:
    """The ``load`` mapping, held to the clients' own limits (lab.loadgen.limits)."""
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


def check_client_rates(clients: tuple[ClientSpec, ...], load: LoadSpec, at: Field) -> None:
    """Hold each client's own rate to the clients' limits at the load's payload size."""
    for c in clients:
        problem = None if c.rate is None else load_problem(c.rate, load.payload_bytes)
        if problem is not None:
            raise at.error(f"payload_bytes at client {c.name}'s rate: {problem[1]}")
