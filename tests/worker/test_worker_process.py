"""A real ``lab worker`` process behind a real ``lab grape``: discovery, knobs, metrics, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.errors import RpcReplyError
from lab.grenache.link import Link
from lab.grenache.transport import HttpTransport
from lab.procs import ServiceProcess, free_port, wait_until


def http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


@pytest.fixture
def grape(logdir: Path, loopback_host: str) -> Iterator[str]:
    api, dht = free_port(loopback_host), free_port(loopback_host)
    proc = ServiceProcess.lab(
        "grape", "grape", "--bind", loopback_host, "--dht-port", str(dht), "--api-port", str(api),
        "--bootstrap", "", "--peer-max-age", "3s",
        health_url=f"http://{loopback_host}:{api}/_lab/health", log_path=logdir / "grape.log",
    )  # fmt: skip
    proc.start()
    try:
        yield f"http://{loopback_host}:{api}"
    finally:
        proc.stop()


class Worker:
    def __init__(self, grape: str, host: str, logdir: Path, *extra: str) -> None:
        self.host = host
        self.port, self.control = free_port(host), free_port(host)
        self.proc = ServiceProcess.lab(
            "worker", "worker", "--bind", host, "--port", str(self.port), "--name", "w1",
            "--grape", grape, "--control-port", str(self.control), "--seed", "3",
            "--announce-interval", "0.2s", *extra,
            health_url=f"http://{host}:{self.control}/health", log_path=logdir / "worker.log",
        )  # fmt: skip

    @property
    def peer(self) -> str:
        return f"{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.control}{path}"


@pytest.fixture
def worker(grape: str, logdir: Path, loopback_host: str) -> Iterator[Worker]:
    w = Worker(grape, loopback_host, logdir)
    w.proc.start()
    try:
        yield w
    finally:
        w.proc.stop()


async def _measure(t: HttpTransport, peer: str, n: int) -> tuple[list[float], int]:
    """Latencies (s) of successful sequential requests, and the number of error replies."""
    lat: list[float] = []
    errors = 0
    for i in range(n):
        start = time.perf_counter()
        try:
            assert await t.request(peer, "rpc_test", i, timeout=5) == {"worker": "w1", "echo": i}
            lat.append(time.perf_counter() - start)
        except RpcReplyError as exc:
            assert str(exc).startswith("ERR_WORKER_INJECTED")
            errors += 1
    return lat, errors


async def test_worker_is_discovered_at_its_own_address(grape: str, worker: Worker) -> None:
    async with Link([grape], cache_ttl=0.0) as link:
        deadline = time.monotonic() + 10
        peers: list[str] = []
        while worker.peer not in peers:
            assert time.monotonic() < deadline, f"lookup never showed {worker.peer}: {peers}"
            peers = await link._fetch("rpc_test")
            await asyncio.sleep(0.05)
    assert peers == [worker.peer]  # the grape recorded the worker's bind address


async def test_knobs_change_latency_and_errors_at_runtime(worker: Worker) -> None:
    async with HttpTransport() as t:
        lat, errors = await _measure(t, worker.peer, 20)
        assert errors == 0 and sorted(lat)[10] < 0.05

        status, body = http(
            "PUT", worker.url("/behaviour"), {"latency": {"kind": "fixed", "ms": 120}}
        )
        assert status == 200 and body["latency"] == {"kind": "fixed", "ms": 120.0}
        lat, errors = await _measure(t, worker.peer, 5)
        assert errors == 0 and min(lat) >= 0.12

        status, body = http(
            "PUT", worker.url("/behaviour"), {"latency": "fixed:0", "error_rate": 0.5}
        )
        assert status == 200 and body["error_rate"] == 0.5
        lat, errors = await _measure(t, worker.peer, 200)
        assert 60 <= errors <= 140

        http("PUT", worker.url("/behaviour"), {"error_rate": 0})
        assert (await _measure(t, worker.peer, 20))[1] == 0

    status, body = http("GET", worker.url("/behaviour"))
    assert body["latency"] == {"kind": "fixed", "ms": 0.0} and body["error_rate"] == 0.0
    status, body = http("PUT", worker.url("/behaviour"), {"error_rate": 7})
    assert status == 400 and body["error"].startswith("error_rate:")
    status, body = http("PUT", worker.url("/behaviour"), {"latency": {"kind": "fixed", "m": 1}})
    assert status == 400 and body["error"].startswith("latency.m:")
    status, _ = http("PUT", worker.url("/behaviour"), None)
    assert status == 400

    status, text = http("GET", worker.url("/metrics"))
    assert status == 200
    ok = [
        ln
        for ln in text.splitlines()
        if ln.startswith("lab_worker_requests_total") and 'outcome="ok"' in ln
    ]
    errs = [ln for ln in text.splitlines() if ln.startswith("lab_worker_errors_total")]
    n_ok, n_err = float(ok[0].split()[-1]), float(errs[0].split()[-1])
    assert n_ok + n_err == 245 and 60 <= n_err <= 140
    assert 'lab_worker_announcements_total{result="ok"' in text
    assert "lab_worker_request_seconds_bucket" in text


async def test_sigterm_drains_in_flight_and_exits_zero(worker: Worker) -> None:
    http("PUT", worker.url("/behaviour"), {"latency": {"kind": "fixed", "ms": 400}})
    async with HttpTransport() as t:
        pending = asyncio.create_task(t.request(worker.peer, "rpc_test", "x", timeout=5))
        await asyncio.to_thread(
            wait_until, lambda: http("GET", worker.url("/health"))[1]["in_flight"] == 1, 5
        )
        worker.proc.signal(signal.SIGTERM)
        assert await pending == {"worker": "w1", "echo": "x"}
    assert worker.proc.proc is not None
    assert await asyncio.to_thread(worker.proc.proc.wait, 5) == 0
