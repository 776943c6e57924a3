"""Discovery speed: lookup latency and announce visibility, our grapes vs Node grapes.

Two figures, each measured on a 3-grape cluster of ours (``lab grape`` processes) and a
3-grape cluster of the real Node grape (``grenache-grape`` 1.0.0, pinned in
``tests/interop/node``) in the same run, the two interleaved so both see the same
machine conditions:

1. **Lookup latency**: p50/p99 of ``--lookups`` ``POST /lookup`` calls through grape 3
   for a service announced (3 peers) through grape 1. One keep-alive HTTP connection per
   cluster, one request at a time, as a worker's or client's Link sends them.
2. **Announce visibility**: the time from sending ``POST /announce`` for a new service to
   grape 1 until a lookup through grape 3 returns it (the announce call included,
   lookups polled back to back), over ``--rounds`` fresh services.

Goal: ours at least as fast as upstream on both (ratio ours/Node <= 1.0 for lookup p50,
lookup p99 and median visibility). Upstream is the baseline measured here, not a fixed
number. Exit status 0 whatever the verdict, 2 when the run could not be carried out.

Run: ``.venv/bin/python benchmarks/bench_discovery.py [--lookups 5000] [--rounds 50]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "interop"))
from node_harness import missing_reason, start_node_grapes, stop_all, wait_joined

from lab.loadgen.local_cluster import ClusterSpec, LocalCluster

VISIBILITY_DEADLINE_S = 10.0


class Api:
    """One keep-alive HTTP connection to a grape's API (reconnects if dropped)."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname or "", int(parts.port or 80)
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=5.0)

    def call(self, endpoint: str, data: Any) -> Any:
        body = json.dumps({"rid": "bench", "data": data}).encode()
        for attempt in range(2):
            try:
                self.conn.request("POST", f"/{endpoint}", body=body)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()  # keep-alive closed by the server: one fresh try
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=5.0)
                if attempt:
                    raise
        if resp.status != 200:
            raise RuntimeError(f"{endpoint} -> HTTP {resp.status}: {raw[:100]!r}")
        return json.loads(raw) if raw.strip() else None

    def close(self) -> None:
        self.conn.close()


@dataclass
class Side:
    """One cluster's figures."""

    name: str
    first: Api
    third: Api
    lookup_ms: list[float] = field(default_factory=list)
    visible_ms: list[float] = field(default_factory=list)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def time_lookups(side: Side, service: str, count: int, want: int) -> None:
    for _ in range(count):
        start = time.perf_counter()
        peers = side.third.call("lookup", service)
        side.lookup_ms.append((time.perf_counter() - start) * 1000)
        if not isinstance(peers, list) or len(peers) != want:
            raise RuntimeError(f"{side.name}: lookup answered {peers!r}, expected {want} peers")


def time_visibility(side: Side, service: str, port: int) -> None:
    peer_port = f":{port}"
    start = time.perf_counter()
    stored = side.first.call("announce", [service, port])
    if not isinstance(stored, int):
        raise RuntimeError(f"{side.name}: announce answered {stored!r}")
    deadline = time.monotonic() + VISIBILITY_DEADLINE_S
    while True:
        peers = side.third.call("lookup", service)
        if isinstance(peers, list) and any(str(p).endswith(peer_port) for p in peers):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{side.name}: {service} not visible after {VISIBILITY_DEADLINE_S}s")
    side.visible_ms.append((time.perf_counter() - start) * 1000)


def interleave(sides: list[Side], blocks: int, step: Callable[[Side, int], None]) -> None:
    """Run ``step`` for each side in turn, alternating who goes first, ``blocks`` times."""
    for i in range(blocks):
        for side in sides if i % 2 == 0 else reversed(sides):
            step(side, i)


def ratio(ours: float, node: float) -> float:
    return ours / node if node > 0 else float("inf")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=5000, help="timed lookups per cluster")
    parser.add_argument("--rounds", type=int, default=50, help="announce visibility rounds")
    args = parser.parse_args(argv)
    missing = missing_reason()
    if missing:
        print(f"bench_discovery: cannot run: {missing}", file=sys.stderr)
        return 2

    logdir = Path(tempfile.mkdtemp(prefix="bench-discovery-"))
    print(f"logs in {logdir}")
    ours = LocalCluster(ClusterSpec(grapes=3, workers=0, peer_max_age="120s"), logdir)
    node_grapes: list[Any] = []
    apis: list[Api] = []
    try:
        ours.start()
        node_grapes = start_node_grapes(3, logdir, max_age_ms=120_000)
        wait_joined(ours.grape_urls)
        sides = []
        for name, urls in (("ours", ours.grape_urls), ("node", [g.url for g in node_grapes])):
            first, third = Api(urls[0]), Api(urls[2])
            apis += [first, third]
            sides.append(Side(name, first, third))

        service = f"bench_lookup_{time.monotonic_ns()}"
        for side in sides:  # three peers announced through grape 1, visible through grape 3
            for port in (4001, 4002, 4003):
                side.first.call("announce", [service, port])
            deadline = time.monotonic() + VISIBILITY_DEADLINE_S
            while len(side.third.call("lookup", service) or []) < 3:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{side.name}: the 3 peers never became visible")
            time_lookups(side, service, 50, 3)  # warm-up, discarded
            side.lookup_ms.clear()

        block = 100
        interleave(
            sides, max(1, args.lookups // block), lambda s, _i: time_lookups(s, service, block, 3)
        )
        interleave(
            sides,
            args.rounds,
            lambda s, i: time_visibility(
                s, f"bench_visible_{s.name}_{i}_{time.monotonic_ns()}", 5000 + i
            ),
        )
    except Exception as exc:  # a benchmark that cannot run says so and exits 2
        print(f"bench_discovery: could not run: {exc}", file=sys.stderr)
        return 2
    finally:
        for api in apis:
            api.close()
        stop_all(g.process for g in node_grapes)
        ours.stop()

    by = {s.name: s for s in sides}
    head = ("cluster", "lookups", "p50 ms", "p99 ms", "visible p50 ms", "max ms")
    print(f"{head[0]:<8} {head[1]:>8} {head[2]:>8} {head[3]:>8} {head[4]:>15} {head[5]:>8}")
    for s in sides:
        p50, p99 = pct(s.lookup_ms, 0.5), pct(s.lookup_ms, 0.99)
        seen, worst = statistics.median(s.visible_ms), max(s.visible_ms)
        print(
            f"{s.name:<8} {len(s.lookup_ms):>8} {p50:>8.2f} {p99:>8.2f} {seen:>15.1f} {worst:>8.1f}"
        )
    o, n = by["ours"], by["node"]
    ratios = {
        "lookup p50": ratio(pct(o.lookup_ms, 0.5), pct(n.lookup_ms, 0.5)),
        "lookup p99": ratio(pct(o.lookup_ms, 0.99), pct(n.lookup_ms, 0.99)),
        "visibility p50": ratio(statistics.median(o.visible_ms), statistics.median(n.visible_ms)),
    }
    for label, value in ratios.items():
        print(
            f"ours/node {label}: {value:.2f}x (goal <= 1.0: {'met' if value <= 1.0 else 'not met'})"
        )
    met = all(v <= 1.0 for v in ratios.values())
    print(f"goal (ours at least as fast as upstream on all three): {'met' if met else 'not met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
