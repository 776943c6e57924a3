"""The gossip node on real UDP sockets on 127.0.0.1: exchange, forged and hostile datagrams, off."""

from __future__ import annotations

import asyncio
import json
import random
import socket
from collections.abc import Callable

from lab.balancer.gossip import GossipConfig, Hint, HintVerdict, Message, encode, seal
from lab.balancer.gossip_net import GossipNode
from lab.clock import SYSTEM_CLOCK

CFG = GossipConfig(interval_s=0.02, fanout=3)
KEY = b"0123456789abcdef" * 4


async def until(predicate: Callable[[], bool], within: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def node(out: list[Hint], got: list[Message], seed: int = 0, key: bytes | None = KEY) -> GossipNode:
    return GossipNode(
        bind="127.0.0.1",
        port=0,
        advertise=None,
        clock=SYSTEM_CLOCK,
        rng=random.Random(seed),
        config=CFG,
        outgoing=lambda: list(out),
        incoming=got.append,
        key=key,
    )


async def test_two_nodes_exchange_hints() -> None:
    got_a: list[Message] = []
    got_b: list[Message] = []
    hint = Hint("10.0.0.1:1", HintVerdict.BAD, 0.1, 3.0)
    async with node([hint], got_a) as a, node([], got_b, 1) as b:
        assert a.port != 0 and a.address == f"127.0.0.1:{a.port}"
        a.set_members([a.address, b.address])  # our own address is left out
        b.set_members([a.address])
        assert a.members() == [b.address]
        await until(lambda: len(got_b) >= 3)
        assert got_b[0].sender == a.address
        assert got_b[0].hints == (hint,)
        assert a.counts().sent >= 3 and b.counts().received >= 3
        assert got_a == [] and b.counts().sent == 0  # nothing to say: nothing sent


def now_seq() -> int:
    return int(SYSTEM_CLOCK.monotonic() * 1e9)


async def test_forged_and_hostile_datagrams_are_counted_and_ignored() -> None:
    got: list[Message] = []
    hint = {"peer": "10.0.0.1:1", "verdict": "bad", "age": 0, "ttl": 3}
    async with node([], got) as b:
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as member,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger,
        ):
            member.bind(("127.0.0.1", 0))
            stranger.bind(("127.0.0.1", 0))
            me = f"127.0.0.1:{member.getsockname()[1]}"
            other = f"127.0.0.1:{stranger.getsockname()[1]}"
            b.set_members([me, "127.0.0.1:9"])

            def body(sender: str = me, seq: int | None = None, **over: object) -> bytes:
                msg = {"v": 1, "sender": sender, "seq": seq or now_seq(), "hints": [hint]}
                return json.dumps({**msg, **over}).encode()

            replayed = seal(KEY, body())
            forged = [
                (member, body(), "not sealed with this lab's gossip key"),
                (member, seal(b"another lab's key, long enough!!", body()), "gossip key"),
                (member, b"short", "datagram shorter than its MAC"),
                (member, seal(KEY, b"[" * 4000 + b"]" * 4000), "nested deeper"),
                (member, b"x" * (CFG.max_bytes + 64), "too large"),
                (member, seal(KEY, body(sender=b.address)), "from ourselves"),
                # A member speaking for another member (the forged "ok"):
                (member, seal(KEY, body(sender="127.0.0.1:9")), "source address"),
                # Not known through discovery, though sealed and honest about itself:
                (stranger, seal(KEY, body(sender=other)), "known through discovery"),
                (member, seal(KEY, body(seq=now_seq() - 60 * 10**9)), "too old"),
                (member, seal(KEY, body(seq=1)), "too old"),
            ]
            member.sendto(replayed, ("127.0.0.1", b.port))
            await until(lambda: b.counts().received == 1)
            forged.append((member, replayed, "replayed"))
            for sock, data, _ in forged:
                sock.sendto(data, ("127.0.0.1", b.port))
            await until(lambda: b.counts().rejected >= len(forged))
            member.sendto(seal(KEY, body()), ("127.0.0.1", b.port))
            await until(lambda: b.counts().received == 2)
        assert b.counts().rejected == len(forged)
        assert len(got) == 2 and got[0].sender == me
        reasons = " | ".join(b.reasons)
        for _, _, why in forged:
            assert why in reasons, (why, b.reasons)


async def test_without_a_key_a_node_neither_sends_nor_accepts() -> None:
    got_b: list[Message] = []
    hint = Hint("10.0.0.1:1", HintVerdict.BAD, 0.0, 3.0)
    async with node([hint], [], key=None) as a, node([hint], got_b, 1) as b:
        assert not a.authenticated and b.authenticated
        a.set_members([b.address])
        b.set_members([a.address])
        await until(lambda: a.counts().rejected >= 3)  # b talks; a refuses, keyless
        assert a.send_round() == 0 and a.counts().sent == 0
        assert got_b == [] and "this client has no gossip key" in a.reasons


def test_encode_carries_the_sequence() -> None:
    assert b'"seq":42' in encode("127.0.0.1:1", [], seq=42)


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
