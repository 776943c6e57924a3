"""The announcement table: jittered expiry on a fake clock, refresh, bounds, random order."""

from __future__ import annotations

import random

import pytest

from lab.clock import FakeClock
from lab.grape.records import AnnouncementTable

KEY = b"k" * 20


def table(clock: FakeClock, max_age: float = 10.0, seed: int = 1, **kw: int) -> AnnouncementTable:
    return AnnouncementTable(clock, max_age, rng=random.Random(seed), **kw)  # type: ignore[arg-type]


def test_an_announcement_lives_between_067_and_133_of_max_age() -> None:
    clock = FakeClock()
    t = table(clock)
    deadlines = [t.announce(KEY, f"10.0.0.1:{p}") - clock.monotonic() for p in range(1, 500)]
    assert min(deadlines) >= 6.7
    assert max(deadlines) <= 13.3
    # The draws spread over the window instead of clustering at one end.
    assert min(deadlines) < 7.2 and max(deadlines) > 12.8


def test_entries_vanish_exactly_at_their_deadline() -> None:
    clock = FakeClock()
    t = table(clock, max_age=1.0)
    deadline = t.announce(KEY, "10.0.0.1:1")
    clock.advance(deadline - clock.monotonic() - 1e-6)
    assert t.lookup(KEY) == ["10.0.0.1:1"]
    clock.advance(2e-6)
    assert t.lookup(KEY) == []
    assert len(t) == 0 and t.services() == 0


def test_everything_is_gone_after_133_percent_and_nothing_before_67() -> None:
    clock = FakeClock()
    t = table(clock, max_age=1.0)
    for p in range(1, 101):
        t.announce(KEY, f"10.0.0.1:{p}")
    clock.advance(0.669)
    assert len(t.lookup(KEY, limit=1000)) == 100
    clock.advance(1.331 - 0.669)
    assert t.lookup(KEY) == []


def test_a_new_announce_pushes_the_deadline_out() -> None:
    clock = FakeClock()
    t = table(clock, max_age=1.0)
    t.announce(KEY, "10.0.0.1:1")
    for _ in range(10):
        clock.advance(0.6)
        t.announce(KEY, "10.0.0.1:1")
    assert t.lookup(KEY) == ["10.0.0.1:1"]
    assert len(t) == 1


def test_prune_drops_only_expired_entries_and_reports_how_many() -> None:
    clock = FakeClock()
    t = table(clock, max_age=1.0)
    t.announce(KEY, "10.0.0.1:1")
    t.announce(b"j" * 20, "10.0.0.2:1")
    clock.advance(2.0)
    t.announce(KEY, "10.0.0.3:1")
    assert t.prune() == 2
    assert len(t) == 1 and t.services() == 1
    assert t.lookup(KEY) == ["10.0.0.3:1"]


def test_lookup_is_bounded_and_in_random_order() -> None:
    clock = FakeClock()
    t = table(clock, max_age=100.0)
    for p in range(1, 301):
        t.announce(KEY, f"10.0.0.1:{p}")
    first = t.lookup(KEY)
    second = t.lookup(KEY)
    assert len(first) == 100 and len(set(first)) == 100
    assert first != second
    small = table(clock, max_age=100.0, seed=2)
    for p in range(1, 21):
        small.announce(KEY, f"10.0.0.1:{p}")
    orders = {tuple(small.lookup(KEY)) for _ in range(5)}
    assert len(orders) > 1
    assert all(sorted(o) == sorted(f"10.0.0.1:{p}" for p in range(1, 21)) for o in orders)


def test_keys_are_independent() -> None:
    clock = FakeClock()
    t = table(clock)
    t.announce(KEY, "10.0.0.1:1")
    assert t.lookup(b"x" * 20) == []


def test_the_table_is_bounded_per_service_and_in_services() -> None:
    clock = FakeClock()
    t = table(clock, max_age=100.0, max_services=3, max_per_service=5)
    for p in range(1, 11):
        clock.advance(0.001)
        t.announce(KEY, f"10.0.0.1:{p}")
    assert len(t.lookup(KEY)) == 5
    for i in range(10):
        t.announce(bytes([i]) * 20, "10.0.0.2:1")
    assert t.services() == 3
    assert len(t) <= 3 * 5


def test_max_age_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_age"):
        AnnouncementTable(FakeClock(), 0)
