"""The balanced client over a scripted transport on a fake clock (and one real-time hedge)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from scripted_transport import ScriptedTransport

from lab.balancer.attempts import AttemptConfig
from lab.balancer.budget import BudgetConfig
from lab.balancer.client import BalancedClient
from lab.balancer.registry import make_policy
from lab.clock import SYSTEM_CLOCK, FakeClock
from lab.errors import NoPeerAvailable, RpcError, RpcReplyError, RpcTimeout, RpcTransportError
from lab.history import ClientEvent, Outcome

PEERS = ["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"]
A, B, C = PEERS


def client(
    name: str,
    clock: FakeClock,
    transport: ScriptedTransport,
    seed: int = 1,
    probe_aside: bool = True,
    **options: Any,
) -> tuple[BalancedClient, list[ClientEvent]]:
    events: list[ClientEvent] = []
    policy = make_policy(name, clock=clock, rng=random.Random(seed), **options)
    c = BalancedClient(
        policy,
        transport,
        clock=clock,
        on_event=events.append,
        name="c1",
        probe_aside=probe_aside,
        linger=False,  # the scripted transport moves time itself: one attempt at a time
    )
    c.set_peers(PEERS)
    return c, events


async def test_a_request_returns_the_value_and_its_attempt(
    clock: FakeClock, transport: ScriptedTransport
) -> None:
    c, _ = client("adaptive", clock, transport)
    result = await c.request("rpc_test", {"seq": 1}, timeout=1.0)
    (attempt,) = result.attempts
    assert result.value == {"worker": attempt.peer, "echo": {"seq": 1}}
    assert attempt.outcome is Outcome.OK
    assert attempt.end - attempt.start == pytest.approx(0.001)


async def test_retries_go_to_a_different_peer(
    clock: FakeClock, transport: ScriptedTransport
) -> None:
    c, _ = client("adaptive", clock, transport)
    transport.mode = {A: "refused", B: "refused"}
    for _ in range(20):
        result = await c.request("rpc_test", 1, timeout=1.0)
        peers = [a.peer for a in result.attempts]
        assert len(peers) == len(set(peers))  # never the same peer twice
        assert peers[-1] == C and result.attempts[-1].outcome is Outcome.OK
        assert all(a.outcome is Outcome.ERROR for a in result.attempts[:-1])


async def test_the_random_baseline_never_retries(
    clock: FakeClock, transport: ScriptedTransport
) -> None:
    c, _ = client("random", clock, transport)
    transport.mode = {p: "refused" for p in PEERS}
    with pytest.raises(RpcTransportError) as info:
        await c.request("rpc_test", 1, timeout=1.0)
    assert len(info.value.attempts) == 1  # type: ignore[attr-defined]
    assert transport.calls[0][1] == 1.0  # a baseline waits the whole deadline


async def test_when_every_peer_fails_the_last_error_is_raised_with_every_attempt(
    clock: FakeClock, transport: ScriptedTransport
) -> None:
    c, _ = client("adaptive", clock, transport, probe_aside=False)  # probes in line: attempts
    transport.mode = {A: "refused", B: "reply_error", C: "timeout"}
    kinds = {A: RpcTransportError, B: RpcReplyError, C: RpcTimeout}
    for _ in range(5):
        with pytest.raises(RpcError) as info:
            await c.request("rpc_test", 1, timeout=5.0)
        attempts = info.value.attempts  # type: ignore[attr-defined]
        assert sorted(a.peer for a in attempts) == PEERS
        assert type(info.value) is kinds[attempts[-1].peer]  # the last error, unchanged
        clock.advance(3.0)  # let the breakers close again


async def test_the_deadline_bounds_every_attempt(
    clock: FakeClock, transport: ScriptedTransport
) -> None:
    c, _ = client("adaptive", clock, transport, attempts=AttemptConfig(floor_s=0.1))
    for _ in range(30):  # learn: every peer answers in 1 ms
        await c.request("rpc_test", 1, timeout=1.0)
    transport.calls.clear()
    transport.mode = {p: "timeout" for p in PEERS}
    start = clock.monotonic()
    with pytest.raises(RpcTimeout) as info:
        await c.request("rpc_test", 1, timeout=0.25)
    assert clock.monotonic() - start == pytest.approx(0.25)
    assert [round(t, 3) for _, t in transport.calls] == [0.1, 0.1, 0.05]
    assert all(a.outcome is Outcome.TIMEOUT for a in info.value.attempts)  # type: ignore[attr-defined]


async def test_the_retry_budget_stops_retries(
    clock: FakeClock, transport: ScriptedTransport
) -> None:
    budget = BudgetConfig(percent=0.0, min_per_s=0.3, window_s=10.0)  # three retries
    c, _ = client("adaptive", clock, transport, budget=budget)
    transport.mode = {A: "refused", B: "refused", C: "refused"}
    retried = 0
    for _ in range(6):
        with pytest.raises(RpcTransportError) as info:
            await c.request("rpc_test", 1, timeout=1.0)
        retried += len(info.value.attempts) - 1  # type: ignore[attr-defined]
        clock.advance(0.01)
    assert retried == 3


async def test_no_peer_raises_fast(clock: FakeClock, transport: ScriptedTransport) -> None:
    policy = make_policy("adaptive", clock=clock, rng=random.Random(0))
    c = BalancedClient(policy, transport, clock=clock)
    with pytest.raises(NoPeerAvailable) as info:
        await c.request("rpc_test", 1, timeout=1.0)
    assert info.value.attempts == ()  # type: ignore[attr-defined]


async def test_vanished_peers_linger_for_the_grace_period(
    clock: FakeClock, transport: ScriptedTransport
) -> None:
    c, _ = client("adaptive", clock, transport)
    c.set_peers([A, B])
    clock.advance(9.0)
    c.set_peers([A, B])
    assert [s.peer for s in c.peers()] == PEERS  # C missing for 9 s: still here
    c.set_peers([])  # every grape down: an empty answer changes nothing
    clock.advance(2.0)
    c.set_peers([])
    assert [s.peer for s in c.peers()] == PEERS
    c.set_peers([A, B])
    assert [s.peer for s in c.peers()] == [A, B]


async def test_breaker_transitions_become_client_events(
    clock: FakeClock, transport: ScriptedTransport
) -> None:
    c, events = client("adaptive", clock, transport)
    transport.mode = {C: "timeout"}
    for _ in range(300):
        await c.request("rpc_test", 1, timeout=1.0)
        clock.advance(0.01)
    opened = [e for e in events if e.peer == C and e.kind == "breaker" and e.detail["to"] == "open"]
    assert opened, events
    e = opened[0]
    assert (e.client, e.policy, e.kind) == ("c1", "adaptive", "breaker")
    assert e.detail["from"] == "closed" and "timeouts" in e.detail["reason"]


async def _run(
    c: BalancedClient, clock: FakeClock, transport: ScriptedTransport, seconds: float
) -> tuple[list[tuple[float, str]], int]:
    """Requests at 100/s for ``seconds``: (attempt start, peer) of each, and failures."""
    sends: list[tuple[float, str]] = []
    failed = 0
    end = clock.monotonic() + seconds
    while clock.monotonic() < end:
        issued = clock.monotonic()
        try:
            result = await c.request("rpc_test", 1, timeout=1.0)
            sends += [(a.start, a.peer) for a in result.attempts]
        except RpcTimeout:
            failed += 1
        clock.advance(max(0.0, issued + 0.01 - clock.monotonic()))
    return sends, failed


def _share(sends: list[tuple[float, str]], peer: str, lo: float, hi: float) -> float:
    inside = [p for t, p in sends if lo <= t < hi]
    return sum(1 for p in inside if p == peer) / max(1, len(inside))


async def test_adaptive_routes_away_from_a_timing_out_peer_and_lets_it_back_slowly(
    clock: FakeClock, transport: ScriptedTransport
) -> None:
    c, events = client("adaptive", clock, transport, seed=3)
    transport.latency = dict.fromkeys(PEERS, 0.001)
    await _run(c, clock, transport, 2.0)

    transport.mode = {C: "timeout"}  # blackholed
    t0 = clock.monotonic()
    before = len(transport.calls)
    sends, failed = await _run(c, clock, transport, 5.0)
    assert failed == 0  # every request that met C was retried elsewhere in time
    first = [i for i, (p, _) in enumerate(transport.calls[before:]) if p == C]
    assert len([i for i in first if i < 100]) <= 6  # a bounded number meet it early...
    assert _share(sends, C, t0 + 0.3, t0 + 5.0) < 0.03  # ...then only probes

    transport.mode = {}  # healed
    t1 = clock.monotonic()
    sends, failed = await _run(c, clock, transport, 6.0)
    assert failed == 0
    closed = [
        e.t
        for e in events
        if e.peer == C and e.kind == "breaker" and e.detail["to"] == "closed" and e.t > t1
    ]
    assert closed and closed[0] - t1 <= 2.5  # the next probe finds it well
    tc = closed[0]
    early = _share(sends, C, tc, tc + 0.5)
    late = _share(sends, C, tc + 3.0, tc + 4.0)
    assert early < 0.2 < late  # a ramp, not a flood
    recovered = next(
        t for t in (tc + i * 0.1 for i in range(40)) if _share(sends, C, t, t + 0.5) >= 1 / 6
    )
    assert recovered - t1 <= 5.0


async def test_hedging_answers_from_the_second_peer_and_judges_the_first_aside() -> None:
    class Sleepy:
        def __init__(self) -> None:
            self.delay = dict.fromkeys(PEERS, 0.001)

        async def request(
            self,
            peer: str,
            key: str,
            payload: Any,
            *,
            timeout: float,  # noqa: ASYNC109 (the transport contract)
            compress: bool = False,
        ) -> Any:
            await asyncio.sleep(self.delay[peer])
            return peer

    transport = Sleepy()
    policy = make_policy(
        "adaptive",
        clock=SYSTEM_CLOCK,
        rng=random.Random(1),
        attempts=AttemptConfig(floor_s=2.0, hedge=True, hedge_min_s=0.02),
    )
    c = BalancedClient(policy, transport, clock=SYSTEM_CLOCK)
    c.set_peers(PEERS)
    for _ in range(25):  # enough history for a hedge delay
        await c.request("rpc_test", 1, timeout=3.0)
    assert policy.hedge_delay() == pytest.approx(0.02, abs=0.01)
    transport.delay[A] = 1.0
    for _ in range(30):
        result = await c.request("rpc_test", 1, timeout=3.0)
        if result.attempts[0].peer == A:  # attempts come in the order they started
            break
    else:
        pytest.fail("A was never chosen")
    first, hedge = result.attempts
    assert result.value == hedge.peer != A
    assert hedge.hedge and hedge.outcome is Outcome.OK
    assert first.outcome is Outcome.CANCELLED and not first.hedge
    assert first.end - first.start < 0.5
    # The loser runs on aside and its peer is judged on how it really ended (1 s).
    assert {s.peer: s.in_flight for s in c.peers()}[A] == 1
    deadline = asyncio.get_running_loop().time() + 5.0
    while any(s.in_flight for s in c.peers()):
        assert asyncio.get_running_loop().time() < deadline, "the loser never ended"
        await asyncio.sleep(0.01)
    ewma = {s.peer: s.ewma_s for s in c.peers()}[A]
    assert ewma is not None and ewma > 0.5


async def test_a_half_open_probe_goes_aside_and_costs_the_request_nothing(
    clock: FakeClock, transport: ScriptedTransport
) -> None:
    c, events = client("adaptive", clock, transport)
    transport.mode = {C: "timeout"}
    while not any(e.kind == "breaker" and e.detail["to"] == "open" for e in events):
        await c.request("rpc_test", 1, timeout=1.0)
        clock.advance(0.01)
    clock.advance(0.6)  # past the first open period: C's next pick is a probe
    probes_before = sum(1 for p, _ in transport.calls if p == C)
    for _ in range(50):
        result = await c.request("rpc_test", 1, timeout=1.0)
        assert [a.peer for a in result.attempts] != [C] and len(result.attempts) == 1
        assert result.attempts[0].outcome is Outcome.OK
        clock.advance(0.01)
    await asyncio.gather(*c._probes)
    assert sum(1 for p, _ in transport.calls if p == C) > probes_before  # C was probed...
    probes = [e for e in events if e.kind == "probe" and e.peer == C]
    assert probes and probes[0].detail["outcome"] == "timeout"  # ...aside, and said so
    assert {s.peer: s.breaker for s in c.peers()}[C] == "open"  # and it failed: open again


async def test_with_hedging_on_a_blackholed_peer_still_trips_its_breaker() -> None:
    """Hedge losers run on aside to their timeout, so the blackholed peer gets verdicts."""

    class Blackhole:
        async def request(
            self,
            peer: str,
            key: str,
            payload: Any,
            *,
            timeout: float,  # noqa: ASYNC109 (the transport contract)
            compress: bool = False,
        ) -> Any:
            if peer == A:
                await asyncio.sleep(timeout)
                raise RpcTimeout("ERR_TIMEOUT")
            await asyncio.sleep(0.002)
            return peer

    events: list[ClientEvent] = []
    policy = make_policy(
        "adaptive",
        clock=SYSTEM_CLOCK,
        rng=random.Random(1),
        attempts=AttemptConfig(floor_s=0.1, hedge=True, hedge_min_s=0.01),
    )
    c = BalancedClient(policy, Blackhole(), clock=SYSTEM_CLOCK, on_event=events.append)
    c.set_peers(PEERS)
    deadline = asyncio.get_running_loop().time() + 10.0
    while not any(e.kind == "breaker" and e.peer == A and e.detail["to"] == "open" for e in events):
        assert asyncio.get_running_loop().time() < deadline, "A's breaker never opened"
        result = await c.request("rpc_test", 1, timeout=1.0)
        assert result.value != A


async def test_a_timed_out_attempt_keeps_waiting_and_its_late_answer_wins() -> None:
    """Every peer slower than the attempt timeout: the first answer of any attempt wins."""

    class Slow:
        async def request(
            self,
            peer: str,
            key: str,
            payload: Any,
            *,
            timeout: float,  # noqa: ASYNC109 (the transport contract)
            compress: bool = False,
        ) -> Any:
            delay = 0.25 if peer == first else 0.6
            if delay > timeout:
                await asyncio.sleep(timeout)
                raise RpcTimeout("ERR_TIMEOUT")
            await asyncio.sleep(delay)
            return peer

    policy = make_policy("adaptive", clock=SYSTEM_CLOCK, rng=random.Random(1))
    c = BalancedClient(policy, Slow(), clock=SYSTEM_CLOCK)
    c.set_peers(PEERS)
    first = policy.choose().peer  # the peer the next request starts with (same rng state)
    policy = make_policy("adaptive", clock=SYSTEM_CLOCK, rng=random.Random(1))
    c = BalancedClient(policy, Slow(), clock=SYSTEM_CLOCK)
    c.set_peers(PEERS)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    result = await c.request("rpc_test", 1, timeout=1.0)
    took = loop.time() - t0
    assert result.value == first  # its answer came at 0.25 s, after its 0.1 s timeout
    assert 0.2 < took < 0.45  # not 0.1 s + a retry's 0.6 s
    by_peer = {a.peer: a.outcome for a in result.attempts}
    assert by_peer[first] is Outcome.OK and Outcome.CANCELLED in by_peer.values()
    assert {s.peer: s.in_flight for s in c.peers()} == dict.fromkeys(PEERS, 0)
