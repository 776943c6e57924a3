"""The arrival schedule is open loop, reproducible and bounded; the in-flight bound counts."""

from __future__ import annotations

import itertools
import math

import pytest

from lab.errors import SettingsError
from lab.loadgen.schedule import Arrival, ArrivalSchedule, InFlightLimit, LoadSpec


def test_constant_rate_gives_evenly_spaced_times() -> None:
    s = ArrivalSchedule(start=10.0, rate=100.0)
    times = s.due(10.995)
    assert len(times) == 100
    assert times[0] == 10.0
    assert all(math.isclose(b - a, 0.01) for a, b in itertools.pairwise(times))


def test_due_is_independent_of_how_often_it_is_asked() -> None:
    """Open loop: polling late returns every missed arrival with its own time."""
    a = ArrivalSchedule(0.0, 50.0, Arrival.POISSON, seed=3)
    b = ArrivalSchedule(0.0, 50.0, Arrival.POISSON, seed=3)
    late = a.due(2.0)
    often: list[float] = []
    t = 0.0
    while t <= 2.0:
        often += b.due(t)
        t += 0.0137
    often += b.due(2.0)
    assert late == often
    assert 60 < len(late) < 140


def test_poisson_is_seeded() -> None:
    first = ArrivalSchedule(0.0, 100.0, Arrival.POISSON, seed=1).due(1.0)
    again = ArrivalSchedule(0.0, 100.0, Arrival.POISSON, seed=1).due(1.0)
    other = ArrivalSchedule(0.0, 100.0, Arrival.POISSON, seed=2).due(1.0)
    assert first == again
    assert first != other


def test_end_stops_arrivals() -> None:
    s = ArrivalSchedule(0.0, 10.0, end=1.0)
    assert len(s.due(5.0)) == 10
    assert s.next_at() is None
    assert s.finished(1.0)


def test_limit_bounds_one_batch() -> None:
    s = ArrivalSchedule(0.0, 1000.0)
    assert len(s.due(1.0, limit=7)) == 7
    assert s.next_at() == pytest.approx(0.007)


def test_rate_change_reanchors_without_a_burst() -> None:
    s = ArrivalSchedule(0.0, 10.0)
    assert len(s.due(0.55)) == 6  # 0.0 .. 0.5
    s.set_rate(100.0, now=0.55)
    nxt = s.next_at()
    assert nxt == pytest.approx(0.56)
    assert len(s.due(0.655)) == 10


def test_rate_zero_pauses_and_resumes() -> None:
    s = ArrivalSchedule(0.0, 10.0)
    s.due(0.0)
    s.set_rate(0.0, now=0.05)
    assert s.next_at() is None
    assert s.due(100.0) == []
    s.set_rate(10.0, now=100.0)
    assert s.next_at() == pytest.approx(100.1)


def test_in_flight_limit_counts_overflow() -> None:
    limit = InFlightLimit(2)
    assert limit.try_enter() and limit.try_enter()
    assert not limit.try_enter()
    assert limit.rejected == 1
    limit.leave()
    assert limit.try_enter()
    with pytest.raises(SettingsError):
        InFlightLimit(0)


def test_spec_from_json_validates_and_names_the_field() -> None:
    spec = LoadSpec.from_json({"rate": 200, "arrival": "poisson", "duration_s": 5})
    assert spec.rate == 200.0 and spec.arrival is Arrival.POISSON and spec.duration_s == 5.0
    assert spec.payload_bytes == 64
    for bad, field in [
        ({"rate": -1}, "rate"),
        ({"rate": True}, "rate"),
        ({"arrival": "bursty"}, "arrival"),
        ({"payload_bytes": 1.5}, "payload_bytes"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"nope": 1}, "nope"),
    ]:
        with pytest.raises(SettingsError, match=field):
            LoadSpec.from_json(bad)


def test_spec_round_trips_through_json() -> None:
    spec = LoadSpec(rate=5, arrival=Arrival.POISSON, payload_bytes=3, duration_s=2, seed=9)
    assert LoadSpec.from_json(spec.to_json()) == spec


def test_a_backlog_is_not_finished_before_it_is_drained() -> None:
    s = ArrivalSchedule(0.0, 100.0, end=1.0)
    assert len(s.due(5.0, limit=60)) == 60
    assert not s.finished(5.0)
    assert len(s.due(5.0, limit=60)) == 40
    assert s.finished(5.0)
