"""Peer choice: power of two choices on a latency-and-load cost.

cost = peak-EWMA latency x (in-flight + 1) x gossip factor (Finagle's P2C + peak EWMA,
Linkerd's default). Two candidates are drawn at random and the cheaper one wins: close
to "least loaded" in quality, but never herds every request onto the single best peer
the way a global minimum does, and costs O(1) per pick.

Slow-start weights enter the *draw*, not the cost. Dividing the cost by a weight of
0.1 makes the ramping peer lose every comparison until its weight overtakes the ratio
of latencies, then win about half: a cliff, not a ramp. Drawing candidates in
proportion to the weight gives a share that grows smoothly with it (about 7 % of the
requests at weight 0.1 among three peers, a fair third at 1).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence


def cost(latency_s: float, in_flight: int, factor: float = 1.0) -> float:
    """The P2C cost of a peer: lower is better."""
    return latency_s * (in_flight + 1) * factor


def draw(weights: Sequence[float], rng: random.Random, skip: int = -1) -> int:
    """An index drawn in proportion to ``weights`` (never ``skip``)."""
    total = 0.0
    for i, w in enumerate(weights):
        if i != skip:
            total += w
    r = rng.random() * total
    last = -1
    for i, w in enumerate(weights):
        if i == skip:
            continue
        last = i
        r -= w
        if r < 0:
            return i
    return last  # rounding left r at ~0: the last eligible index


def p2c(weights: Sequence[float], costs: Callable[[int], float], rng: random.Random) -> int:
    """Draw two distinct indices by weight; return the one with the lower cost.

    ``costs`` is called for the two drawn only, so a pick costs two cost evaluations
    whatever the number of peers.
    """
    n = len(weights)
    if n == 0:
        raise ValueError("p2c needs at least one candidate")
    if n == 1:
        return 0
    a = draw(weights, rng)
    b = draw(weights, rng, skip=a)
    return b if costs(b) < costs(a) else a
