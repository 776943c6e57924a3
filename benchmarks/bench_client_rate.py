"""One client's maximum request rate: adaptive policy against random, same run.

The adaptive policy does more work per request than Grenache's uniform random choice
(scoring two candidates, breaker and budget bookkeeping, gossip); this benchmark says
what that costs in throughput. Goal: adaptive reaches >= 90 % of random's maximum rate.

Method: one grape, one worker and two ``lab client`` processes (one per policy) on
127.0.0.x. For offered rates on a doubling ladder, each policy in turn runs an open-loop
load of ``--step`` seconds; the achieved rate is the requests that succeeded divided by
the time until the last one ended. A policy's maximum is the best achieved rate on the
ladder; the ladder stops once neither policy keeps up with the offer any more. The two
policies alternate at every step, so both see the same machine conditions.

Run: ``.venv/bin/python benchmarks/bench_client_rate.py [--step 2] [--start 250]``.
Exit status 0 when the goal is met, 1 when it is not, 2 when the run failed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from lab.loadgen.limits import MAX_RATE
from lab.loadgen.local_cluster import Client, ClientSpec, ClusterSpec, LocalCluster
from lab.procs import wait_until

POLICIES = ("adaptive", "random")
GOAL = 0.90
FILED_RATE = 3_371.0
"""The adaptive client's maximum when issue 11 was filed (this machine kind, 2 cores);
issue 11 asks for twice it. Printed, not gated on: an absolute rate says as much about
the machine as about the client, so the exit status keeps to the same-run ratio."""


def ok_count(client: Client) -> float:
    """Successful requests so far, from the client's own Prometheus counter."""
    for family in text_string_to_metric_families(client.control.metrics()):
        if family.name == "lab_client_requests":
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels.get("outcome") == "ok":
                    return float(sample.value)
    return 0.0


def achieved(client: Client, rate: float, step: float) -> float:
    """Requests per second that succeeded with ``rate`` offered for ``step`` seconds."""
    before = ok_count(client)
    start = time.monotonic()
    client.control.start_load(rate=rate, duration_s=step, payload_bytes=64, timeout_s=2.0)

    def done() -> bool:
        load = client.control.health()["load"]
        return not load["running"] and load["in_flight"] == 0

    wait_until(done, step + 10.0, interval=0.05, what=f"{client.name} to finish")
    elapsed = time.monotonic() - start
    return (ok_count(client) - before) / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", type=float, default=2.0, help="seconds per ladder step")
    parser.add_argument("--start", type=float, default=250.0, help="first offered rate")
    parser.add_argument(
        "--max", type=float, default=MAX_RATE, help="highest offered rate (clients refuse more)"
    )
    args = parser.parse_args(argv)

    logdir = Path(tempfile.mkdtemp(prefix="bench-client-rate-"))
    spec = ClusterSpec(
        grapes=1,
        workers=1,
        clients=tuple(
            ClientSpec(f"bench-{p}", policy=p, gossip=False, extra=("--max-in-flight", "256"))
            for p in POLICIES
        ),
    )
    best = dict.fromkeys(POLICIES, 0.0)
    print(f"logs in {logdir}")
    print(f"{'offered/s':>10} " + " ".join(f"{p + '/s':>12}" for p in POLICIES))
    try:
        with LocalCluster(spec, logdir) as cluster:
            clients = {p: cluster.client(f"bench-{p}") for p in POLICIES}
            for p in POLICIES:  # warm up connections and estimates
                achieved(clients[p], 100.0, 1.0)
            rate = args.start
            while rate <= args.max:
                row = {p: achieved(clients[p], rate, args.step) for p in POLICIES}
                for p, value in row.items():
                    best[p] = max(best[p], value)
                print(f"{rate:>10.0f} " + " ".join(f"{row[p]:>12.0f}" for p in POLICIES))
                if all(v < 0.9 * rate for v in row.values()) or rate >= args.max:
                    break
                rate = min(rate * 2, args.max)
    except Exception as exc:  # a benchmark that cannot run says so and exits 2
        print(f"bench_client_rate: could not run: {exc}", file=sys.stderr)
        return 2
    ratio = best["adaptive"] / best["random"] if best["random"] else 0.0
    print(
        f"max rate: adaptive {best['adaptive']:.0f}/s, random {best['random']:.0f}/s, "
        f"ratio {ratio:.1%} (goal >= {GOAL:.0%}: {'met' if ratio >= GOAL else 'MISSED'})"
    )
    print(
        f"adaptive max / {FILED_RATE:,.0f}/s (issue 11's figure, 2-core machine): "
        f"{best['adaptive'] / FILED_RATE:.2f}x (asked: >= 2x)"
    )
    return 0 if ratio >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
