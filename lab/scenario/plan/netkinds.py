"""Validation of the network-namespace fault kinds: ``link_partition``, ``packet``, ``dns``,
``ghost``.

Kept apart from ``kinds.py`` (which only registers them) because their parameters name
other services (``peers``, ``peer``) and packet filters; they are applied by
:mod:`lab.scenario.faults.network`. A peer is a service name (``grape-2``, ``client-random``,
``toxiproxy``) or a group (``grapes``, ``workers``, ``clients``), resolved to addresses
when the fault is injected.
"""

from __future__ import annotations

import re
from typing import Any

from lab.scenario.plan.quantities import parse_number
from lab.scenario.plan.yamlsource import Field, Section, YList, describe, did_you_mean

Params = dict[str, Any]

GROUPS = {"grapes": "grape", "workers": "worker", "clients": "client"}
DIRECTIONS = ("both", "in", "out")
PROTOCOLS = ("all", "tcp", "udp")
_SERVICE = re.compile(r"^(grape-\d+|worker-\d+|client-[A-Za-z0-9_.-]+|toxiproxy)$")
PACKET_EFFECTS = ("loss", "delay_ms", "jitter_ms", "reorder", "corrupt", "rate_kbps")


def _peer(value: Any, at: Field) -> str:
    if not isinstance(value, str) or not (value in GROUPS or _SERVICE.match(value)):
        raise at.error(
            f"expected a service (grape-N, worker-N, client-..., toxiproxy) or a group "
            f"({', '.join(GROUPS)}), got {describe(value)}"
            f"{did_you_mean(str(value), GROUPS)}"
        )
    return value


def _direction(s: Section) -> str:
    v, at = s.get("direction", "both")
    if v not in DIRECTIONS:
        raise at.error(
            f"expected one of {', '.join(DIRECTIONS)} (in: what the target receives, "
            f"out: what it sends), got {describe(v)}{did_you_mean(str(v), DIRECTIONS)}"
        )
    return str(v)


def link_partition(s: Section) -> Params:
    """``peers: [grape-2]`` (or groups), ``direction: both|in|out``."""
    v, at = s.need("peers")
    items = v if isinstance(v, YList) else [v]
    if not items:
        raise at.error("expected at least one peer")
    peers = [_peer(p, at.item(v, i) if isinstance(v, YList) else at) for i, p in enumerate(items)]
    return {"peers": peers, "direction": _direction(s)}


def _percent(s: Section, key: str) -> float:
    v, at = s.get(key, 0)
    return parse_number(v, at, low=0.0, high=100.0)


def packet(s: Section) -> Params:
    """Effects (shares in %), ``protocol``/``port``/``peer`` filter, ``direction``."""
    out: Params = {
        "loss": _percent(s, "loss"),
        "duplicate": 0.0,
        "reorder": _percent(s, "reorder"),
        "corrupt": _percent(s, "corrupt"),
    }
    for key in ("delay_ms", "jitter_ms"):
        v, at = s.get(key, 0)
        out[key] = parse_number(v, at, low=0, high=10_000)
    if s.has("duplicate"):
        _, at = s.get("duplicate")
        raise at.error(
            "duplicate is not available here: NFQUEUE can only pass, drop or rewrite a "
            "packet, and this kernel has no netem (see docs/scenarios.md)"
        )
    del out["duplicate"]
    rate, rat = s.get("rate_kbps")
    out["rate_kbps"] = (
        None if rate is None else int(parse_number(rate, rat, low=1, high=10_000_000, integer=True))
    )
    if out["reorder"] and not out["delay_ms"]:
        raise s.at.error("reorder needs delay_ms: reordered packets overtake delayed ones")
    if not any(out[k] for k in PACKET_EFFECTS):
        raise s.at.error(f"a packet fault needs at least one of {', '.join(PACKET_EFFECTS)}")
    p, pat = s.get("protocol", "all")
    if p not in PROTOCOLS:
        raise pat.error(f"expected one of {', '.join(PROTOCOLS)}, got {describe(p)}")
    out["protocol"] = p
    port, port_at = s.get("port")
    if port is not None:
        if p == "all":
            raise port_at.error("a port filter needs protocol: tcp or udp")
        out["port"] = int(parse_number(port, port_at, low=1, high=65535, integer=True))
    peer, peer_at = s.get("peer")
    if peer is not None:
        out["peer"] = _peer(peer, peer_at)
    out["direction"] = _direction(s)
    if out["rate_kbps"] is not None and (port is not None or peer is not None or p != "all"):
        raise rat.error("rate_kbps shapes the target's whole egress: no protocol/port/peer filter")
    if out["rate_kbps"] is not None and out["direction"] == "in":
        raise rat.error("rate_kbps shapes egress only: direction out or both")
    return out


def dns(s: Section) -> Params:
    """``mode: drop`` (lookups time out) or ``reject`` (they fail at once)."""
    v, at = s.get("mode", "drop")
    if v not in ("drop", "reject"):
        raise at.error(f"expected drop or reject, got {describe(v)}")
    return {"mode": v}


_ADDRESS = re.compile(r"^[A-Za-z0-9_.-]+:\d{1,5}$")


def ghost(s: Section) -> Params:
    """``address: host:port`` announced for ``service`` every ``interval_ms``."""
    v, at = s.get("address", "10.231.0.99:1337")
    if not isinstance(v, str) or not _ADDRESS.match(v) or not 0 < int(v.rsplit(":", 1)[1]) < 65536:
        raise at.error(f"expected host:port, got {describe(v)}")
    sv, sat = s.get("service", "rpc_test")
    if not isinstance(sv, str) or not sv:
        raise sat.error(f"expected a service name, got {describe(sv)}")
    iv, iat = s.get("interval_ms", 1000)
    interval = int(parse_number(iv, iat, low=100, high=60_000, integer=True))
    return {"address": v, "service": sv, "interval_ms": interval}


NETNS_KINDS = ("link_partition", "packet", "dns")


WHY_NOT = {
    "local": "local services share the host's",
    "swarm": "its helper runs on the Compose engine; on swarm, a grape_partition or a node fault",
}
"""Why a runtime has no network-namespace faults, by runtime."""


def check_runtime(steps: tuple[Any, ...], runtime: str, label: str) -> None:
    """Refuse network-namespace kinds on runtimes without them, naming the step's line.

    Why at validation: on local processes (the host's namespace) and on swarm (tasks in
    the nodes' engines; lab.scenario.faults.network drives the Compose engine only) such
    a fault could only fail at injection, half-way through a run.
    """
    if runtime not in WHY_NOT:
        return
    for i, step in enumerate(steps):
        kinds = [getattr(step, "kind", None)] + [k for k, _ in getattr(step, "kinds", ())]
        bad = [k for k in kinds if k in NETNS_KINDS]
        if bad:
            raise Field(label, int(step.line), f"timeline[{i}]").error(
                f"{bad[0]} acts in a container's network namespace: it needs runtime: compose "
                f"({WHY_NOT[runtime]})"
            )
