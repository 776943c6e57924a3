"""The adaptive client against the plain Grenache client (random) across fault shapes.

Each case scripts the three peers over time on a fake clock and sends one request every
10 ms (100/s, one at a time: the clock is the whole world, so a slow request delays
the next). The same script runs for ``random`` and ``adaptive``; adaptive must keep
availability within 0.1 percentage point of random's (or better) during the fault, and
the case's own property (no "every breaker open" rejections, detection, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from scripted_transport import ScriptedTransport

from lab.balancer.client import BalancedClient
from lab.balancer.registry import make_policy
from lab.clock import FakeClock, SystemClock
from lab.errors import LabError, RpcTimeout
from lab.history import ClientEvent, Outcome

PEERS = ["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"]
A, B, C = PEERS
START = 1000.0
Script = Callable[[ScriptedTransport, float], None]  # (transport, seconds since start)


@dataclass
class Run:
    issued: list[tuple[float, bool, str | None, str]] = field(default_factory=list)
    events: list[ClientEvent] = field(default_factory=list)

    def availability(self, lo: float, hi: float) -> float:
        window = [ok for t, ok, _, _ in self.issued if lo <= t < hi]
        return sum(window) / len(window)

    def share(self, peer: str, lo: float, hi: float) -> float:
        firsts = [p for t, _, p, _ in self.issued if lo <= t < hi and p is not None]
        return Counter(firsts)[peer] / max(1, len(firsts))

    def errors(self, lo: float, hi: float) -> Counter[str]:
        return Counter(e for t, ok, _, e in self.issued if lo <= t < hi and not ok)


async def simulate(policy: str, script: Script, seconds: float, **options: Any) -> Run:
    clock = FakeClock(start=START)
    transport = ScriptedTransport(clock)
    run = Run()
    c = BalancedClient(
        make_policy(policy, clock=clock, rng=random.Random(3), **options),
        transport,
        clock=clock,
        on_event=run.events.append,
        name="c",
        linger=False,  # the scripted transport moves time itself: one attempt at a time
    )
    c.set_peers(PEERS)
    i = 0
    while (due := START + i * 0.01) < START + seconds:
        if clock.monotonic() < due:
            clock.advance(due - clock.monotonic())
        t = clock.monotonic() - START
        script(transport, t)
        try:
            result = await c.request("rpc_test", 1, timeout=1.0)
        except LabError as exc:
            attempts = getattr(exc, "attempts", ())
            first = attempts[0].peer if attempts else None
            run.issued.append((t, False, first, type(exc).__name__ + ": " + str(exc)[:40]))
        else:
            run.issued.append((t, True, result.attempts[0].peer, ""))
        i += 1
    return run


def phases(*steps: tuple[float, dict[str, Any]]) -> Script:
    """From each step's time on, set the transport's ``mode``/``latency``/``error_rate``."""

    def script(tr: ScriptedTransport, t: float) -> None:
        current: dict[str, Any] = {}
        for at, setting in steps:
            if t >= at:
                current = setting
        tr.mode = dict(current.get("mode", {}))
        tr.latency = dict(current.get("latency", {}))
        tr.error_rate = dict(current.get("error_rate", {}))

    return script


ALL_SLOW = phases((0, {}), (2, {"latency": dict.fromkeys(PEERS, 0.3)}), (6, {}))
TWO_BLACKHOLED = phases((0, {}), (2, {"mode": {A: "timeout", B: "timeout"}}), (6, {}))
ALL_DOWN_THEN_BACK = phases(
    (0, {}),
    (2, {"mode": dict.fromkeys(PEERS, "refused")}),
    (4, {"mode": {B: "refused", C: "refused"}}),
    (5, {"mode": {C: "refused"}}),
    (6, {}),
)
STALL_OF_TWO_DURING_BLACKHOLE = phases(
    (0, {}),
    (2, {"mode": {B: "timeout"}}),
    (3, {"mode": {B: "timeout"}, "latency": {A: 0.25, C: 0.25}}),
    (3.4, {"mode": {B: "timeout"}}),
    (6, {}),
)
FLAPPING = phases(*[(t, {"latency": {A: 0.3}} if t % 2 else {}) for t in range(0, 8)])
HALF_FAILING = phases((0, {}), (2, {"error_rate": {B: 0.5}}))
FEW_FAILING = phases((0, {}), (2, {"error_rate": {B: 0.05}}))
EVERYONE_FLAKY = phases((0, {}), (2, {"error_rate": dict.fromkeys(PEERS, 0.5)}), (6, {}))


@pytest.mark.parametrize(
    ("script", "lo", "hi"),
    [
        (ALL_SLOW, 2, 6),
        (TWO_BLACKHOLED, 2, 6),
        (ALL_DOWN_THEN_BACK, 2, 6),
        (STALL_OF_TWO_DURING_BLACKHOLE, 2, 6),
        (FLAPPING, 0, 8),
        (HALF_FAILING, 2, 8),
        (FEW_FAILING, 2, 8),
        (EVERYONE_FLAKY, 2, 6),
    ],
    ids=[
        "all-slow",
        "two-blackholed",
        "all-down-then-back",
        "stall-during-blackhole",
        "flapping",
        "half-failing",
        "few-failing",
        "everyone-flaky",
    ],
)
async def test_adaptive_is_never_worse_than_random(script: Script, lo: float, hi: float) -> None:
    seconds = max(hi, 8)
    base = await simulate("random", script, seconds)
    mine = await simulate("adaptive", script, seconds)
    assert mine.availability(lo, hi) >= base.availability(lo, hi) - 0.001, (
        mine.availability(lo, hi),
        base.availability(lo, hi),
        mine.errors(lo, hi).most_common(3),
    )
    rejected = [e for _, ok, _, e in mine.issued if not ok and "breaker is open" in e]
    assert not rejected  # the client's own judgement never refuses a request


async def test_a_slowdown_every_peer_shares_is_served_and_marked_as_panic() -> None:
    run = await simulate("adaptive", ALL_SLOW, 8)
    assert run.availability(2, 6) == 1.0
    assert run.availability(6.5, 8) == 1.0
    panics = [e.detail["state"] for e in run.events if e.kind == "panic"]
    assert panics in ([], ["start", "end"]) or panics[:2] == ["start", "end"]


async def test_two_of_three_blackholed_keeps_the_live_one_and_records_panic() -> None:
    run = await simulate("adaptive", TWO_BLACKHOLED, 8)
    assert run.availability(2.5, 6) > 0.95
    assert run.share(C, 3, 6) > 0.9
    states = [e.detail["state"] for e in run.events if e.kind == "panic"]
    assert states[:1] == ["start"] and "end" in states  # ends once the breakers close


async def test_all_down_then_back_one_by_one_resumes_with_the_first() -> None:
    run = await simulate("adaptive", ALL_DOWN_THEN_BACK, 8)
    assert run.availability(2.1, 4) == 0.0  # a total outage fails ...
    answered = [t for t, ok, _, _ in run.issued if t >= 4 and ok]
    assert answered and answered[0] < 4.1  # ... and the first peer back serves at once
    assert run.availability(4.2, 6) > 0.99
    slow = [e for t, ok, _, e in run.issued if 2.1 <= t < 4 and not ok and "Timeout" in e]
    assert not slow  # refused peers fail fast: nobody waits for a deadline


async def test_half_failing_peer_is_detected_within_two_seconds() -> None:
    run = await simulate("adaptive", HALF_FAILING, 12)
    windows = [(t / 2, t / 2 + 0.5) for t in range(8, 24)]  # 500 ms windows from 4 s
    assert all(run.share(B, lo, hi) < 0.05 for lo, hi in windows), [
        round(run.share(B, lo, hi), 3) for lo, hi in windows
    ]


async def test_few_failing_peer_keeps_serving_without_flapping() -> None:
    run = await simulate("adaptive", FEW_FAILING, 12)
    trips = [e for e in run.events if e.kind == "breaker" and e.detail["to"] == "open"]
    assert len(trips) <= 1
    assert run.availability(2, 12) > 0.999  # retries rescue its errors
    assert run.share(B, 2, 12) > 0.1


async def test_a_stalled_client_gives_no_verdicts() -> None:
    clock = FakeClock(start=START)
    transport = ScriptedTransport(clock)
    events: list[ClientEvent] = []

    class Frozen:
        def overlapped(self, t0: float, t1: float) -> bool:
            return True  # every attempt overlapped a stall of the client

        def overlap(self, t0: float, t1: float) -> float:
            return t1 - t0

        def stalled_within(self, seconds: float) -> bool:
            return False  # only the verdicts are under test here

    c = BalancedClient(
        make_policy("adaptive", clock=clock, rng=random.Random(1)),
        transport,
        clock=clock,
        on_event=events.append,
        stalls=Frozen(),
        linger=False,
    )
    c.set_peers(PEERS)
    transport.mode = dict.fromkeys(PEERS, "timeout")
    for _ in range(20):
        try:
            await c.request("rpc_test", 1, timeout=1.0)
        except LabError as exc:
            assert all(a.outcome is Outcome.TIMEOUT for a in getattr(exc, "attempts", ()))
    assert not [e for e in events if e.kind == "breaker"]
    assert c.voided > 0


async def test_right_after_its_own_stall_the_client_behaves_like_the_plain_one() -> None:
    clock = FakeClock(start=START)
    transport = ScriptedTransport(clock)

    class JustStalled:
        def overlapped(self, t0: float, t1: float) -> bool:
            return False

        def overlap(self, t0: float, t1: float) -> float:
            return 0.0

        def stalled_within(self, seconds: float) -> bool:
            return True  # the loop stalled less than a second ago

    c = BalancedClient(
        make_policy("adaptive", clock=clock, rng=random.Random(1)),
        transport,
        clock=clock,
        stalls=JustStalled(),
        linger=False,
    )
    c.set_peers(PEERS)
    transport.mode = dict.fromkeys(PEERS, "timeout")
    with pytest.raises(LabError) as info:
        await c.request("rpc_test", 1, timeout=1.0)
    (attempt,) = getattr(info.value, "attempts", ())  # one attempt, no retry
    assert transport.calls == [(attempt.peer, 1.0)]  # waited the whole deadline


class _Stalled:
    """A stall oracle: the loop stalled less than a second ago (or not), no overlap."""

    def __init__(self, lately: bool) -> None:
        self.lately = lately

    def overlapped(self, t0: float, t1: float) -> bool:
        return False

    def overlap(self, t0: float, t1: float) -> float:
        return 0.0

    def stalled_within(self, seconds: float) -> bool:
        return self.lately


async def _short_deadline_breakers(stalled_lately: bool) -> tuple[list[ClientEvent], int]:
    """Sixty requests with 20 ms left each (below the 100 ms floor); peer A is silent."""
    clock = FakeClock(start=START)
    transport = ScriptedTransport(clock)
    events: list[ClientEvent] = []
    c = BalancedClient(
        make_policy("adaptive", clock=clock, rng=random.Random(1)),
        transport,
        clock=clock,
        on_event=events.append,
        stalls=_Stalled(stalled_lately),
        linger=False,
    )
    c.set_peers(PEERS)
    transport.mode = {A: "timeout"}
    for _ in range(60):
        with contextlib.suppress(LabError):
            await c.request("rpc_test", 1, timeout=0.02)
        clock.advance(0.01)
    return [e for e in events if e.kind == "breaker" and e.detail["to"] == "open"], c.voided


async def test_after_a_stall_timeouts_cut_short_by_the_deadline_give_no_verdict() -> None:
    # The backlog a frozen client issues on waking has little of its deadline left.
    opened, voided = await _short_deadline_breakers(stalled_lately=True)
    assert not opened
    assert voided > 0


async def test_without_a_stall_a_short_deadline_still_ejects_a_silent_peer() -> None:
    opened, voided = await _short_deadline_breakers(stalled_lately=False)
    assert opened
    assert voided == 0


class _SilentPeer:
    """A real-clock transport whose peers never answer within the attempt timeout."""

    async def request(
        self,
        peer: str,
        key: str,
        payload: Any,
        *,
        timeout: float,  # noqa: ASYNC109 (the Transport protocol's signature)
        compress: bool = False,
    ) -> Any:
        await asyncio.sleep(timeout)
        raise RpcTimeout(f"{peer}: no answer within {timeout:.3f}s")


async def _timeout_verdicts(block_s: float) -> tuple[int, int]:
    """One request to a silent peer; the loop is blocked ``block_s`` when its timer is due."""
    clock = SystemClock()
    policy = make_policy("adaptive", clock=clock, rng=random.Random(1))
    verdicts: list[Outcome] = []
    finished = policy.finished

    def spy(pick: Any, rtt: float, outcome: Outcome) -> None:
        verdicts.append(outcome)
        finished(pick, rtt, outcome)

    policy.finished = spy  # type: ignore[method-assign]
    c = BalancedClient(policy, _SilentPeer(), clock=clock, stalls=_Stalled(False))
    c.set_peers([A])  # one peer: the request cannot move on, so one verdict at most

    async def busy() -> None:  # the client working off a burst: its loop is late
        await asyncio.sleep(0.09)
        time.sleep(block_s)  # noqa: ASYNC251 (blocking the loop is the point)

    blocker = asyncio.create_task(busy())
    with contextlib.suppress(LabError):
        await c.request("rpc_test", 1, timeout=0.3)
    await blocker
    return verdicts.count(Outcome.TIMEOUT), c.voided


async def test_a_timeout_the_busy_client_noticed_late_gives_no_verdict() -> None:
    timeouts, voided = await _timeout_verdicts(block_s=0.15)  # due at 0.1 s, seen at 0.24 s
    assert (timeouts, voided) == (0, 1)


async def test_a_timeout_noticed_on_time_is_the_peers() -> None:
    timeouts, voided = await _timeout_verdicts(block_s=0.0)
    assert (timeouts, voided) == (1, 0)
