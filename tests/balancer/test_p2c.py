"""Power of two choices: weighted draws and the cost comparison (seeded)."""

from __future__ import annotations

import random
from collections import Counter

from lab.balancer.scoring import cost, draw, p2c


def test_cost_is_latency_times_load_times_factor() -> None:
    assert cost(0.002, 0) == 0.002
    assert cost(0.002, 3, 10.0) == 0.002 * 4 * 10


def test_draw_follows_the_weights_and_skips() -> None:
    rng = random.Random(1)
    counts = Counter(draw([1.0, 1.0, 0.1], rng) for _ in range(21_000))
    assert 0.04 < counts[2] / 21_000 < 0.055  # 0.1 / 2.1
    assert all(draw([1.0, 5.0, 1.0], rng, skip=1) != 1 for _ in range(500))


def test_p2c_prefers_the_cheap_peer_but_not_exclusively() -> None:
    rng = random.Random(7)
    latency = [0.001, 0.001, 0.050]
    counts = Counter(p2c([1.0] * 3, lambda i: latency[i], rng) for _ in range(3000))
    assert counts[2] == 0  # the slow one loses every pair it is in
    assert 0.4 < counts[0] / 3000 < 0.6  # the two fast ones share


def test_p2c_spreads_by_load_among_equals() -> None:
    rng = random.Random(3)
    in_flight = [0, 0, 0, 0]
    for _ in range(400):
        i = p2c([1.0] * 4, lambda k: cost(0.001, in_flight[k]), rng)
        in_flight[i] += 1
    assert max(in_flight) - min(in_flight) <= 2  # P2C's hallmark: tight balance


def test_slow_start_weight_gives_a_proportional_share() -> None:
    rng = random.Random(5)
    shares = []
    for w in (0.1, 0.4, 1.0):
        counts = Counter(p2c([w, 1.0, 1.0], lambda i: 0.001, rng) for _ in range(6000))
        shares.append(counts[0] / 6000)
    assert shares[0] < 0.1 < shares[1] < shares[2]
    assert 0.28 < shares[2] < 0.39


def test_one_candidate() -> None:
    assert p2c([0.3], lambda i: 1.0, random.Random(0)) == 0
