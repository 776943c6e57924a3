"""Fuzz a real ``lab worker`` process's control API: 10,000 seeded requests.

Every request is answered within 1 s with a 2xx or 4xx (``PUT /behaviour`` with
``{"latency": {"kind": []}}`` used to answer 500), the behaviour the worker reports is
always strict JSON, the process stays up and exits cleanly without a traceback, and its
peak memory stays under its container's limit. Interleaved RPCs check that the knobs
that were accepted really apply. A seeded loop: failures reproduce exactly.
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
    start_grape,
    start_worker,
)

COUNT = 10_000
SEED = 20_261_203
KINDS = ["fixed", "uniform", "normal", "exp", "", "FIXED", "burst"]
PARAMS = ["ms", "min_ms", "max_ms", "mean_ms", "stddev_ms", "x"]
NUMBERS = [0, 1, 0.5, -1, 10, 300, 600_000, 600_001, 1e308, 2**63, 10_000, 10_001, True]
LITERALS = [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"9" * 400, b"9" * 5000]


def _value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.randrange(8 if depth < 3 else 5)
    if roll < 2:
        return rng.choice(NUMBERS)
    if roll == 2:
        return rng.choice([None, "fixed:0", "uniform:1-2", "normal:3,1", "exp:1", "junk", ""])
    if roll == 3:
        return rng.uniform(0, 2)
    if roll == 4:
        return rng.choice(KINDS)
    if roll == 5:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {rng.choice(["kind", *PARAMS]): _value(rng, depth + 1) for _ in range(rng.randrange(3))}


def _latency(rng: random.Random) -> Any:
    if rng.random() < 0.3:
        return _value(rng)
    kind = rng.choice(KINDS + [[], {}, None, 5])  # noqa: RUF005 (the hostile kinds read best)
    out: dict[str, Any] = {"kind": kind}
    for name in rng.sample(PARAMS, rng.randrange(0, 3)):
        out[name] = rng.choice([rng.uniform(0, 5), rng.choice(NUMBERS), _value(rng)])
    return out


def _body(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.55:
        change: dict[str, Any] = {}
        if rng.random() < 0.6:
            change["latency"] = _latency(rng)
        if rng.random() < 0.5:
            change["error_rate"] = rng.choice([0, 0.1, 1, 1.5, -0.1, _value(rng)])
        if rng.random() < 0.4:
            change["cpu_ms"] = rng.choice([0, 0.5, 2, 10_001, -1, _value(rng)])
        if rng.random() < 0.1:
            change[rng.choice(["x", "latency_spec", ""])] = _value(rng)
        return json.dumps(change).encode()
    if roll < 0.7:
        name = rng.choice([b'"error_rate"', b'"cpu_ms"', b'"latency": {"kind": "fixed", "ms"'])
        tail = b"}}" if b"latency" in name else b"}"
        return b"{" + name + b": " + rng.choice(LITERALS) + tail
    if roll < 0.78:
        depth = rng.randrange(20, 6000)
        return b'{"latency": ' + b"[" * depth + b"]" * depth + b"}"
    if roll < 0.85:
        return rng.randbytes(rng.randrange(0, 200))
    if roll < 0.9:
        return b'{"error_rate": 0, "x": "' + b"y" * rng.randrange(16_000, 70_000) + b'"}'
    return json.dumps(_value(rng)).encode()


def cases(seed: int, n: int) -> Iterator[HttpCase]:
    rng = random.Random(seed)
    for _ in range(n):
        roll = rng.random()
        if roll < 0.8:
            yield HttpCase("PUT", "/behaviour", _body(rng), {"Content-Type": "application/json"})
        elif roll < 0.9:
            yield HttpCase(rng.choice(["GET", "GET", "POST", "DELETE"]), "/behaviour")
        else:
            path = rng.choice(["/health", "/metrics", "/", "/behaviour/x", "/%2e%2e"])
            yield HttpCase(rng.choice(["GET", "PUT"]), path, _body(rng))


def _strict(raw: bytes) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} in an answer")

    return json.loads(raw, parse_constant=refuse)


def acceptable(status: int, body: bytes) -> bool:
    if not 200 <= status < 500:
        return False
    if 200 <= status < 300 and body[:1] == b"{":
        _strict(body)
    return True


@pytest.fixture
def worker(logdir: Path) -> Iterator[tuple[Any, str]]:
    host = "127.0.4.2"
    grape, grape_url = start_grape(host, logdir)
    proc, control, _ = start_worker(host, grape_url, logdir)
    try:
        yield proc, control
    finally:
        assert_clean_exit(proc, grape)


async def test_ten_thousand_control_requests_answered_and_memory_bounded(
    worker: tuple[Any, str],
) -> None:
    proc, url = worker
    result = await fuzz_http(url, cases(SEED, COUNT), acceptable)
    assert result.failures == [], f"{len(result.failures)} bad, e.g. {result.failures[:5]}"
    assert result.answered == COUNT and result.slowest < 1.0
    assert result.statuses[400] > 1000 and result.statuses[200] > 1000  # both paths ran
    assert not proc.exited()
    assert peak_rss(proc) < mem_limit("worker"), f"peak RSS {peak_rss(proc) / 2**20:.0f} MiB"
