"""Decision overhead per request: every policy's pick and bookkeeping vs random's.

One "decision" is what the client does around every attempt apart from the network:
``choose()`` (breaker checks, P2C over costs, slow-start weights, gossip factors),
``started()`` and ``finished()`` (peak EWMA, windows, breaker, budget). The random
policy (upstream Grenache's rule) doing the same calls is the baseline, measured in the
same run, interleaved in rounds so both see the same machine. Latencies are drawn from
a seeded distribution with one slow peer, so the adaptive code takes its real branches.

For ``prequal`` a decision also includes answering its probes (``take_probe`` for each
of the 3 it asks for, at once, as if every probe came back before the next request);
for ``c3`` feeding it the reply's load report (``observe_load``). The network cost of
probes is not in it: that is the price of Prequal's information, paid off the hot path.

Goal (issues 4, 16): <= 20 us per decision for every policy with 3 peers.
Run: ``.venv/bin/python benchmarks/bench_pick.py [--decisions 200000] [--rounds 5]``.
Exit 0 when the goal is met, 1 when not.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

from lab.balancer.feedback import LoadFeedback, ProbeDriven
from lab.balancer.policies import Policy
from lab.balancer.registry import POLICY_NAMES, make_policy
from lab.clock import FakeClock
from lab.grenache.load import LoadReport
from lab.history import Outcome

REPORT = LoadReport(in_flight=2, queue=1, service_s=0.003, latency_s=0.006)

GOAL_US = 20.0


def build(name: str, peers: int, seed: int) -> tuple[Policy, FakeClock, list[float], str]:
    clock = FakeClock(start=1000.0)
    policy = make_policy(name, clock=clock, rng=random.Random(seed))
    addrs = [f"10.0.0.{i}:1337" for i in range(peers)]
    policy.set_peers(addrs)
    if isinstance(policy, ProbeDriven):
        probed = policy
        policy.set_prober(lambda peer: probed.take_probe(peer, REPORT))
    rng = random.Random(seed + 1)
    # per-decision latencies: most peers ~3 ms, the last one ~300 ms
    latencies = [rng.expovariate(1 / 0.003) for _ in range(4096)]
    return policy, clock, latencies, addrs[-1]


def run(policy: Policy, clock: FakeClock, latencies: list[float], slow: str, n: int) -> float:
    """Seconds of CPU per decision over ``n`` decisions (clock moves 10 ms each)."""
    mask = len(latencies) - 1
    feedback = policy.observe_load if isinstance(policy, LoadFeedback) else None
    start = time.perf_counter()
    for i in range(n):
        pick = policy.choose()
        policy.started(pick)
        rtt = latencies[i & mask] + (0.3 if pick.peer == slow else 0.0)
        clock.advance(0.01)
        if feedback is not None:
            feedback(pick.peer, REPORT)
        policy.finished(pick, rtt, Outcome.OK)
    return (time.perf_counter() - start) / n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decisions", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    ok = True
    for peers in (3, 30):
        per: dict[str, list[float]] = {name: [] for name in POLICY_NAMES}
        for r in range(args.rounds):
            for name in per:
                policy, clock, lat, slow = build(name, peers, seed=r)
                run(policy, clock, lat, slow, 2_000)  # warm up caches and history
                per[name].append(run(policy, clock, lat, slow, args.decisions))
        rnd = statistics.median(per["random"]) * 1e6
        for name, samples in per.items():
            us = statistics.median(samples) * 1e6
            line = f"{peers:>2} peers: {name:<13} {us:6.2f} us/decision, "
            line += f"ratio to random {us / rnd:4.1f}x"
            if peers == 3:
                met = us <= GOAL_US
                ok = ok and met
                line += f"  goal <= {GOAL_US:g} us: {'met' if met else 'NOT met'}"
            print(line)
        print(f"(median of {args.rounds} rounds x {args.decisions} decisions each)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
