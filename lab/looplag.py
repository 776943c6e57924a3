"""Event-loop lag: how late a periodic timer fires, and the stalls it reveals.

Why: a client whose own loop was blocked (a paused container, a starved process, a
long GC) sees every attempt in flight "time out" when it wakes, and judging the peers
on that opened every breaker at once. The monitor sleeps ``interval_s`` again and again
and measures how late it woke: the lag. A lag of at least ``stall_s`` is a stall from
the moment the timer was due to the moment it ran; :meth:`LoopLag.overlapped` answers
whether one touched ``[t0, t1]``, including a stall still under way that the monitor
has not woken up to measure yet (after a freeze, the attempts' own timers may run
before the monitor's: the due time already passed by more than ``stall_s`` is proof).

Lag is measured on the event loop's own clock (``loop.time()``, CLOCK_MONOTONIC like
the lab's clock) and questions are translated from the lab's :class:`~lab.clock.Clock`
by the offset between the two at the time of asking, so under a fake clock (tests that
move time by hand) no real stall is ever confused with the fake time's jumps.

Constants: a 20 ms tick (cheap: ~50 wake-ups a second) and a 50 ms stall threshold,
half the 100 ms attempt-timeout floor (an attempt whose timer slept through half its
time was not judged by the peer). Lags are kept as a histogram of whole milliseconds
(bounded memory whatever the run's length) for max and p99, and the last 256 stalls.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from lab.clock import Clock


class StallOracle(Protocol):
    """What the balanced client asks: did the client itself stall during an attempt?"""

    def overlapped(self, t0: float, t1: float) -> bool: ...

    def overlap(self, t0: float, t1: float) -> float:
        """Seconds of ``[t0, t1]`` the client spent stalled."""
        ...

    def stalled_within(self, seconds: float) -> bool:
        """Did a stall end in the last ``seconds`` (or is one under way)?"""
        ...


@dataclass(frozen=True, slots=True)
class Stall:
    start: float  # when the timer was due (monotonic seconds)
    length: float  # seconds late

    @property
    def end(self) -> float:
        return self.start + self.length


def histogram_quantile(counts: dict[int, int], q: float) -> float | None:
    """The ``q`` quantile of a whole-millisecond histogram (None when empty)."""
    total = sum(counts.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for ms in sorted(counts):
        seen += counts[ms]
        if seen >= rank:
            return float(ms)
    return float(max(counts))


class LagBook:
    """The pure part: lag samples, stalls, and the pending due time. Pass ``now``."""

    def __init__(self, stall_s: float = 0.05, keep: int = 256) -> None:
        if not (stall_s > 0 and math.isfinite(stall_s)):
            raise ValueError(f"stall_s: must be a positive number, not {stall_s!r}")
        self.stall_s = stall_s
        self.hist: Counter[int] = Counter()  # lag rounded up to whole ms -> count
        self.stalls: deque[Stall] = deque(maxlen=keep)
        self.stall_count = 0
        self.due: float | None = None  # when the monitor's timer should fire next
        self._since: Counter[int] = Counter()  # since the last report

    def expect(self, due: float) -> None:
        self.due = due

    def woke(self, now: float) -> float:
        """The monitor ran at ``now``; returns the lag it measured."""
        if self.due is None:
            return 0.0
        lag = max(0.0, now - self.due)
        ms = math.ceil(lag * 1000)
        self.hist[ms] += 1
        self._since[ms] += 1
        if lag >= self.stall_s:
            self.stalls.append(Stall(self.due, lag))
            self.stall_count += 1
        self.due = None
        return lag

    def overlapped(self, t0: float, t1: float, now: float) -> bool:
        """Did a stall (finished, or under way at ``now``) touch ``[t0, t1]``?"""
        if self.due is not None and now - self.due >= self.stall_s and self.due <= t1:
            return True
        for s in reversed(self.stalls):
            if s.end < t0:
                break  # stalls are in time order; older ones end earlier still
            if s.start <= t1:
                return True
        return False

    def overlap(self, t0: float, t1: float, now: float) -> float:
        """Seconds of ``[t0, t1]`` covered by stalls (one under way at ``now`` included)."""
        total = 0.0
        if self.due is not None and now - self.due >= self.stall_s:
            total += max(0.0, min(t1, now) - max(t0, self.due))
        for s in reversed(self.stalls):
            if s.end < t0:
                break
            total += max(0.0, min(t1, s.end) - max(t0, s.start))
        return min(total, max(0.0, t1 - t0))

    def stalled_within(self, seconds: float, now: float) -> bool:
        """Did a stall end in the last ``seconds`` before ``now``, or is one under way?"""
        if self.due is not None and now - self.due >= self.stall_s:
            return True
        return bool(self.stalls) and now - self.stalls[-1].end <= seconds

    def take_period(self) -> dict[int, int]:
        """The histogram since the last call (for the periodic ``loop_lag`` event)."""
        out = dict(self._since)
        self._since.clear()
        return out

    def view(self) -> dict[str, Any]:
        """Max and p99 lag (ms) since start, sample and stall counts, the last stalls."""
        return {
            "samples": sum(self.hist.values()),
            "max_ms": float(max(self.hist)) if self.hist else None,
            "p99_ms": histogram_quantile(self.hist, 0.99),
            "stall_threshold_ms": self.stall_s * 1000,
            "stalls": self.stall_count,
            "recent_stalls": [
                {"start": s.start, "length_ms": round(s.length * 1000, 3)}
                for s in list(self.stalls)[-16:]
            ],
        }


class LoopLag:
    """The monitor task over a :class:`LagBook`; reports each stall and each period."""

    def __init__(
        self,
        clock: Clock,
        *,
        interval_s: float = 0.02,
        stall_s: float = 0.05,
        report_every_s: float = 1.0,
        on_stall: Callable[[Stall], None] | None = None,
        on_period: Callable[[float, dict[int, int]], None] | None = None,
    ) -> None:
        if not (interval_s > 0 and math.isfinite(interval_s)):
            raise ValueError(f"interval_s: must be a positive number, not {interval_s!r}")
        self._clock = clock
        self.interval_s = interval_s
        self.report_every_s = report_every_s
        self.book = LagBook(stall_s)
        self._on_stall = on_stall
        self._on_period = on_period
        self._task: asyncio.Task[None] | None = None

    def _offset(self) -> float:
        """Lab clock minus loop clock (0 with the system clock)."""
        return self._clock.monotonic() - asyncio.get_running_loop().time()

    def overlapped(self, t0: float, t1: float) -> bool:
        if self._task is None:
            return False
        offset = self._offset()
        loop_now = asyncio.get_running_loop().time()
        return self.book.overlapped(t0 - offset, t1 - offset, loop_now)

    def overlap(self, t0: float, t1: float) -> float:
        if self._task is None:
            return 0.0
        offset = self._offset()
        loop_now = asyncio.get_running_loop().time()
        return self.book.overlap(t0 - offset, t1 - offset, loop_now)

    def stalled_within(self, seconds: float) -> bool:
        if self._task is None:
            return False
        return self.book.stalled_within(seconds, asyncio.get_running_loop().time())

    def view(self) -> dict[str, Any]:
        return self.book.view()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="loop lag")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        loop, book = asyncio.get_running_loop(), self.book
        last_report = loop.time()
        while True:
            book.expect(loop.time() + self.interval_s)
            await asyncio.sleep(self.interval_s)
            now = loop.time()
            before = book.stall_count
            book.woke(now)
            if book.stall_count > before and self._on_stall is not None:
                s = book.stalls[-1]
                self._on_stall(Stall(s.start + self._offset(), s.length))
            if now - last_report >= self.report_every_s:
                last_report = now
                if self._on_period is not None:
                    self._on_period(self._clock.monotonic(), book.take_period())
