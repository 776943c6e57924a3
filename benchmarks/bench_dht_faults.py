"""Discovery under DHT faults on the Compose lab: how much slower, and how fast it converges.

Figures, each with the fault put in place by the real netfault helper (lab/netfault):

1. **Lookup latency** through grape-1 (p50/p99 of ``--lookups`` ``POST /lookup rpc_test``,
   one at a time) with no fault, then with 30 % of grape-1's DHT datagrams lost (``packet``
   loss on UDP 20001, both ways).
2. **Announce visibility**: time from ``POST /announce`` of a fresh service through grape-1
   until a lookup through grape-3 returns it, ``--rounds`` services, same two conditions.
3. **Convergence after a partition**: grape-1 cut from grape-2 and grape-3
   (``link_partition``) for ``--hold`` seconds; a service announced through grape-1 while
   cut, and the time after the heal until grape-3 returns it (one figure per round).

No goal: these are measurements for the issue's questions ("do lookups and announces still
converge, how much slower"; "do both sides converge again, how fast"). Exit 0 once measured,
and 0 with "skipped" when the Compose lab is not up (``make bench`` runs every benchmark,
mostly where no lab runs). Run: ``.venv/bin/python benchmarks/bench_dht_faults.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

from lab.errors import LabError
from lab.scenario.faults.base import FaultContext
from lab.scenario.faults.kinds import make_fault
from lab.scenario.runtime.compose import ComposeRuntime
from lab.scenario.runtime.protocol import target
from lab.toxiproxy_adapter import ToxiproxyAdapter

GRAPE1 = "http://127.0.0.1:30001"
GRAPE3 = "http://127.0.0.1:30003"


def call(api: str, verb: str, data: Any, timeout: float = 5.0) -> Any:
    body = json.dumps({"rid": str(uuid.uuid4()), "data": data}).encode()
    req = urllib.request.Request(f"{api}/{verb}", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def lookups(n: int) -> tuple[float, float, int]:
    """(p50 ms, p99 ms, failures) of ``n`` lookups of rpc_test through grape-1."""
    times, failed = [], 0
    for _ in range(n):
        t0 = time.monotonic()
        try:
            call(GRAPE1, "lookup", "rpc_test")
        except (OSError, ValueError):
            failed += 1
            continue
        times.append((time.monotonic() - t0) * 1000)
    times.sort()
    p99 = times[min(len(times) - 1, int(0.99 * len(times)))] if times else float("nan")
    return (statistics.median(times) if times else float("nan")), p99, failed


def visible_after(announce: Callable[[], Any], service: str, limit: float = 20.0) -> float:
    """Seconds from ``announce()`` until grape-3 returns ``service`` (inf past ``limit``)."""
    t0 = time.monotonic()
    announce()
    while time.monotonic() - t0 < limit:
        try:
            if call(GRAPE3, "lookup", service, timeout=2.0):
                return time.monotonic() - t0
        except (OSError, ValueError):
            pass
        time.sleep(0.02)  # polling a remote grape with a deadline
    return float("inf")


def visibility(rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        svc = f"bench_{uuid.uuid4().hex[:8]}"
        out.append(visible_after(partial(call, GRAPE1, "announce", [svc, 4000]), svc))
    return out


def fmt(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"median {statistics.median(xs):.3f}s max {xs[-1]:.3f}s (n={len(xs)})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lookups", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--hold", type=float, default=10.0)
    ap.add_argument("--partitions", type=int, default=2)
    args = ap.parse_args()
    try:
        rt = ComposeRuntime.connect()
    except LabError as exc:
        print(f"bench_dht_faults: skipped: {exc}")
        return 0
    ctx = FaultContext(runtime=rt, toxiproxy=ToxiproxyAdapter(rt.toxiproxy_api()))
    grape1 = target(rt, "grape-1")
    try:
        p50, p99, failed = lookups(args.lookups)
        print(
            f"lookup via grape-1, no fault:   p50 {p50:.1f} ms  p99 {p99:.1f} ms  failed {failed}"
        )
        print(f"announce visible on grape-3, no fault:   {fmt(visibility(args.rounds))}")
        loss = make_fault(
            "bench-loss", "packet", grape1, {"loss": 30, "protocol": "udp", "port": 20001}, ctx
        )
        loss.inject()
        try:
            p50, p99, failed = lookups(args.lookups)
            print(
                f"lookup via grape-1, 30 % DHT loss: p50 {p50:.1f} ms  p99 {p99:.1f} ms  "
                f"failed {failed}"
            )
            print(f"announce visible on grape-3, 30 % DHT loss: {fmt(visibility(args.rounds))}")
        finally:
            loss.undo()
        converge = []
        for i in range(args.partitions):
            cut = make_fault(
                f"bench-cut-{i}",
                "link_partition",
                grape1,
                {"peers": ["grape-2", "grape-3"], "direction": "both"},
                ctx,
            )
            cut.inject()
            svc = f"bench_{uuid.uuid4().hex[:8]}"
            try:
                deadline = time.monotonic() + args.hold
                while time.monotonic() < deadline:  # announced on the cut side, every 1 s
                    call(GRAPE1, "announce", [svc, 4000], timeout=10.0)
                    time.sleep(1.0)  # a worker's announce interval
                seen_while_cut = bool(call(GRAPE3, "lookup", svc, timeout=5.0))
            finally:
                cut.undo()
            converge.append(
                visible_after(partial(call, GRAPE1, "announce", [svc, 4000], timeout=10.0), svc)
            )
            print(
                f"partition {i + 1}: seen on grape-3 while cut: {seen_while_cut}; "
                f"after heal visible in {converge[-1]:.3f}s"
            )
        print(f"convergence after a {args.hold:g} s grape-1 partition: {fmt(converge)}")
    finally:
        rt.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
