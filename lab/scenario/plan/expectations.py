"""What a run must show: the ``steady_state`` and ``expect`` sections, metric -> bound.

Why a module of its own: bounds have rules of their own (which metrics each section may
bound, and a bound relative to another client must name exactly one client of the run,
never the one it bounds); the checks judge the run against what this returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lab.scenario.plan.clients import ClientSpec
from lab.scenario.plan.quantities import Bound, parse_bound
from lab.scenario.plan.yamlsource import Field, Section, did_you_mean, quote

# What an expectation may bound; the checker's definitions: lab/scenario/checks/recovery.py.
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


def parse_bounds(
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


def parse_expect(
    value: Any, at: Field, clients: tuple[ClientSpec, ...]
) -> dict[str, dict[str, Bound]]:
    """Policy or client name -> its bounds; each key must name clients of this run."""
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
        out[name] = parse_bounds(v, v_at, EXPECT_METRICS, RefCheck(name, clients))
    s.done()
    return out
