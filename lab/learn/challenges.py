"""The challenge ladder: six scenarios, each judging the learner's policy against targets.

A challenge is a scenario file in ``scenarios/challenges/`` whose client ``client-you``
runs ``random`` as written; :func:`with_policy` swaps in the learner's policy, so the file
stays a valid scenario of its own (``lab run`` on it shows the baseline). ``random`` and
``oracle`` run in the same lab as references: a relative target (``">= client-random -
0.001"``) is judged against the figure they measured in the very same run, which holds on
a busy host where an absolute bound would not.

:func:`judge` reads the run's ``summary.json`` and keeps only ``client-you``'s
expectations: the challenge passes when every one of them does. It is pure, so the
known-answer tests can judge stored summaries too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.balancer.policy_file import check_policy_ref, is_policy_ref
from lab.balancer.registry import POLICY_NAMES
from lab.errors import SettingsError

ROOT = Path(__file__).resolve().parents[2]
CHALLENGE_DIR = ROOT / "scenarios" / "challenges"
YOU = "client-you"
REFERENCES = ("client-random", "client-oracle")
GUIDE = "LEARNING_GUIDE.md"


@dataclass(frozen=True, slots=True)
class Challenge:
    number: int
    slug: str
    title: str
    skill: str  # what it grades, in a word or two
    read_next: str  # the guide's step to read when it fails

    @property
    def file(self) -> Path:
        return CHALLENGE_DIR / f"{self.number}-{self.slug}.yaml"


CHALLENGES: tuple[Challenge, ...] = (
    Challenge(1, "avoid", "avoid a blackholed worker", "availability",
              f"{GUIDE} step 5 (a local metrics engine) and step 7 (the circuit breaker)"),
    Challenge(2, "detect", "detect it within a second", "detection",
              f"{GUIDE} step 7 (the circuit breaker: per-attempt timeouts, failure rate)"),
    Challenge(3, "slow", "route around a slow worker", "latency",
              f"{GUIDE} step 6 (peer scoring: peak EWMA, power of two choices)"),
    Challenge(4, "recover", "use the worker again after the heal", "recovery",
              f"{GUIDE} step 9 (decay and recovery: half-open probes, slow start)"),
    Challenge(5, "gossip", "learn from a neighbour's gossip", "gossip",
              f"{GUIDE} step 8 (gossip: weak hints, strong guarantees)"),
    Challenge(6, "all-slow", "never worse than random when every worker slows", "no harm",
              f"{GUIDE} step 10 (failure injection: faults that hit every peer)"),
)  # fmt: skip


def challenge(number: int) -> Challenge:
    for c in CHALLENGES:
        if c.number == number:
            return c
    raise SettingsError(f"no challenge {number}; there are 1 to {len(CHALLENGES)} (--list)")


def check_policy(text: str) -> str:
    """The policy to judge: a built-in name or a file reference, checked without running."""

    if is_policy_ref(text):
        return check_policy_ref(text).text
    if text not in POLICY_NAMES:
        raise SettingsError(
            f"--policy: {text!r} is neither path/to/file.py:ClassName nor one of "
            f"{', '.join(POLICY_NAMES)}"
        )
    return text


def with_policy(scenario: Any, policy: str) -> Any:
    """``scenario`` with ``client-you`` running ``policy`` (see the module docstring)."""
    clients = tuple(
        dataclasses.replace(c, policy=policy) if c.name == YOU else c for c in scenario.clients
    )
    if not any(c.name == YOU for c in clients):
        raise SettingsError(f"{scenario.name}: the challenge has no {YOU}")
    return dataclasses.replace(scenario, clients=clients)


@dataclass(frozen=True, slots=True)
class Target:
    """One of ``client-you``'s expectations as judged, with the references' figures."""

    metric: str
    bound: str  # as written
    bound_value: float | None  # a relative bound resolved in this run
    measured: float | None
    passed: bool
    detail: str
    references: Mapping[str, float | None]  # client -> its figure for the metric


@dataclass(frozen=True, slots=True)
class Verdict:
    passed: bool
    targets: tuple[Target, ...]
    aborted: str | None = None  # the abort reason: no verdict at all
    unknown: str | None = None  # the references moved: the host was too busy to judge


def _figure(entry: Mapping[str, Any], metric: str) -> float | None:
    """A client's figure: its summary field, or its worst fault's (detection, p99...)."""
    key = {"p99_ms": "p99_ms_during", "p50_ms": "p50_ms_during"}.get(metric, metric)
    value = entry.get(key)
    return float(value) if isinstance(value, int | float) else None


def judge(summary: Mapping[str, Any]) -> Verdict:
    """``client-you``'s verdict in a run's summary (see the module docstring)."""
    if summary.get("status") == "aborted":
        return Verdict(False, (), aborted=str(summary.get("abort_reason") or "aborted"))
    by_client = {
        str(v.get("client")): v
        for v in (summary.get("policies") or {}).values()
        if isinstance(v, Mapping)
    }
    targets = []
    for e in summary.get("expectations") or []:
        if e.get("client") != YOU:
            continue
        metric = str(e.get("metric"))
        refs = {c: _figure(by_client.get(c, {}), metric) for c in REFERENCES if c in by_client}
        targets.append(
            Target(
                metric=metric,
                bound=str(e.get("bound")),
                bound_value=e.get("bound_value"),
                measured=e.get("measured"),
                passed=e.get("verdict") == "pass",
                detail=str(e.get("detail") or ""),
                references=refs,
            )
        )
    unknown = summary.get("verdict_reason") if summary.get("verdict") == "unknown" else None
    passed = bool(targets) and all(t.passed for t in targets)
    return Verdict(passed, tuple(targets), unknown=unknown)
