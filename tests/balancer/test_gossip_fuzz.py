"""Fuzz a real ``lab client`` process's gossip socket: 10,000 seeded datagrams.

The fuzzer is a member known through discovery (it announces its UDP address under
``lab_gossip`` on the client's grape, as a client would) and holds the lab's key, so
sealed datagrams reach every check, down to the hint book. The mix: random bytes,
unsealed JSON, another key, sealed garbage, deep nesting (once an uncaught
RecursionError), NaN/Infinity, wrong types, forged senders, replays, stale and future
sequence numbers, oversized datagrams, and valid messages about the client's real peer.

Sent in batches; each batch must be fully counted (accepted or refused) within 1 s, the
control API must keep answering within 1 s, the process must stay up, exit cleanly with
no traceback, and keep its peak memory under its container's limit.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hostile_support import (
    GOSSIP_KEY,
    assert_clean_exit,
    mem_limit,
    peak_rss,
    start_client,
    start_grape,
    start_worker,
)

from lab.balancer.gossip import seal
from lab.clock import SYSTEM_CLOCK

COUNT = 10_000
BATCH = 16  # well within the default socket buffer, so loopback never drops one
SEED = 20_261_204
KEY = GOSSIP_KEY.encode()


class Fuzzer:
    """Draws datagrams; knows its own address, the client's peer, and its last seq."""

    def __init__(self, seed: int, me: str, peer: str) -> None:
        self.rng = random.Random(seed)
        self.me = me
        self.peer = peer
        self.seq = 0

    def next_seq(self) -> int:
        self.seq = max(self.seq + 1, int(SYSTEM_CLOCK.monotonic() * 1e9))
        return self.seq

    def hint(self) -> Any:
        rng = self.rng
        if rng.random() < 0.2:
            return rng.choice([None, 7, "x", [], {"peer": 1}])
        return {
            "peer": rng.choice([self.peer, self.peer, "10.9.9.9:1", "", "x" * 300, 5]),
            "verdict": rng.choice(["bad", "ok", "bad", "meh", None]),
            "age": rng.choice([0, 0.1, 2.9, -1, 1e308, "0", True]),
            "ttl": rng.choice([3, 0.5, 30, 31, 0, 1e9]),
        }

    def body(self) -> bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.6:
            msg: dict[str, Any] = {
                "v": 1,
                "sender": self.me,
                "seq": self.next_seq(),
                "hints": [self.hint() for _ in range(rng.randrange(0, 4))],
            }
            if rng.random() < 0.25:  # a forged sender, a replay, a stale or future seq, ...
                field = rng.choice(["sender", "seq", "v", "hints"])
                msg[field] = rng.choice(
                    {
                        "sender": ["127.0.0.1:9", "10.0.0.1:7946", "", 5, None],
                        "seq": [1, self.seq - 1, self.seq + 60 * 10**9, -1, 2**64, "1", 1.5],
                        "v": [2, 0, True, None, "1"],
                        "hints": ["all", [{}] * 129, None],
                    }[field]
                )
            return json.dumps(msg).encode()
        if roll < 0.7:
            depth = rng.randrange(5, 4000)
            return b'{"v": 1, "hints": ' + b"[" * depth + b"]" * depth + b"}"
        if roll < 0.8:
            literal = rng.choice([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"9" * 400])
            return b'{"v": 1, "sender": "' + self.me.encode() + b'", "seq": ' + literal + b"}"
        return rng.randbytes(rng.randrange(0, 300))

    def datagram(self) -> bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.7:
            return seal(KEY, self.body())
        if roll < 0.8:
            return seal(b"another lab's key that is long enough", self.body())
        if roll < 0.9:
            return self.body()  # not sealed
        if roll < 0.95:
            return rng.randbytes(rng.randrange(0, 64))
        return rng.randbytes(rng.randrange(8300, 65_000))  # over the size limit


@pytest.fixture
def lab(logdir: Path) -> Iterator[tuple[Any, str, int, str]]:
    host = "127.0.4.3"
    grape, grape_url = start_grape(host, logdir)
    worker, _, _ = start_worker(host, grape_url, logdir)
    client, url, gossip = start_client(host, grape_url, logdir)
    try:
        yield client, url, gossip, grape_url
    finally:
        assert_clean_exit(client, worker, grape)


async def _health(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with asyncio.timeout(1.0):
        async with session.get(url + "/health") as resp:
            assert resp.status == 200
            data: dict[str, Any] = await resp.json()
            return data


async def test_ten_thousand_datagrams_all_judged_and_memory_bounded(
    lab: tuple[Any, str, int, str],
) -> None:
    proc, url, port, grape = lab
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.4.3", 0))
        me = f"127.0.4.3:{sock.getsockname()[1]}"
        async with aiohttp.ClientSession() as session:
            announce = {"data": ["lab_gossip", sock.getsockname()[1], {"host": "127.0.4.3"}]}
            async with session.post(grape + "/announce", json=announce) as resp:
                assert resp.status == 200
            deadline = time.monotonic() + 10
            while True:  # the client learns its members and its peer through discovery
                health = await _health(session, url)
                if health["gossip_members"] == 1 and health["peers"] == 1:
                    break
                assert time.monotonic() < deadline, health
                await asyncio.sleep(0.05)
            async with session.get(url + "/peers") as resp:
                peer = (await resp.json())["peers"][0]["peer"]
            fuzzer = Fuzzer(SEED, me, peer)
            sent = 0
            slowest = 0.0
            while sent < COUNT:
                for _ in range(min(BATCH, COUNT - sent)):
                    sock.sendto(fuzzer.datagram(), ("127.0.4.3", port))
                    sent += 1
                started = time.monotonic()
                while True:
                    counts = (await _health(session, url))["gossip_counts"]
                    if counts["received"] + counts["rejected"] >= sent:
                        break
                    assert time.monotonic() - started < 1.0, (sent, counts)
                slowest = max(slowest, time.monotonic() - started)
            async with session.get(url + "/events?limit=10000") as resp:
                events = (await resp.json())["events"]
    assert counts["received"] + counts["rejected"] == COUNT
    assert counts["received"] > 500 and counts["rejected"] > 5000, counts
    assert any(e["kind"] == "gossip_hint" and e["peer"] == peer for e in events)
    assert not proc.exited() and slowest < 1.0
    assert peak_rss(proc) < mem_limit("client"), f"peak RSS {peak_rss(proc) / 2**20:.0f} MiB"
