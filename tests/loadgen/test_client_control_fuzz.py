"""Fuzz a real ``lab client`` process's control API: 10,000 seeded requests.

Every request is answered within 1 s with a 2xx or 4xx, every JSON answer is strict JSON
(no bare ``Infinity``), the process stays up, exits cleanly without a traceback, and its
peak memory stays under its container's limit. The inputs mix near-valid load specs
(so loads really start, patch and stop) with the hostile values of issue 13: huge
payloads and rates, NaN/Infinity, overflowing and 400-digit numbers, deep nesting,
oversized bodies, wrong types, methods and paths. A seeded loop: failures reproduce.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile_support import (
    HttpCase,
    assert_clean_exit,
    fuzz_http,
    mem_limit,
    peak_rss,
    start_client,
    start_grape,
)

COUNT = 10_000
SEED = 20_261_202
FIELDS = ["rate", "arrival", "payload_bytes", "duration_s", "seed", "timeout_s", "service"]
NUMBERS = [0, 1, -1, 0.5, 5, 50, 2000, 2001, 65536, 65537, 4194304, 1e308, 2**63, 2**64, -(2**70)]
LITERALS = [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"9" * 400, b"9" * 5000, b"-0", b"1e-400"]
ROUTES = [
    ("GET", "/health"), ("GET", "/metrics"), ("GET", "/clock"), ("GET", "/load"),
    ("GET", "/history"), ("GET", "/events"), ("GET", "/peers"), ("GET", "/oracle"),
    ("GET", "/gossip"), ("POST", "/load/start"), ("POST", "/load/stop"), ("PATCH", "/load"),
    ("PUT", "/oracle"), ("PUT", "/gossip"),
]  # fmt: skip


def _value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.randrange(10 if depth < 3 else 7)
    if roll < 3:
        return rng.choice(NUMBERS)
    if roll == 3:
        return rng.choice([None, True, False])
    if roll == 4:
        return rng.choice(["constant", "poisson", "", "x" * 300, "rpc_test", "\ud800"])
    if roll == 5:
        return rng.uniform(-10, 3000)
    if roll == 6:
        return rng.randrange(-5, 100)
    if roll == 7:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice([*FIELDS, "x"]): _value(rng, depth + 1) for _ in range(rng.randrange(3))}


def _spec(rng: random.Random) -> dict[str, Any]:
    """A load spec, mostly valid and gentle (a few requests per second, short)."""
    spec: dict[str, Any] = {"rate": rng.choice([1, 5, 20]), "duration_s": rng.choice([0.2, 1])}
    for name in rng.sample(FIELDS, rng.randrange(0, 3)):
        spec[name] = _value(rng)
    return spec


def _body(rng: random.Random, path: str) -> bytes:
    roll = rng.random()
    if roll < 0.45:
        if path == "/oracle":
            data: Any = {"faulty": rng.choice([[], ["127.0.0.9:1"], _value(rng), ["x"] * 70])}
        elif path == "/gossip":
            data = {"enabled": rng.choice([True, False, _value(rng)])}
        else:
            data = _spec(rng)
        return json.dumps(data, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
    if roll < 0.65:  # a hostile literal where JSON has a number
        name = rng.choice(FIELDS).encode()
        return b'{"' + name + b'": ' + rng.choice(LITERALS) + b"}"
    if roll < 0.72:
        depth = rng.randrange(20, 6000)
        return b'{"rate": ' + b"[" * depth + b"]" * depth + b"}"
    if roll < 0.8:
        return rng.randbytes(rng.randrange(0, 200))
    if roll < 0.85:
        return b'{"rate": 1, "pad": "' + b"x" * rng.randrange(16_000, 40_000) + b'"}'
    if roll < 0.9:
        return b""
    return json.dumps(_value(rng)).encode()


def _query(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return ""
    name = rng.choice(["cursor", "limit"])
    value = rng.choice(["0", "5", "-1", "1e3", "9" * 30, "99999999999", "\u00b2", "", "x"])
    return f"?{name}={value}"


def cases(seed: int, n: int) -> Iterator[HttpCase]:
    rng = random.Random(seed)
    for _ in range(n):
        method, path = rng.choice(ROUTES)
        if rng.random() < 0.05:
            method = rng.choice(["GET", "POST", "PUT", "PATCH", "DELETE"])
        if rng.random() < 0.03:
            path = "/" + "".join(rng.choice("abcload/%.") for _ in range(rng.randrange(12)))
        body = _body(rng, path) if method != "GET" else b""
        headers = {"Content-Type": "application/json"} if rng.random() < 0.8 else {}
        yield HttpCase(method, path + (_query(rng) if method == "GET" else ""), body, headers)


def _strict(raw: bytes) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} in an answer")

    return json.loads(raw, parse_constant=refuse)


def acceptable(status: int, body: bytes) -> bool:
    if not 200 <= status < 500:
        return False
    if 200 <= status < 300 and body[:1] in (b"{", b"["):
        _strict(body)
    return True


@pytest.fixture
def client(logdir: Path) -> Iterator[tuple[Any, str]]:
    host = "127.0.4.1"
    grape, grape_url = start_grape(host, logdir)
    proc, url, _ = start_client(host, grape_url, logdir)
    try:
        yield proc, url
    finally:
        assert_clean_exit(proc, grape)


async def test_ten_thousand_control_requests_answered_and_memory_bounded(
    client: tuple[Any, str],
) -> None:
    proc, url = client
    result = await fuzz_http(url, cases(SEED, COUNT), acceptable)
    assert result.failures == [], f"{len(result.failures)} bad, e.g. {result.failures[:5]}"
    assert result.answered == COUNT and result.slowest < 1.0
    assert result.statuses[400] > 1000 and result.statuses[200] > 1000  # both paths ran
    final = await fuzz_http(url, [HttpCase("POST", "/load/stop"), HttpCase("GET", "/load")],
                            acceptable, concurrency=1)  # fmt: skip
    assert final.failures == [] and not proc.exited()
    assert peak_rss(proc) < mem_limit("client"), f"peak RSS {peak_rss(proc) / 2**20:.0f} MiB"
