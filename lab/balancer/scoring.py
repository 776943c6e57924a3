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

Costs within ``tie_ratio`` of each other are a tie, and a tie goes to the first
candidate drawn (a weighted random choice). Strict "lower wins" turns millisecond noise
between healthy peers into herding: on the Compose lab, with 3-5 ms answers and
in-flight counts mostly 0, the peer whose estimate happened to be lowest took every
comparison it was in and the highest got nothing for a second at a time, so a healed
peer's share kept dipping below half its fair share long after it had recovered. A
real difference (a +300 ms worker, a doubled in-flight count) is far outside the band.

For the same reason latencies are priced at no less than ``latency_floor_s`` (20 ms): on
a busy 2-core host a healthy peer's single 10-20 ms answer (a GC pause, a scheduler
hiccup) made its peak estimate 5-10x its neighbours' and starved it for a second or
more. Below the floor, only the in-flight count tells peers apart, which is what P2C
is for; above it, latency counts in full.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChoiceConfig:
    """How different two costs must be for the comparison to matter."""

    tie_ratio: float = 1.5  # costs within this factor of each other are a tie
    latency_floor_s: float = 0.020  # latencies below this are priced as this (noise)

    def __post_init__(self) -> None:
        if not (self.tie_ratio >= 1 and math.isfinite(self.tie_ratio)):
            raise ValueError(f"tie_ratio: must be a finite number >= 1, not {self.tie_ratio!r}")
        if not (self.latency_floor_s >= 0 and math.isfinite(self.latency_floor_s)):
            raise ValueError(
                f"latency_floor_s: must be a finite number >= 0, not {self.latency_floor_s!r}"
            )


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


def p2c(
    weights: Sequence[float],
    costs: Callable[[int], float],
    rng: random.Random,
    tie_ratio: float = 1.0,
) -> int:
    """Draw two distinct indices by weight; return the one with the clearly lower cost.

    The second candidate wins only when its cost times ``tie_ratio`` is below the
    first's; otherwise the first (drawn at random by weight) stays. ``costs`` is called
    for the two drawn only, so a pick costs two cost evaluations whatever the number
    of peers.
    """
    n = len(weights)
    if n == 0:
        raise ValueError("p2c needs at least one candidate")
    if n == 1:
        return 0
    a = draw(weights, rng)
    b = draw(weights, rng, skip=a)
    return b if costs(b) * tie_ratio < costs(a) else a
