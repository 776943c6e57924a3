"""Verdicts: the scenario's expectations and its steady-state bounds, judged per client.

Chaos engineering's frame (chaostoolkit's steady-state hypothesis): the system must be
healthy before the first fault, or the experiment proves nothing, and healthy again
after the last heal, or it did not recover. "Before" is [start + warmup, first confirmed
fault); "after" is [last confirmed heal + settle, run end). Both are checked for every
client on the scenario's ``steady_state`` bounds (availability, p50/p99/p99.9 ms).

An expectation names a policy or a client; a policy expands to each of its clients, so
two adaptive clients are judged separately. A figure that cannot be measured fails the
expectation with the reason: a check that could not look must not let a broken run pass
(a run is ``unknown`` only when its control moved: ``lab.scenario.checks.control``). A relative
bound (``p99_ms: "<= random"``) is resolved against the ref client's figure for the same
metric in the same run; when that figure is missing, the verdict is "not measurable"
with the ref's reason, never a pass.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

from lab.history import History
from lab.scenario.checks.figures import ClientFigures, fault_windows, run_end, steady_until
from lab.scenario.checks.recovery import (
    Measure,
    availability,
    in_window,
    latencies_ms,
    quantile,
    settled_before,
)
from lab.scenario.plan.quantities import Bound
from lab.scenario.plan.spec import Scenario
from lab.verdict import Verdict


@dataclass(frozen=True, slots=True)
class Judgement:
    """One expectation (or steady-state bound) for one client, with what was measured."""

    client: str
    metric: str
    op: str
    bound: float
    measured: float | None
    verdict: Verdict
    reason: str = ""
    key: str = ""  # the expectation's key as written (a policy or a client name)
    phase: str = ""  # "before" | "after" for steady-state checks
    written: str = ""  # a relative bound as written ("<= random"); "" for absolute ones

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    @property
    def bound_text(self) -> str:
        return self.written or str(Bound(self.op, self.bound))


def judge(
    client: str, metric: str, bound: Bound, m: Measure, *, key: str = "", phase: str = ""
) -> Judgement:
    if m.value is None:
        return Judgement(
            client, metric, bound.op, bound.value, None, Verdict.FAIL,
            f"not measured: {m.reason or 'no data'}", key, phase,
        )  # fmt: skip
    ok = bound.holds(m.value)
    reason = "" if ok else f"measured {m.value:.4g}, bound {bound}"
    verdict = Verdict.PASS if ok else Verdict.FAIL
    return Judgement(client, metric, bound.op, bound.value, m.value, verdict, reason, key, phase)


def evaluate_expectations(
    scenario: Scenario, figures: Mapping[str, ClientFigures]
) -> list[Judgement]:
    """Every expectation of the scenario against the figures (keyed by client name)."""
    out: list[Judgement] = []
    for key, metrics in scenario.expect.items():
        clients = [c.name for c in scenario.clients_for(key)] or [key]
        for client in clients:
            cf = figures.get(client)
            for metric, bound in metrics.items():
                if cf is None:
                    m = Measure(None, f"no requests recorded from {client}")
                else:
                    m = cf.metric(metric)
                if bound.ref is None:
                    out.append(judge(client, metric, bound, m, key=key))
                else:
                    out.append(_judge_relative(scenario, figures, client, metric, bound, m, key))
    return out


def _judge_relative(
    scenario: Scenario,
    figures: Mapping[str, ClientFigures],
    client: str,
    metric: str,
    bound: Bound,
    m: Measure,
    key: str,
) -> Judgement:
    """``bound`` against the ref client's figure for ``metric`` in the same run."""
    ref = _ref_client(scenario, bound)
    rf = figures.get(ref)
    ref_m = Measure(None, f"no requests recorded from {ref}") if rf is None else rf.metric(metric)
    return _against_ref(client, metric, bound, m, ref, ref_m, key=key)


def _ref_client(scenario: Scenario, bound: Bound) -> str:
    assert bound.ref is not None
    return ([c.name for c in scenario.clients_for(bound.ref)] or [bound.ref])[0]


def _against_ref(
    client: str,
    metric: str,
    bound: Bound,
    m: Measure,
    ref: str,
    ref_m: Measure,
    *,
    key: str = "",
    phase: str = "",
) -> Judgement:
    """A relative ``bound`` resolved with the ref's figure ``ref_m`` (never a pass without it)."""
    written = str(bound)
    if ref_m.value is None:
        return Judgement(
            client, metric, bound.op, math.nan, m.value, Verdict.FAIL,
            f"not measurable: {ref}'s {metric}: {ref_m.reason or 'no data'}",
            key, phase, written=written,
        )  # fmt: skip
    v = judge(client, metric, bound.against(ref_m.value), m, key=key, phase=phase)
    note = f"{ref} measured {ref_m.value:.4g}, so the bound is {v.bound_text}"
    reason = f"{v.reason}; {note}" if v.reason else note
    return dataclasses.replace(v, reason=reason, written=written)


def _steady_measure(
    history: History, client: str, metric: str, lo: float, hi: float, phase: str
) -> Measure:
    mine = (r for r in history.requests if r.client == client)
    reqs = settled_before(mine, lo, hi) if phase == "before" else in_window(mine, lo, hi)
    if metric == "availability":
        return availability(reqs)
    q = {"p50_ms": 0.50, "p99_ms": 0.99, "p999_ms": 0.999}[metric]
    v = quantile(latencies_ms(reqs), q)
    return Measure(v, None if v is not None else "no answered requests in the window")


def _steady_or_empty(
    history: History, client: str, metric: str, lo: float, hi: float, phase: str
) -> Measure:
    if hi <= lo:
        return Measure(None, f"the {phase} window is empty")
    return _steady_measure(history, client, metric, lo, hi, phase)


def steady_windows(history: History, scenario: Scenario) -> dict[str, tuple[float, float]]:
    """Phase -> [lo, hi) in monotonic seconds; "after" only when a fault was confirmed."""
    start = history.meta.started_mono
    end = run_end(history)
    windows, _ = fault_windows(history)
    if not windows:
        return {"before": (start + scenario.warmup_s, end)}
    first = steady_until(history, windows)
    last = max(w.t1 for w in windows)  # an unhealed fault's t1 is the run's end
    return {
        "before": (start + scenario.warmup_s, first),
        "after": (last + scenario.settle_s, end),
    }


def check_steady_state(history: History, scenario: Scenario) -> list[Judgement]:
    """Each client's steady-state bounds before the first fault and after the last heal."""
    if not scenario.steady_state:
        return []
    clients = list(dict.fromkeys(r.client for r in history.requests))
    for c in scenario.client_names():
        if c not in clients:
            clients.append(c)
    out: list[Judgement] = []
    for phase, (lo, hi) in steady_windows(history, scenario).items():
        for client in clients:
            for metric, bound in scenario.steady_state.items():
                m = _steady_or_empty(history, client, metric, lo, hi, phase)
                if bound.ref is None:
                    out.append(judge(client, metric, bound, m, phase=phase))
                    continue
                ref = _ref_client(scenario, bound)
                ref_m = (
                    m if ref == client else _steady_or_empty(history, ref, metric, lo, hi, phase)
                )
                out.append(_against_ref(client, metric, bound, m, ref, ref_m, phase=phase))
    return out
