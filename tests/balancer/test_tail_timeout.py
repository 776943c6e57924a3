"""The attempt timeout follows the typical peer's tail (lab/balancer/tail.py): answers
spread wide on every peer are not late, one slow peer earns no longer leash, and a tail
nobody refreshed for 10 s no longer counts."""

from __future__ import annotations

import random

import pytest

from lab.balancer.adaptive import AdaptivePolicy
from lab.balancer.registry import make_policy
from lab.balancer.tail import TAIL_FACTOR, TAIL_MAX_AGE_S, Tails
from lab.clock import FakeClock
from lab.history import Outcome

PEERS = ["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"]
A, B, C = PEERS


def adaptive(clock: FakeClock) -> AdaptivePolicy:
    p = make_policy("adaptive", clock=clock, rng=random.Random(1))
    assert isinstance(p, AdaptivePolicy)
    p.set_peers(PEERS)
    return p


def serve(p: AdaptivePolicy, clock: FakeClock, draw: dict[str, object], n: int) -> None:
    """``n`` requests one at a time, each answered after ``draw[peer]()`` seconds."""
    for _ in range(n):
        pick = p.choose()
        p.started(pick)
        seconds = draw[pick.peer]()  # type: ignore[operator]
        clock.advance(seconds)
        p.finished(pick, seconds, Outcome.OK)
        clock.advance(0.01)


def test_answers_spread_wide_on_every_peer_are_not_late() -> None:
    """A queue's spread (median ~60 ms, p95 ~250 ms): the leash covers twice the p95,
    where 4x the mean latency alone would cut the healthy tail."""
    clock, rng = FakeClock(1000.0), random.Random(7)
    p = adaptive(clock)

    def queued() -> float:
        return min(0.9, rng.expovariate(1 / 0.08))

    serve(p, clock, dict.fromkeys(PEERS, queued), 600)
    by_mean = p.attempts.multiplier * p.typical_latency(clock.monotonic())
    timeout = p.attempt_timeout(A, 5.0)
    assert timeout > by_mean
    assert timeout >= TAIL_FACTOR * 0.2  # p95 of an 80 ms exponential is ~240 ms


def test_one_slow_peer_earns_no_longer_leash() -> None:
    clock = FakeClock(1000.0)
    p = adaptive(clock)
    fast = {A: lambda: 0.002, B: lambda: 0.002, C: lambda: 0.5}
    serve(p, clock, fast, 900)
    assert p.tails.typical(clock.monotonic()) == pytest.approx(0.002)
    assert p.attempt_timeout(C, 5.0) == pytest.approx(p.attempts.floor_s)


def test_a_tail_nobody_refreshed_for_ten_seconds_no_longer_counts() -> None:
    tails = Tails()
    for _ in range(64):
        tails.answered(A, 0.3, now=0.0)
    assert tails.floor(0.0) == pytest.approx(TAIL_FACTOR * 0.3)
    assert tails.floor(TAIL_MAX_AGE_S + 0.1) == 0.0
    tails.forget(A)
    assert tails.typical(0.0) is None
