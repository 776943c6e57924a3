"""The gossip node on real UDP sockets on 127.0.0.1: exchange, hostile datagrams, off."""

from __future__ import annotations

import asyncio
import json
import random
import socket
from collections.abc import Callable

from lab.balancer.gossip import GossipConfig, Hint, HintVerdict, Message
from lab.balancer.gossip_net import GossipNode
from lab.clock import SYSTEM_CLOCK

CFG = GossipConfig(interval_s=0.02, fanout=3)


async def until(predicate: Callable[[], bool], within: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def node(out: list[Hint], got: list[Message], seed: int = 0) -> GossipNode:
    return GossipNode(
        bind="127.0.0.1",
        port=0,
        advertise=None,
        clock=SYSTEM_CLOCK,
        rng=random.Random(seed),
        config=CFG,
        outgoing=lambda: list(out),
        incoming=got.append,
    )


async def test_two_nodes_exchange_hints() -> None:
    got_a: list[Message] = []
    got_b: list[Message] = []
    hint = Hint("10.0.0.1:1", HintVerdict.BAD, 0.1, 3.0)
    async with node([hint], got_a) as a, node([], got_b, 1) as b:
        assert a.port != 0 and a.address == f"127.0.0.1:{a.port}"
        a.set_members([a.address, b.address])  # our own address is left out
        assert a.members() == [b.address]
        await until(lambda: len(got_b) >= 3)
        assert got_b[0].sender == a.address
        assert got_b[0].hints == (hint,)
        assert a.counts().sent >= 3 and b.counts().received >= 3
        assert got_a == [] and b.counts().sent == 0  # nothing to say: nothing sent


async def test_hostile_datagrams_are_counted_and_ignored() -> None:
    got: list[Message] = []
    async with node([], got) as b:
        raw = [
            b"not json",
            b"{}",
            b"x" * (CFG.max_bytes + 1),
            json.dumps({"v": 1, "sender": b.address, "hints": []}).encode(),  # ourselves
            json.dumps(
                {
                    "v": 1,
                    "sender": "127.0.0.1:9",
                    "hints": [{"peer": "a:1", "verdict": "bad", "age": -5, "ttl": 1}],
                }
            ).encode(),
            json.dumps({"v": 1, "sender": "127.0.0.1:9", "hints": [{"peer": 1}]}).encode(),
        ]
        good = json.dumps({"v": 1, "sender": "127.0.0.1:9", "hints": []}).encode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for data in [*raw, good]:
                s.sendto(data, ("127.0.0.1", b.port))
            await until(lambda: b.counts().rejected + b.counts().received >= len(raw) + 1)
        assert b.counts().rejected == len(raw)
        assert b.counts().received == 1
        assert len(got) == 1 and got[0].sender == "127.0.0.1:9"
        assert "observation in the future" in b.reasons
        assert "from ourselves" in b.reasons


async def test_gossip_off_neither_sends_nor_listens() -> None:
    got_b: list[Message] = []
    hint = Hint("10.0.0.1:1", HintVerdict.BAD, 0.0, 3.0)
    async with node([hint], []) as a, node([hint], got_b, 1) as b:
        a.enabled = False
        a.set_members([b.address])
        b.set_members([a.address])
        await until(lambda: b.counts().sent >= 3)  # b talks, a is deaf
        assert a.counts() == a.counts().__class__(0, 0, 0)
        assert got_b == []
        assert a.send_round() == 0
