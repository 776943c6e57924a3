"""Decision overhead per request: the adaptive policy's pick and bookkeeping vs random's.

One "decision" is what the client does around every attempt apart from the network:
``choose()`` (breaker checks, P2C over costs, slow-start weights, gossip factors),
``started()`` and ``finished()`` (peak EWMA, windows, breaker, budget). The random
policy (upstream Grenache's rule) doing the same calls is the baseline, measured in the
same run, interleaved in rounds so both see the same machine. Latencies are drawn from
a seeded distribution with one slow peer, so the adaptive code takes its real branches.

Goal (issue 4): <= 20 us per decision for the adaptive policy with 3 peers.
Run: ``.venv/bin/python benchmarks/bench_pick.py [--decisions 200000] [--rounds 5]``.
Exit 0 when the goal is met, 1 when not.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

from lab.balancer.policies import Policy, make_policy
from lab.clock import FakeClock
from lab.history import Outcome

GOAL_US = 20.0


def build(name: str, peers: int, seed: int) -> tuple[Policy, FakeClock, list[float], str]:
    clock = FakeClock(start=1000.0)
    policy = make_policy(name, clock=clock, rng=random.Random(seed))
    addrs = [f"10.0.0.{i}:1337" for i in range(peers)]
    policy.set_peers(addrs)
    rng = random.Random(seed + 1)
    # per-decision latencies: most peers ~3 ms, the last one ~300 ms
    latencies = [rng.expovariate(1 / 0.003) for _ in range(4096)]
    return policy, clock, latencies, addrs[-1]


def run(policy: Policy, clock: FakeClock, latencies: list[float], slow: str, n: int) -> float:
    """Seconds of CPU per decision over ``n`` decisions (clock moves 10 ms each)."""
    mask = len(latencies) - 1
    start = time.perf_counter()
    for i in range(n):
        pick = policy.choose()
        policy.started(pick)
        rtt = latencies[i & mask] + (0.3 if pick.peer == slow else 0.0)
        clock.advance(0.01)
        policy.finished(pick, rtt, Outcome.OK)
    return (time.perf_counter() - start) / n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decisions", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    ok = True
    for peers in (3, 30):
        per: dict[str, list[float]] = {"random": [], "adaptive": []}
        for r in range(args.rounds):
            for name in per:
                policy, clock, lat, slow = build(name, peers, seed=r)
                run(policy, clock, lat, slow, 2_000)  # warm up caches and history
                per[name].append(run(policy, clock, lat, slow, args.decisions))
        rnd = statistics.median(per["random"]) * 1e6
        ada = statistics.median(per["adaptive"]) * 1e6
        print(
            f"{peers:>2} peers: adaptive {ada:6.2f} us/decision, random {rnd:6.2f} us, "
            f"ratio {ada / rnd:4.1f}x (median of {args.rounds} rounds x {args.decisions})"
        )
        if peers == 3:
            met = ada <= GOAL_US
            ok = ok and met
            print(f"goal <= {GOAL_US:g} us with 3 peers: {'met' if met else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
