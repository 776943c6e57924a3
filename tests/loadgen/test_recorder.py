"""The rings keep the newest records, page by cursor and report what a reader missed."""

from __future__ import annotations

import pytest

from lab.history import ClientEvent, Outcome, RequestRecord
from lab.loadgen.recorder import MAX_PAGE, Recorder, Ring


def test_pages_follow_the_cursor() -> None:
    ring: Ring[int] = Ring(10)
    for i in range(5):
        assert ring.append(i) == i
    page = ring.page(0, limit=3)
    assert page.records == (0, 1, 2) and page.cursor == 3 and page.dropped == 0
    page = ring.page(page.cursor)
    assert page.records == (3, 4) and page.cursor == 5
    assert ring.page(5).records == ()
    assert ring.page(5).cursor == 5


def test_a_reader_that_fell_behind_is_told_how_much_it_missed() -> None:
    ring: Ring[int] = Ring(4)
    for i in range(10):
        ring.append(i)
    assert ring.evicted == 6 and len(ring) == 4 and list(ring) == [6, 7, 8, 9]
    page = ring.page(2)
    assert page.dropped == 4
    assert page.records == (6, 7, 8, 9)
    assert page.cursor == 10


def test_a_cursor_past_the_end_is_clamped() -> None:
    ring: Ring[int] = Ring(4)
    ring.append(1)
    page = ring.page(99)
    assert page.records == () and page.cursor == 1 and page.dropped == 0


def test_page_size_is_capped() -> None:
    ring: Ring[int] = Ring(MAX_PAGE + 10)
    for i in range(MAX_PAGE + 10):
        ring.append(i)
    assert len(ring.page(0, limit=10**9).records) == MAX_PAGE


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Ring(0)


def test_recorder_keeps_requests_and_events_apart() -> None:
    rec = Recorder(history_limit=2, events_limit=2)
    r = RequestRecord("c", "adaptive", 1, 1.0, 1.1, Outcome.OK)
    e = ClientEvent("c", "adaptive", 1.0, "breaker", "p:1", {"to": "open"})
    assert rec.record(r) == 0
    assert rec.event(e) == 0
    assert rec.requests.page(0).records == (r,)
    assert rec.events.page(0).records == (e,)
