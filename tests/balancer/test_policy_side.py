"""The client service's policy side over the real balancer and real gossip sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from scripted_transport import ScriptedTransport

from lab.clock import FakeClock
from lab.history import ClientEvent, Outcome
from lab.loadgen.policy_side import PolicySide
from lab.loadgen.settings import ClientSettings

PEERS = ["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"]


async def until(predicate: Callable[[], bool], within: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def side(
    name: str, clock: FakeClock, transport: ScriptedTransport, events: list[ClientEvent]
) -> PolicySide:
    s = ClientSettings(
        name=name, bind="127.0.0.1", gossip_port=0, seed=len(name), gossip_key=b"k" * 32
    )
    p = PolicySide(s, clock, transport, events.append)
    p.set_peers(PEERS)
    return p


async def test_send_records_outcomes_and_attempts(clock: FakeClock) -> None:
    transport = ScriptedTransport(clock)
    events: list[ClientEvent] = []
    s = side("c1", clock, transport, events)
    sent = await s.send("rpc_test", {"seq": 1}, 1.0)
    assert sent.outcome is Outcome.OK and len(sent.attempts) == 1
    transport.mode = dict.fromkeys(PEERS, "timeout")
    sent = await s.send("rpc_test", {"seq": 2}, 0.25)
    assert sent.outcome is Outcome.TIMEOUT and sent.attempts and sent.error
    s.set_faulty([PEERS[0]])
    assert list(s.faulty()) == [PEERS[0]]
    assert {p.peer for p in s.peers()} == set(PEERS)
    assert s.health()["peers"] == 3


async def test_a_breaker_opened_in_one_client_reaches_the_other_as_a_hint(
    clock: FakeClock,
) -> None:
    t1, t2 = ScriptedTransport(clock), ScriptedTransport(clock)
    e1: list[ClientEvent] = []
    e2: list[ClientEvent] = []
    c1, c2 = side("c1", clock, t1, e1), side("c2", clock, t2, e2)
    await c1.start()
    await c2.start()
    try:
        c1.set_gossip_members([f"{c2.gossip.address}"])
        c2.set_gossip_members([f"{c1.gossip.address}"])
        t1.mode = {PEERS[2]: "timeout"}
        for _ in range(600):  # until c1's breaker on the bad peer opens
            await c1.send("rpc_test", 1, 1.0)
            clock.advance(0.01)
            if any(e.kind == "breaker" and e.peer == PEERS[2] for e in e1):
                break
        await until(lambda: any(e.kind == "gossip_hint" for e in e2))
        hint = next(e for e in e2 if e.kind == "gossip_hint")
        assert (hint.client, hint.peer) == ("c2", PEERS[2])
        assert hint.detail["sender"] == c1.gossip.address and hint.detail["verdict"] == "bad"
        assert {p.peer: p.hints for p in c2.peers()}[PEERS[2]] == 1
        assert c1.gossip_counts().sent > 0 and c2.gossip_counts().received > 0
        c2.set_gossip(False)
        assert {p.peer: p.hints for p in c2.peers()}[PEERS[2]] == 0
        assert not c2.gossip_enabled()
    finally:
        await c1.aclose()
        await c2.aclose()
