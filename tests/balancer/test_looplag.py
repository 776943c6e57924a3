"""The event-loop lag monitor: lag histogram, stalls, and the overlap question."""

from __future__ import annotations

import asyncio
import time

import pytest

from lab.clock import SYSTEM_CLOCK
from lab.looplag import LagBook, LoopLag, Stall, histogram_quantile


def test_the_book_keeps_stalls_and_answers_overlaps() -> None:
    book = LagBook(stall_s=0.05)
    book.expect(10.0)
    assert book.woke(10.001) == pytest.approx(0.001)
    book.expect(10.02)
    assert book.woke(10.52) == pytest.approx(0.5)  # a half-second stall from 10.02
    assert list(book.stalls) == [Stall(10.02, pytest.approx(0.5))]  # type: ignore[list-item]
    assert book.overlapped(10.0, 10.03, now=11.0)
    assert book.overlapped(10.5, 10.6, now=11.0)
    assert not book.overlapped(10.53, 10.9, now=11.0)
    assert not book.overlapped(9.0, 10.01, now=11.0)
    book.expect(11.0)  # due at 11.0 and not yet run at 11.2: a stall under way
    assert book.overlapped(10.9, 11.2, now=11.2)
    assert not book.overlapped(10.9, 11.2, now=11.04)  # 40 ms late is no stall
    assert book.overlap(10.0, 10.12, now=11.04) == pytest.approx(0.1)  # [10.02, 10.12]
    assert book.overlap(10.9, 11.2, now=11.2) == pytest.approx(0.2)  # under way since 11.0
    assert book.overlap(10.6, 10.9, now=11.04) == 0.0
    assert book.stalled_within(1.0, now=11.04)  # the 10.02-10.52 stall ended 0.52 s ago
    assert not book.stalled_within(0.5, now=11.04)
    assert book.stalled_within(0.0, now=11.2)  # one under way
    view = book.view()
    assert view["max_ms"] == 500 and view["stalls"] == 1 and view["samples"] == 2


def test_histogram_quantile() -> None:
    assert histogram_quantile({}, 0.99) is None
    assert histogram_quantile({1: 98, 2: 1, 300: 1}, 0.99) == 2
    assert histogram_quantile({1: 98, 2: 1, 300: 1}, 1.0) == 300


def test_bad_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="stall_s"):
        LagBook(stall_s=0)


async def test_a_blocked_loop_is_seen_as_a_stall_that_overlaps_the_attempts_in_it() -> None:
    stalls: list[Stall] = []
    periods: list[dict[int, int]] = []
    lag = LoopLag(
        SYSTEM_CLOCK,
        interval_s=0.01,
        report_every_s=0.05,
        on_stall=stalls.append,
        on_period=lambda _t, h: periods.append(h),
    )
    await lag.start()
    try:
        await asyncio.sleep(0.05)
        before = time.monotonic()
        time.sleep(0.2)  # noqa: ASYNC251 (the point: block the loop, as a pause would)
        assert lag.overlapped(before, time.monotonic())  # known before the monitor runs
        deadline = time.monotonic() + 5.0
        while not stalls:
            assert time.monotonic() < deadline, "the stall was never reported"
            await asyncio.sleep(0.01)
        (stall,) = stalls
        assert stall.length >= 0.15
        assert lag.overlapped(before + 0.05, before + 0.1)
        assert not lag.overlapped(time.monotonic() + 1, time.monotonic() + 2)
        assert lag.view()["max_ms"] >= 150
        while not periods:
            assert time.monotonic() < deadline, "no period was reported"
            await asyncio.sleep(0.01)
    finally:
        await lag.aclose()
