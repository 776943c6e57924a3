"""Fuzz one real ``lab grape`` process over HTTP: 10,000 seeded random requests.

Every request must be answered within 1 s with one of the documented answers (never a
raw exception text), and the grape must still be healthy afterwards. A seeded loop, not
hypothesis: the same 10,000 requests every run, so a failure reproduces exactly.
"""

from __future__ import annotations

import asyncio
import json
import random
import string
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hostile_support import mem_limit, peak_rss

from lab.procs import ServiceProcess, free_port

REQUESTS = 10_000
CONCURRENCY = 16
SEED = 20_240_601
ENDPOINTS = ["announce", "lookup", "put", "get", "Lookup", "ANNOUNCE", "lookup/", "foo", ""]
TEXT_ANSWERS = {500: "ERR_GRAPE_PAYLOAD_INVALID", 413: "ERR_GRAPE_PAYLOAD_SIZE"}


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def _json_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, 1, -1, 1337, 65535, 65536, 2**53 + 1, -(2**70), 10**30])
    if kind == 3:
        return rng.choice([1.5, -0.0, 1e308, 3.0, 1e-9])
    if kind in (4, 5):
        alphabet = string.printable + "éü中\u2028\ud800\x00"
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
    if kind == 6:
        return [_json_value(rng, depth + 1) for _ in range(rng.randrange(0, 5))]
    if kind == 7:
        return {rng.choice(["v", "k", "hash", "host", "x", ""]): _json_value(rng, depth + 1)
                for _ in range(rng.randrange(0, 4))}  # fmt: skip
    return rng.choice(["rpc_test", "6d33adc2b6b2c14c3036feefb7fedbca1a880527", "ab" * 20])


def _data(rng: random.Random) -> Any:
    """Mostly near-valid payloads for the four endpoints, so handlers really run."""
    roll = rng.random()
    if roll < 0.2:
        name = rng.choice(["rpc_test", "svc", "", "x" * 200, _json_value(rng)])
        port = rng.choice([1337, "1337", 0, 70000, 1.0, 1.5, None, True, _json_value(rng)])
        extra = rng.choice([[], [{"host": rng.choice(["toxiproxy", "a b", "", 5, "1.2.3.4"])}]])
        return [name, port, *extra]
    if roll < 0.35:
        return rng.choice(["rpc_test", "svc", "", "nobody", _json_value(rng)])
    if roll < 0.45:
        return rng.choice(
            [{"v": _json_value(rng)}, _json_value(rng), "x" * rng.randrange(990, 1010)]
        )
    if roll < 0.55:
        return rng.choice([{"hash": _json_value(rng)}, "6d33adc2b6b2c14c3036feefb7fedbca1a880527"])
    return _json_value(rng)


def _body(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.55:
        envelope: Any = {"rid": "r", "data": _data(rng)}
        if rng.random() < 0.1:
            envelope = _json_value(rng)
        return json.dumps(envelope, ensure_ascii=rng.random() < 0.5).encode(
            "utf-8", "surrogatepass"
        )
    if roll < 0.7:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
    if roll < 0.8:
        good = json.dumps({"rid": "r", "data": _data(rng)}).encode()
        cut = rng.randrange(0, len(good) + 1)
        return good[:cut] + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 4)))
    if roll < 0.87:
        return b" " * rng.randrange(8000, 8300) + b'{"data": "x"}'
    if roll < 0.92:
        return b"[" * rng.randrange(100, 8192)
    if roll < 0.96:
        return b""
    return rng.randbytes(rng.randrange(8193, 40_000))


def _path(rng: random.Random) -> str:
    if rng.random() < 0.8:
        path = "/" + rng.choice(ENDPOINTS)
    else:
        chars = string.ascii_letters + string.digits + "-_.~/'!$&()*+,;=:@"
        path = "/" + "".join(rng.choice(chars) for _ in range(rng.randrange(0, 30)))
    if rng.random() < 0.05:
        path += "?" + rng.choice(["x=1", "data=1", "", "a&b"])
    return path


def _headers(rng: random.Random) -> dict[str, str]:
    headers: dict[str, str] = {}
    if rng.random() < 0.7:
        headers["Content-Type"] = rng.choice(
            ["application/json", "text/plain;charset=UTF-8", "application/octet-stream",
             "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "junk"]
        )  # fmt: skip
    for _ in range(rng.randrange(0, 3)):
        name = "X-" + "".join(rng.choice(string.ascii_letters) for _ in range(rng.randrange(1, 12)))
        headers[name] = "".join(
            rng.choice(string.printable[:94]) for _ in range(rng.randrange(0, 60))
        )
    if rng.random() < 0.03:
        headers["Content-Encoding"] = rng.choice(["gzip", "deflate", "br", "zstd", "junk"])
    if rng.random() < 0.05:
        headers["Accept-Encoding"] = rng.choice(["gzip", "br", "identity", "*"])
    return headers


def cases(seed: int, n: int) -> Iterator[Case]:
    rng = random.Random(seed)
    for _ in range(n):
        method = rng.choices(["POST", "GET", "PUT", "DELETE", "PATCH"], [85, 6, 3, 3, 3])[0]
        yield Case(method, _path(rng), _headers(rng), _body(rng))


def acceptable(status: int, body: bytes) -> bool:
    """One of the grape's documented answers."""
    if status in TEXT_ANSWERS:
        return body == TEXT_ANSWERS[status].encode()
    if status != 200:
        return False
    if body == b"":
        return True  # get of an unknown key
    value = json.loads(body)
    if isinstance(value, str):
        return value.startswith("ERR_") or len(value) == 40
    return isinstance(value, int | list | dict)


@pytest.fixture
def grape(logdir: Path) -> Iterator[str]:
    host = "127.0.3.1"
    api = free_port(host)
    proc = ServiceProcess.lab(
        "grape-fuzz", "grape", "--bind", host, "--dht-port", str(free_port(host)),
        "--api-port", str(api), "--cluster-id", "fuzz", "--log-level", "WARNING",
        health_url=f"http://{host}:{api}/_lab/health", log_path=logdir / "grape-fuzz.log",
    ).start()  # fmt: skip
    yield f"http://{host}:{api}"
    assert peak_rss(proc) < mem_limit("grape"), f"peak RSS {peak_rss(proc) / 2**20:.0f} MiB"
    assert proc.stop() == 0, proc.tail()
    assert "Traceback" not in proc.tail(10_000)


async def test_ten_thousand_random_requests_are_all_answered_within_a_second(grape: str) -> None:
    queue: asyncio.Queue[Case] = asyncio.Queue()
    for case in cases(SEED, REQUESTS):
        queue.put_nowait(case)
    failures: list[str] = []
    slowest = 0.0
    answered = 0
    timeout = aiohttp.ClientTimeout(total=1.0)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal slowest, answered
        while not queue.empty():
            case = queue.get_nowait()
            started = time.perf_counter()
            try:
                async with session.request(
                    case.method, grape + case.path, data=case.body, headers=case.headers,
                    timeout=timeout, skip_auto_headers=("Content-Type",),
                ) as resp:  # fmt: skip
                    status, body = resp.status, await resp.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                failures.append(f"{case!r:.300}: {type(exc).__name__} {exc}")
                continue
            slowest = max(slowest, time.perf_counter() - started)
            answered += 1
            if not acceptable(status, body):
                failures.append(f"{case!r:.300}: {status} {body[:200]!r}")

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(CONCURRENCY)))
        async with session.get(grape + "/_lab/health") as resp:
            assert resp.status == 200
        async with session.get(grape + "/_lab/metrics") as resp:
            metrics = await resp.text()
    assert failures == [], f"{len(failures)} bad answers, e.g. {failures[:5]}"
    assert answered == REQUESTS
    assert slowest < 1.0
    # The handlers really ran, not only the envelope checks.
    for endpoint in ("announce", "lookup", "put", "get", "unknown", "invalid", "oversize"):
        assert f'grape_http_requests_total{{endpoint="{endpoint}"' in metrics, endpoint
