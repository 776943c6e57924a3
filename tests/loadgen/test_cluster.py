"""The adaptive client against real faults on a real local cluster.

3 ``lab grape``, 3 ``lab worker`` (each behind a real Toxiproxy proxy, announcing the
proxy's address) and 2 ``lab client`` processes on 127.0.0.x. Each test injects one
fault at 100 requests/s per client, reads the clients' histories through their control
API and computes design.md's recovery figures (``loadgen_figures``), printing them
(``pytest -s``). Waiting is always polling with a deadline; the only waits on time
itself are the measurement windows, which are what is being measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from loadgen_figures import (
    Sends,
    availability,
    detection_time,
    issued_in,
    p99,
    recovery_time,
)

from lab.errors import RuntimeUnavailable
from lab.history import RequestRecord, event_from_json, request_from_json
from lab.loadgen.local_cluster import Client, LocalCluster
from lab.procs import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.toxiproxy, pytest.mark.timeout(600)]

RATE = 100.0
HEALTHY = {"latency": {"kind": "fixed", "ms": 0}, "error_rate": 0.0, "cpu_ms": 0}


@dataclass
class Recording:
    """A client's history, pulled page by page through its control API."""

    client: Client
    cursor: int = 0
    records: list[RequestRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cursor = int(self.client.control.history(cursor=10**12)["cursor"])

    def pull(self) -> None:
        while True:
            page = self.client.control.history(self.cursor)
            assert page["dropped"] == 0, "the test read too slowly: records were dropped"
            self.records += [request_from_json(r) for r in page["records"]]
            self.cursor = int(page["cursor"])
            if not page["records"]:
                return

    def until(self, t: float) -> None:
        """Keep pulling until the clock passes ``t`` (the measurement window)."""
        while time.monotonic() < t:
            self.pull()
            time.sleep(min(0.1, max(0.0, t - time.monotonic())))
        self.pull()

    def drain(self) -> None:
        """After a stop: pull until nothing is in flight."""
        wait_until(
            lambda: self.client.control.health()["load"]["in_flight"] == 0,
            10.0,
            what=f"{self.client.name} to finish its requests",
        )
        self.pull()


def _reset(cluster: LocalCluster) -> None:
    """Undo every fault: toxics gone, workers alive and healthy, loads stopped."""
    assert cluster.toxiproxy is not None
    cluster.toxiproxy.reset()
    for w in cluster.workers:
        if w.process.exited():
            cluster.restart_worker(w.name)
        w.behaviour(HEALTHY)
    for c in cluster.clients:
        c.control.stop_load()
        c.control.set_gossip(True)


def _steady(cluster: LocalCluster, client: Client, rec: Recording, within: float = 30.0) -> None:
    """Load ``client`` until every peer gets a fair-ish share over the last second."""
    client.control.start_load(rate=RATE, payload_bytes=64, seed=7, timeout_s=1.0)
    peers = cluster.peers()

    def balanced() -> bool:
        rec.pull()
        now = time.monotonic()
        recent = [r for r in rec.records if r.issued >= now - 1.2]
        sends = Sends.of(recent, "")
        if len(sends.to_all) < 0.8 * RATE:
            return False
        return all((Sends.of(recent, p).share(now - 1.2, 1.0) or 0) >= 0.15 for p in peers)

    wait_until(balanced, within, interval=0.2, what=f"{client.name} to spread load evenly")


def _breaker_opened(client: Client, peer: str, since: float) -> float | None:
    """The time of ``client``'s first breaker event moving ``peer`` away from closed."""
    page = client.control.events(0)
    for raw in page["events"]:
        e = event_from_json(raw)
        if e.kind == "breaker" and e.peer == peer and e.t >= since:
            to = str(e.detail.get("to", e.detail.get("state", "")))
            if to and to != "closed":
                return e.t
    return None


def _print(title: str, figures: dict[str, object]) -> None:
    print(f"\n== {title}")
    for k, v in figures.items():
        print(f"   {k:<34} {v:.4f}" if isinstance(v, float) else f"   {k:<34} {v}")


def _print_events(client: Client, peer: str, t0: float, t1: float) -> None:
    """The client's breaker events for ``peer`` around the fault (diagnostics for -s)."""
    for raw in client.control.events(0)["events"]:
        e = event_from_json(raw)
        if e.peer == peer and e.t >= t0 - 1.0:
            d = e.detail
            print(
                f"   t0{e.t - t0:+8.3f} t1{e.t - t1:+8.3f} {e.kind} "
                f"{d.get('from', '')}->{d.get('to', '')} {d.get('reason', '')}"
            )


def _fault_run(
    cluster: LocalCluster,
    worker: str,
    inject: Callable[[], None],
    heal: Callable[[], None],
    fault_s: float = 5.0,
    after_s: float = 8.0,
) -> dict[str, float | int | None]:
    """Steady load on client-1, a fault on ``worker`` for ``fault_s``, then recovery."""
    _reset(cluster)
    client = cluster.client("client-1")
    peer = cluster.worker(worker).peer
    rec = Recording(client)
    _steady(cluster, client, rec)
    before = time.monotonic()
    rec.until(before + 3.0)
    inject()
    t0 = time.monotonic()
    rec.until(t0 + fault_s)
    heal()
    t1 = time.monotonic()
    rec.until(t1 + after_s)
    client.control.stop_load()
    rec.drain()
    _print_events(client, peer, t0, t1)

    sends = Sends.of(rec.records, peer)
    base = issued_in(rec.records, before, t0)
    during = issued_in(rec.records, t0, t1)
    p99_before, p99_during = p99(base), p99(during)
    return {
        "requests_before": len(base),
        "requests_during": len(during),
        "detection_s": detection_time(sends, t0, t1),
        "availability_during": availability(during),
        "failed_during": sum(1 for r in during if r.outcome.value != "ok"),
        "p99_before_ms": p99_before * 1000,
        "p99_during_ms": p99_during * 1000,
        "p99_ratio": p99_during / p99_before,
        "recovery_s": recovery_time(sends, t1, t1 + after_s, len(cluster.workers)),
        "attempts_to_peer_during": sum(1 for t in sends.to_peer if t0 <= t < t1),
        "retries_during": sum(r.retries for r in during),
    }


def test_a_blackholed_worker_is_avoided_and_rejoins(cluster: LocalCluster) -> None:
    """(a) timeout toxic both ways; (e) after the heal the worker gets its share back."""
    tp = cluster.toxiproxy
    assert tp is not None
    proxy = cluster.worker("worker-2").proxy
    assert proxy is not None
    f = _fault_run(cluster, "worker-2", lambda: tp.blackhole(proxy), lambda: tp.heal(proxy))
    _print("blackhole worker-2 (toxiproxy timeout 0, both streams)", f)
    assert f["detection_s"] is not None, "the client kept sending to the blackholed worker"
    assert f["detection_s"] <= 0.5
    assert f["availability_during"] >= 0.9999  # type: ignore[operator]
    assert f["recovery_s"] is not None and f["recovery_s"] <= 5.0


def test_a_slow_worker_is_avoided(cluster: LocalCluster) -> None:
    """(b) +300 ms on one worker through its control endpoint."""
    w = cluster.worker("worker-3")
    f = _fault_run(
        cluster,
        "worker-3",
        lambda: w.behaviour({"latency": {"kind": "fixed", "ms": 300}}),
        lambda: w.behaviour(HEALTHY),
    )
    _print("slow worker-3 (+300 ms)", f)
    assert f["detection_s"] is not None and f["detection_s"] <= 2.0
    assert f["p99_ratio"] <= 1.5  # type: ignore[operator]
    assert f["availability_during"] >= 0.9999  # type: ignore[operator]


def test_a_killed_worker_is_avoided_and_its_restart_rejoins(cluster: LocalCluster) -> None:
    """(c) SIGKILL, then the same worker restarted on the same address."""
    f = _fault_run(
        cluster,
        "worker-1",
        lambda: cluster.kill_worker("worker-1"),
        lambda: cluster.restart_worker("worker-1"),
    )
    _print("killed worker-1 (SIGKILL, then restart)", f)
    assert f["detection_s"] is not None and f["detection_s"] <= 0.5
    assert f["availability_during"] >= 0.9999  # type: ignore[operator]
    assert f["recovery_s"] is not None and f["recovery_s"] <= 5.0


def _gossip_run(cluster: LocalCluster, gossip: bool) -> dict[str, float | int | None]:
    """client-1 meets the fault; idle client-2 starts once client-1 has detected it."""
    _reset(cluster)
    c1, c2 = cluster.client("client-1"), cluster.client("client-2")
    for c in (c1, c2):
        c.control.set_gossip(gossip)
    w = cluster.worker("worker-2")
    assert cluster.toxiproxy is not None and w.proxy is not None
    r1, r2 = Recording(c1), Recording(c2)
    _steady(cluster, c2, r2)  # client-2 knows every peer as healthy...
    c2.control.stop_load()  # ...then goes idle and never meets the fault itself
    r2.drain()
    _steady(cluster, c1, r1)
    cluster.toxiproxy.blackhole(w.proxy)
    t0 = time.monotonic()
    try:
        detected: list[float] = []

        def c1_detected() -> bool:
            t = _breaker_opened(c1, w.peer, t0)
            if t is not None:
                detected.append(t)
            return bool(detected)

        wait_until(c1_detected, 10.0, interval=0.02, what="client-1 to open its breaker")
        t_d1 = detected[0]
        if gossip:  # gossip runs every 200 ms: let a round reach client-2 first
            wait_until(
                lambda: any(
                    p["peer"] == w.peer and p["hints"] for p in c2.control.peers()["peers"]
                ),
                2.0,
                interval=0.02,
                what="client-2 to hold a hint",
            )
        else:
            time.sleep(0.3)  # the same head start, with nothing to learn in it
        r2.pull()
        start = float(c2.control.start_load(rate=RATE, payload_bytes=64, seed=8)["started"])
        r2.until(start + 3.0)
    finally:
        cluster.toxiproxy.heal(w.proxy)
        c1.control.stop_load()
        c2.control.stop_load()
    r2.drain()
    sends = Sends.of(r2.records, w.peer)
    stop = detection_time(sends, start, start + 3.0)
    return {
        "client1_detection_s": t_d1 - t0,
        "client2_start_after_detection_s": start - t_d1,
        "client2_stop_after_client1_detection_s": None if stop is None else start + stop - t_d1,
        "client2_attempts_to_faulty": sum(1 for t in sends.to_peer if t >= start),
        "client2_failed": sum(
            1 for r in r2.records if r.issued >= start and r.outcome.value != "ok"
        ),
    }


def test_gossip_steers_a_client_that_never_met_the_fault(cluster: LocalCluster) -> None:
    """(d) with gossip on, client-2 avoids the peer client-1 found bad; compare with off."""
    on = _gossip_run(cluster, gossip=True)
    off = _gossip_run(cluster, gossip=False)
    _print("gossip ON: client-2 after client-1 detected blackholed worker-2", on)
    _print("gossip OFF: same", off)
    lead_on = on["client2_stop_after_client1_detection_s"]
    lead_off = off["client2_stop_after_client1_detection_s"]
    if lead_on is not None and lead_off is not None:
        print(f"   gossip lead (off - on)             {lead_off - lead_on:.4f} s")
    print(
        "   attempts to the faulty peer        "
        f"on={on['client2_attempts_to_faulty']} off={off['client2_attempts_to_faulty']}"
    )
    assert lead_on is not None and lead_on <= 1.0
    # client-2 never met the fault: with hints it should not have to meet it at all
    assert on["client2_attempts_to_faulty"] < off["client2_attempts_to_faulty"]  # type: ignore[operator]


def test_cluster_control_api_smoke(cluster: LocalCluster) -> None:
    """The metrics a scraper reads are there, with per-peer gauges for every worker."""
    c = cluster.client("client-1")
    text = c.control.metrics()
    assert "lab_client_requests_total" in text
    for peer in cluster.peers():
        assert f'peer="{peer}"' in text
    with pytest.raises(RuntimeUnavailable):
        c.control.start_load(rate=-1)
