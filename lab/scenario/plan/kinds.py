"""The fault kinds a scenario may name, what they act on, and their parameters.

This is the spec's view of the nemesis: which kinds exist, which targets each accepts
(``worker-N`` / ``grape-N``), and the parameters with their ranges, so a typo or an
impossible value is refused before anything is touched. How a kind is injected lives
with the faults themselves (``faults.py``); parameters reach it as validated plain data.

Kinds:
- through Toxiproxy (workers only, on the proxy in front of the worker): ``latency``
  {latency_ms, jitter_ms}, ``partition`` (timeout 0 on both streams), ``one_way_partition``
  {direction: upstream|downstream}, ``down`` (proxy disabled), ``reset_peer``
  {timeout_ms}, ``bandwidth`` {rate_kbps}, ``slow_close`` {delay_ms};
- through the runtime (workers or grapes): ``kill`` (healed by starting it again),
  ``pause`` (unpause), ``restart`` (instant: it heals itself), ``grape_partition``
  (network disconnect, healed by reconnecting);
- through a worker's control endpoint: ``slow`` {latency: {kind, ms, ...}, cpu_ms},
  ``errors`` {error_rate}, ``antagonist`` {share} (a co-tenant taking that share of
  the worker's CPU while the fault holds: ``PUT /antagonist``);
- in a target's network namespace (Compose only, lab/scenario/plan/netkinds.py): ``link_partition``
  {peers, direction}, ``packet`` {loss, delay_ms, jitter_ms, reorder, corrupt, rate_kbps,
  protocol, port, peer, direction}, ``dns`` {mode}; through a grape's API: ``ghost``
  {address, service, interval_ms};
- on a whole Swarm node (swarm only, lab/scenario/plan/nodekinds.py): ``node_partition``
  (the node cut from the other nodes, the lab's host still reaching it), ``node_down``
  (its tasks paused and the node cut from everyone).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lab.scenario.plan import netkinds
from lab.scenario.plan.quantities import parse_number
from lab.scenario.plan.yamlsource import Field, Section, describe, did_you_mean

Params = dict[str, Any]


@dataclass(frozen=True, slots=True)
class KindInfo:
    name: str
    via: str  # "toxiproxy" | "runtime" | "control" | "netns" | "node"
    targets: tuple[str, ...]  # "worker", "grape", "client", "node"
    params: tuple[str, ...]  # accepted parameter names
    parse: Callable[[Section], Params]
    instant: bool = False  # heals itself (restart): no heal step, no ``for``


def _none(s: Section) -> Params:
    return {}


def _latency(s: Section) -> Params:
    v, at = s.need("latency_ms")
    j, jat = s.get("jitter_ms", 0)
    return {
        "latency_ms": int(parse_number(v, at, low=0, high=60_000, integer=True)),
        "jitter_ms": int(parse_number(j, jat, low=0, high=60_000, integer=True)),
    }


def _one_way(s: Section) -> Params:
    v, at = s.need("direction")
    if v not in ("upstream", "downstream"):
        raise at.error(f"expected upstream or downstream, got {describe(v)}")
    return {"direction": v}


def _reset_peer(s: Section) -> Params:
    v, at = s.get("timeout_ms", 0)
    return {"timeout_ms": int(parse_number(v, at, low=0, high=60_000, integer=True))}


def _bandwidth(s: Section) -> Params:
    v, at = s.need("rate_kbps")
    return {"rate_kbps": int(parse_number(v, at, low=1, high=10_000_000, integer=True))}


def _slow_close(s: Section) -> Params:
    v, at = s.need("delay_ms")
    return {"delay_ms": int(parse_number(v, at, low=0, high=60_000, integer=True))}


# The worker's latency distributions (contracts.md: fixed:0, uniform:100-300,
# normal:300,50, exp:50) as the JSON fields its PUT /behaviour takes.
LATENCY_FIELDS: dict[str, tuple[str, ...]] = {
    "fixed": ("ms",),
    "uniform": ("min_ms", "max_ms"),
    "normal": ("mean_ms", "stddev_ms"),
    "exp": ("mean_ms",),
}


def _slow(s: Section) -> Params:
    v, at = s.need("latency")
    lat = Section(v, at, "a mapping like {kind: fixed, ms: 300}")
    k, kat = lat.need("kind")
    if k not in LATENCY_FIELDS:
        raise kat.error(
            f"expected one of {', '.join(LATENCY_FIELDS)}, got {describe(k)}"
            f"{did_you_mean(str(k), LATENCY_FIELDS)}"
        )
    out: Params = {"kind": k}
    for name in LATENCY_FIELDS[k]:
        x, xat = lat.need(name)
        out[name] = parse_number(x, xat, low=0, high=60_000)
    lat.done()
    if k == "uniform" and out["min_ms"] > out["max_ms"]:
        raise at.key(lat.map, "max_ms").error(
            f"must be >= min_ms ({out['min_ms']:g}), got {out['max_ms']:g}"
        )
    if not s.has("cpu_ms"):
        return {"latency": out}
    c, cat = s.get("cpu_ms")  # real CPU per request too: what an antagonist can slow down
    return {"latency": out, "cpu_ms": parse_number(c, cat, low=0, high=1000)}


def _antagonist(s: Section) -> Params:
    v, at = s.need("share")
    # the worker refuses more than 0.95: its control endpoint must still answer the heal
    return {"share": parse_number(v, at, low=0.01, high=0.95)}


def _errors(s: Section) -> Params:
    v, at = s.need("error_rate")
    return {"error_rate": parse_number(v, at, low=0.0, high=1.0)}


_ANY = ("worker", "grape", "client")
_PACKET_PARAMS = (
    *netkinds.PACKET_EFFECTS,
    "duplicate",
    "protocol",
    "port",
    "peer",
    "direction",
)

KINDS: dict[str, KindInfo] = {
    k.name: k
    for k in (
        KindInfo("latency", "toxiproxy", ("worker",), ("latency_ms", "jitter_ms"), _latency),
        KindInfo("partition", "toxiproxy", ("worker",), (), _none),
        KindInfo("one_way_partition", "toxiproxy", ("worker",), ("direction",), _one_way),
        KindInfo("down", "toxiproxy", ("worker",), (), _none),
        KindInfo("reset_peer", "toxiproxy", ("worker",), ("timeout_ms",), _reset_peer),
        KindInfo("bandwidth", "toxiproxy", ("worker",), ("rate_kbps",), _bandwidth),
        KindInfo("slow_close", "toxiproxy", ("worker",), ("delay_ms",), _slow_close),
        KindInfo("kill", "runtime", ("worker", "grape"), (), _none),
        KindInfo("pause", "runtime", ("worker", "grape", "client"), (), _none),
        KindInfo("restart", "runtime", ("worker", "grape"), (), _none, instant=True),
        KindInfo("grape_partition", "runtime", ("worker", "grape"), (), _none),
        KindInfo("slow", "control", ("worker",), ("latency", "cpu_ms"), _slow),
        KindInfo("errors", "control", ("worker",), ("error_rate",), _errors),
        KindInfo("antagonist", "control", ("worker",), ("share",), _antagonist),
        # in the target's network namespace, by a helper container (lab/scenario/faults/network.py)
        KindInfo("link_partition", "netns", _ANY, ("peers", "direction"), netkinds.link_partition),
        KindInfo("packet", "netns", _ANY, _PACKET_PARAMS, netkinds.packet),
        KindInfo("dns", "netns", _ANY, ("mode",), netkinds.dns),
        KindInfo(
            "ghost", "control", ("grape",), ("address", "service", "interval_ms"), netkinds.ghost
        ),
        # on a Swarm node, by a helper on that node's engine (lab/scenario/faults/nodes.py)
        KindInfo("node_partition", "node", ("node",), (), _none),
        KindInfo("node_down", "node", ("node",), (), _none),
    )
}


def kind_info(value: Any, at: Field, *, extra: tuple[str, ...] = ()) -> KindInfo | None:
    """The kind named by ``value``; ``None`` for one of ``extra`` (e.g. ``chaos``)."""
    if isinstance(value, str) and value in extra:
        return None
    if not isinstance(value, str) or value not in KINDS:
        choices = [*KINDS, *extra]
        raise at.error(
            f"unknown fault kind {describe(value)}{did_you_mean(str(value), choices)}; "
            f"kinds: {', '.join(choices)}"
        )
    return KINDS[value]


def parse_params(info: KindInfo, section: Section) -> Params:
    """Validate the parameters of one kind, read from ``section`` (a step or a mapping)."""
    return info.parse(section)


def check_target_type(info: KindInfo, kind_of_target: str, target: str, at: Field) -> None:
    """``target`` (a service of kind ``kind_of_target``) must suit the fault kind."""
    if kind_of_target not in info.targets:
        allowed = " or ".join("a client" if t == "client" else f"{t}-N" for t in info.targets)
        if kind_of_target == "node":
            raise at.error(f"{info.name} acts on {allowed}, not on a Swarm node ({target!r})")
        raise at.error(f"{info.name} acts on {allowed}, not {target!r}")
