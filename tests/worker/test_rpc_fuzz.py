"""Fuzz a real ``lab worker`` process's RPC port: 10,000 seeded random bodies and headers.

Every request must get an HTTP answer within 1 s (never a hang, never a dropped
connection), with 200/400/405/413 only, and the process must stay up. The worker is
started without a reachable grape: its announce loop fails quietly, RPC is unaffected.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from hostile_support import mem_limit, peak_rss

from lab.procs import ServiceProcess, free_port

COUNT = 10_000
CONCURRENCY = 16


def _valid(rng: random.Random) -> bytes:
    payload = rng.choice([None, 1, "x" * rng.randrange(50), {"a": [1, 2]}, [], True])
    return json.dumps([f"rid-{rng.random()}", "rpc_test", payload]).encode()


def _mutate(rng: random.Random, body: bytes) -> bytes:
    b = bytearray(body)
    for _ in range(rng.randrange(1, 6)):
        op = rng.randrange(3)
        i = rng.randrange(len(b) + 1)
        if op == 0 and b:
            del b[min(i, len(b) - 1)]
        elif op == 1:
            b.insert(i, rng.randrange(256))
        elif b:
            b[min(i, len(b) - 1)] = rng.randrange(256)
    return bytes(b)


def case(rng: random.Random) -> tuple[bytes, dict[str, str], str]:
    """One (body, headers, method) drawn from a mix of garbage and near-misses."""
    kind = rng.randrange(8)
    if kind == 0:
        body = rng.randbytes(rng.randrange(0, 300))
    elif kind == 1:
        body = _mutate(rng, _valid(rng))
    elif kind == 2:
        body = _valid(rng)
    elif kind == 3:
        body = json.dumps(rng.choice([{}, [], [None], [1, 2, 3], "s", 1e308, [[[]]]])).encode()
    elif kind == 4:
        body = (
            gzip.compress(_valid(rng))
            if rng.random() < 0.5
            else _mutate(rng, gzip.compress(_valid(rng)))
        )
    elif kind == 5:
        body = b"[" * rng.randrange(1, 5000) + b"]" * rng.randrange(0, 5000)
    elif kind == 6:
        body = b" " * rng.randrange(1_000_000, 1_100_000)  # over the 1 MiB limit
    else:
        body = _valid(rng)[: rng.randrange(1, 40)]
    headers: dict[str, str] = {}
    if rng.random() < 0.4:
        headers["grc-compress"] = rng.choice(["gzip", "none", "gzip, br", "", "GZIP", "x"])
    if rng.random() < 0.2:
        headers["_gr"] = rng.choice(
            ['["r","k"]', "[", "null", "[1]", '{"a":1}', '["", ""]', "\u00e9"]
        )
    if rng.random() < 0.2:
        headers["Content-Type"] = rng.choice(
            ["text/plain;charset=UTF-8", "application/x-what", "a/b"]
        )
    method = "POST" if rng.random() < 0.97 else rng.choice(["GET", "PUT", "DELETE"])
    return body, headers, method


@pytest.fixture
def worker(logdir: Path, loopback_host: str) -> Iterator[tuple[str, ServiceProcess]]:
    port, control = free_port(loopback_host), free_port(loopback_host)
    proc = ServiceProcess.lab(
        "worker", "worker", "--bind", loopback_host, "--port", str(port), "--name", "fuzz",
        "--grape", f"http://{loopback_host}:{free_port(loopback_host)}",
        "--control-port", str(control), "--announce-interval", "5s",
        health_url=f"http://{loopback_host}:{control}/health", log_path=logdir / "worker.log",
    )  # fmt: skip
    proc.start()
    try:
        yield f"http://{loopback_host}:{port}/", proc
    finally:
        proc.stop()


async def test_ten_thousand_random_requests_all_answered(
    worker: tuple[str, ServiceProcess],
) -> None:
    url, proc = worker
    rng = random.Random(20240501)
    cases = [case(rng) for _ in range(COUNT)]
    statuses: Counter[int | str] = Counter()
    slowest = 0.0

    async def one(session: aiohttp.ClientSession, i: int) -> None:
        nonlocal slowest
        body, headers, method = cases[i]
        start = time.perf_counter()
        try:
            async with asyncio.timeout(1.0):
                data = io.BytesIO(body) if len(body) > 100_000 else body
                async with session.request(method, url, data=data, headers=headers) as resp:
                    await resp.read()
                    statuses[resp.status] += 1
        except TimeoutError:
            statuses[f"timeout #{i}"] += 1
        except aiohttp.ClientError as exc:
            statuses[f"{type(exc).__name__} #{i}"] += 1
        slowest = max(slowest, time.perf_counter() - start)

    async def lane(session: aiohttp.ClientSession, lane_no: int) -> None:
        for i in range(lane_no, COUNT, CONCURRENCY):
            await one(session, i)

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        await asyncio.gather(*(lane(session, n) for n in range(CONCURRENCY)))

    assert set(statuses) <= {200, 400, 405, 413}, statuses
    assert sum(statuses.values()) == COUNT
    assert statuses[200] > 1000 and statuses[400] > 1000 and statuses[413] > 100
    assert slowest < 1.0
    assert not proc.exited()
    assert peak_rss(proc) < mem_limit("worker"), f"peak RSS {peak_rss(proc) / 2**20:.0f} MiB"
