"""Every breaker transition, its events, jitter bounds and the back-off cap."""

from __future__ import annotations

import random

import pytest

from lab.balancer.breaker import Breaker, BreakerConfig, Permit, Result, State, Transition

CFG = BreakerConfig(
    window_s=2.0,
    min_calls=10,
    failure_rate=0.5,
    consecutive_failures=5,
    consecutive_timeouts=2,
    slow_call_s=0.5,
    open_base_s=0.5,
    open_factor=2.0,
    open_cap_s=2.0,
    jitter=0.2,
    half_open_probes=2,
    half_open_successes=2,
    reset_after_s=10.0,
)


def make(cfg: BreakerConfig = CFG, seed: int = 1) -> tuple[Breaker, list[Transition]]:
    events: list[Transition] = []
    return Breaker("10.0.0.1:1", cfg, random.Random(seed), events.append), events


def fail(b: Breaker, now: float, result: Result = Result.FAILURE, rtt: float = 0.001) -> None:
    permit = b.acquire(now)
    assert permit is not None
    b.record(permit, now, result, rtt)


def ok(b: Breaker, now: float, rtt: float = 0.001) -> Permit:
    permit = b.acquire(now)
    assert permit is not None
    b.record(permit, now, Result.SUCCESS, rtt)
    return permit


def test_opens_on_consecutive_failures_with_an_event() -> None:
    b, events = make()
    for i in range(4):
        fail(b, 1.0 + i * 0.01)
    assert b.state(1.05) is State.CLOSED
    fail(b, 1.05)
    assert b.state(1.05) is State.OPEN
    assert b.acquire(1.05) is None and not b.allows(1.05)
    (e,) = events
    assert (e.t, e.peer, e.from_state, e.to_state) == (1.05, "10.0.0.1:1", State.CLOSED, State.OPEN)
    assert "5 consecutive failures" in e.reason
    assert e.detail() == {"from": "closed", "to": "open", "reason": e.reason}


def test_a_success_breaks_the_streak() -> None:
    b, _ = make()
    for i in range(4):
        fail(b, 1.0 + i * 0.01)
    ok(b, 1.045)
    for i in range(4):
        fail(b, 1.05 + i * 0.01)
    assert b.state(1.1) is State.CLOSED


def test_opens_on_consecutive_timeouts() -> None:
    b, events = make()
    fail(b, 1.0, Result.TIMEOUT, 0.1)
    assert b.state(1.0) is State.CLOSED
    fail(b, 1.01, Result.TIMEOUT, 0.1)
    assert b.state(1.01) is State.OPEN
    assert "2 consecutive timeouts" in events[-1].reason


def test_opens_on_failure_rate_with_a_minimum_call_count() -> None:
    b, events = make()
    t = 1.0
    for i in range(9):  # alternate: no streak, but 4 of 9 fail: below min calls anyway
        (fail if i % 2 else ok)(b, t)
        t += 0.01
    assert b.state(t) is State.CLOSED
    fail(b, t)  # 10 calls, 5 failures: 50 %
    assert b.state(t) is State.OPEN
    assert "failure rate 50% over 10 calls" in events[-1].reason


def test_old_failures_leave_the_window() -> None:
    b, _ = make()
    for i in range(8):
        (fail if i % 2 else ok)(b, 1.0 + i * 0.01)
    t = 5.0  # the window (2 s) has forgotten them
    for i in range(4):
        ok(b, t + i * 0.01)
    fail(b, t + 0.05)
    fail(b, t + 0.06)
    assert b.state(t + 0.06) is State.CLOSED


def test_slow_calls_count_as_failures() -> None:
    b, events = make()
    for i in range(5):
        ok(b, 1.0 + i * 0.01, rtt=0.6)
    assert b.state(1.05) is State.OPEN
    assert "consecutive failures" in events[-1].reason


def open_breaker(b: Breaker, now: float) -> None:
    """Failures until it opens (5 in a row, or fewer on probation)."""
    for i in range(5):
        fail(b, now + i * 1e-3)
        if b.state(now + i * 1e-3) is State.OPEN:
            return


def test_open_then_half_open_then_closed_with_bounded_probes() -> None:
    b, events = make()
    open_breaker(b, 1.0)
    until = b.open_until
    assert 1.004 + 0.5 * 0.8 <= until <= 1.004 + 0.5
    assert b.state(until - 1e-6) is State.OPEN
    assert b.state(until) is State.HALF_OPEN
    assert events[-1].reason == "open time elapsed"
    p1, p2 = b.acquire(until), b.acquire(until)
    assert p1 is not None and p2 is not None and p1.probe and p2.probe
    assert b.acquire(until) is None  # only two probes at a time
    b.release(p2)  # one abandoned: its slot is free again
    p3 = b.acquire(until)
    assert p3 is not None
    b.record(p1, until + 0.01, Result.SUCCESS, 0.001)
    assert b.state(until + 0.01) is State.HALF_OPEN
    b.record(p3, until + 0.02, Result.SUCCESS, 0.001)
    assert b.state(until + 0.02) is State.CLOSED
    assert [(e.from_state, e.to_state) for e in events] == [
        (State.CLOSED, State.OPEN),
        (State.OPEN, State.HALF_OPEN),
        (State.HALF_OPEN, State.CLOSED),
    ]


def test_a_failed_probe_reopens_for_longer() -> None:
    b, events = make(BreakerConfig(**{**_fields(CFG), "jitter": 0.0}))
    open_breaker(b, 1.0)
    first = b.open_until - b.opened_at  # type: ignore[operator]
    t = b.open_until
    probe = b.acquire(t)
    assert probe is not None
    b.record(probe, t + 0.1, Result.TIMEOUT, 0.1)
    assert b.state(t + 0.1) is State.OPEN
    assert events[-1].reason.startswith("probe failed")
    assert b.open_until - (t + 0.1) == pytest.approx(2 * first)
    assert b.trips == 2


def test_open_time_grows_exponentially_up_to_the_cap_with_jitter_below_it() -> None:
    rng = random.Random(3)
    for trips, nominal in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 2.0), (9, 2.0)]:
        samples = [CFG.open_time(trips, rng) for _ in range(300)]
        assert all(nominal * 0.8 <= s <= nominal for s in samples)
        assert max(samples) - min(samples) > nominal * 0.15  # actually jittered


def test_late_results_from_before_the_trip_do_not_move_it() -> None:
    b, events = make()
    early = b.acquire(1.0)
    assert early is not None
    open_breaker(b, 1.0)
    t = b.open_until
    assert b.state(t) is State.HALF_OPEN
    b.record(early, t, Result.SUCCESS, 0.001)  # an answer to a pre-trip attempt
    b.record(early, t, Result.SUCCESS, 0.001)
    assert b.state(t) is State.HALF_OPEN
    assert len(events) == 2


def test_the_trip_count_resets_after_a_healthy_period() -> None:
    b, _ = make(BreakerConfig(**{**_fields(CFG), "jitter": 0.0}))
    t = 1.0
    for _ in range(3):  # trip, probe fails, ... three trips
        open_breaker(b, t) if b.state(t) is State.CLOSED else None
        t = b.open_until
        probe = b.acquire(t)
        assert probe is not None
        b.record(probe, t, Result.FAILURE, 0.001)
    assert b.trips == 4
    t = b.open_until
    for _ in range(2):
        ok(b, t)
    assert b.state(t) is State.CLOSED
    open_breaker(b, t + 1.0)  # soon after (on probation: the rate test trips): back-off goes on
    assert b.trips == 5
    t = b.open_until
    for _ in range(CFG.rate_half_open_successes):  # a rate trip takes 8 probes to close
        ok(b, t)
    assert b.state(t) is State.CLOSED
    open_breaker(b, t + 11.0)  # after 10 s closed: it starts over
    assert b.trips == 1
    assert b.open_until - b.opened_at == pytest.approx(0.5)  # type: ignore[operator]


def test_force_half_open_only_after_the_base_open_time() -> None:
    b, events = make()
    open_breaker(b, 1.0)
    assert not b.force_half_open(1.1)
    assert b.state(1.1) is State.OPEN
    assert b.force_half_open(1.0 + 0.41)
    assert b.state(1.41) is State.HALF_OPEN
    assert "early probe" in events[-1].reason


def test_default_half_open_sends_one_probe_at_a_time() -> None:
    b, _ = make(BreakerConfig())
    open_breaker(b, 1.0)
    t = b.open_until
    first = b.acquire(t)
    assert first is not None and first.probe
    assert b.acquire(t) is None
    b.record(first, t, Result.SUCCESS, 0.001)
    second = b.acquire(t)
    assert second is not None and second.probe  # one success is not enough
    b.record(second, t, Result.SUCCESS, 0.001)
    assert b.state(t) is State.CLOSED


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="failure_rate"):
        BreakerConfig(failure_rate=1.5)
    with pytest.raises(ValueError, match="open_cap_s"):
        BreakerConfig(open_base_s=3.0, open_cap_s=2.0)
    with pytest.raises(ValueError, match="jitter"):
        BreakerConfig(jitter=1.0)


def _fields(cfg: BreakerConfig) -> dict[str, object]:
    return {f: getattr(cfg, f) for f in cfg.__dataclass_fields__}


def test_a_rate_trip_needs_eight_probes_in_a_row_and_probation_trips_on_fewer_calls() -> None:
    b, events = make(BreakerConfig(**{**_fields(CFG), "jitter": 0.0, "half_open_probes": 1}))
    t = 1.0
    for i in range(10):  # 50 % failures over 10 calls: the rate test trips
        (fail if i % 2 else ok)(b, t + i * 0.01)
    assert b.state(t + 0.1) is State.OPEN and "failure rate" in events[-1].reason
    t = b.open_until
    for _ in range(7):
        ok(b, t)
    assert b.state(t) is State.HALF_OPEN  # 7 in a row are not enough after a rate trip
    ok(b, t)
    assert b.state(t) is State.CLOSED and b.on_probation(t)
    for i in range(4):  # on probation: 2 failures of 4 calls trip it (10 are needed otherwise)
        (fail if i % 2 else ok)(b, t + 0.1 + i * 0.01)
    assert b.state(t + 0.2) is State.OPEN and "over 4 calls" in events[-1].reason
    assert not b.on_probation(t + 0.2)


def test_a_timeout_trip_still_closes_after_two_probes() -> None:
    b, _ = make(BreakerConfig(**{**_fields(CFG), "jitter": 0.0}))
    fail(b, 1.0, Result.TIMEOUT)
    fail(b, 1.01, Result.TIMEOUT)
    assert b.state(1.01) is State.OPEN
    t = b.open_until
    ok(b, t)
    ok(b, t)
    assert b.state(t) is State.CLOSED
