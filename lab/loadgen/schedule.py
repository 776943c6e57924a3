"""Open-loop arrival times and the bound on requests in flight.

Why open loop: a closed-loop generator waits for a reply before it sends the next
request, so when a peer stalls it quietly sends less and the stall vanishes from the
figures (Gil Tene's *coordinated omission*). Here every arrival time is fixed in advance
from the rate and a seed, independent of responses; a request is issued at its time
whether or not earlier ones finished, and its latency is measured from that scheduled
time, so a late event loop shows up as latency instead of disappearing.

Why a bound on in-flight requests: an open-loop generator against a dead peer would
otherwise grow without limit. Overflow is not delayed (that would be coordinated
omission again); it is counted and recorded as ``REJECTED``.

Everything here is pure: no awaiting, no clock reads. The load loop asks
:meth:`ArrivalSchedule.due` which arrivals have come, given the time it read.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from lab.errors import SettingsError
from lab.loadgen import limits


class Arrival(StrEnum):
    """How arrivals are spaced."""

    CONSTANT = "constant"  # exactly 1/rate apart: the steadiest signal for share figures
    POISSON = "poisson"  # exponential gaps: independent arrivals, as real users make


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """What ``POST /load/start`` asks for; ``duration_s=None`` runs until stopped."""

    rate: float = 100.0
    arrival: Arrival = Arrival.CONSTANT
    payload_bytes: int = 64
    duration_s: float | None = None
    seed: int = 0
    timeout_s: float = 1.0
    service: str | None = None  # None: the client's configured service

    def __post_init__(self) -> None:
        limits.check_load(self.rate, self.payload_bytes)  # NaN fails every comparison
        if self.duration_s is not None and not 0 < self.duration_s <= limits.MAX_DURATION_S:
            raise SettingsError(
                f"duration_s: {self.duration_s!r} is not within (0, {limits.MAX_DURATION_S:g}] s"
            )
        if not 0 < self.timeout_s <= limits.MAX_TIMEOUT_S:
            raise SettingsError(
                f"timeout_s: {self.timeout_s!r} is not within (0, {limits.MAX_TIMEOUT_S:g}] s"
            )
        if not limits.SEED_MIN <= self.seed <= limits.SEED_MAX:
            raise SettingsError("seed: not within the signed 64-bit range")
        if self.service is not None and not 0 < len(self.service) <= 255:
            raise SettingsError("service: must be 1..255 characters")

    @classmethod
    def from_json(cls, data: Mapping[str, Any], base: LoadSpec | None = None) -> LoadSpec:
        """Build from a JSON body; unknown keys and wrong types name the field."""
        start = base if base is not None else cls()
        unknown = set(data) - _FIELDS
        if unknown:
            raise SettingsError(f"unknown field(s): {', '.join(sorted(unknown))}")
        changes: dict[str, Any] = {}
        for key, value in data.items():
            changes[key] = _coerce(key, value)
        return replace(start, **changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "arrival": self.arrival.value,
            "payload_bytes": self.payload_bytes,
            "duration_s": self.duration_s,
            "seed": self.seed,
            "timeout_s": self.timeout_s,
            "service": self.service,
        }


_FIELDS = {"rate", "arrival", "payload_bytes", "duration_s", "seed", "timeout_s", "service"}


def _coerce(key: str, value: Any) -> Any:
    """One JSON field to its typed value; bool is refused where a number is expected."""
    try:
        if key == "arrival":
            return Arrival(_str(value))
        if key == "service":
            return None if value is None else _str(value)
        if key == "duration_s":
            return None if value is None else _number(value)
        if key in {"payload_bytes", "seed"}:
            return _integer(value)
        return _number(value)
    except ValueError as exc:
        raise SettingsError(f"{key}: {_show(value)}: {exc}") from None


def _show(value: Any) -> str:
    """A caller's value, cut short: an error message never grows with the input."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("not a number")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError("out of range") from None
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _integer(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _number(value)
    if number != int(number):
        raise ValueError("not an integer")
    return int(number)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("not a string")
    return value


class ArrivalSchedule:
    """Arrival times from ``start`` at ``rate`` per second, reproducible from ``seed``.

    The times depend only on the start, the rate history and the seed, never on when the
    caller asks or on replies. :meth:`set_rate` re-anchors the future at the moment of
    the change so a rate patch takes effect at once without a burst.
    """

    def __init__(
        self,
        start: float,
        rate: float,
        arrival: Arrival = Arrival.CONSTANT,
        seed: int = 0,
        end: float | None = None,
    ) -> None:
        self._rng = random.Random(seed)
        self._arrival = arrival
        self._rate = rate
        self._end = end
        self._next = start if rate > 0 else math.inf
        # Constant arrivals are anchor + k / rate, not a running sum, so that float
        # rounding never drifts the count (10 per second means 10, not 11).
        self._anchor = start
        self._k = 0
        self.issued = 0

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def end(self) -> float | None:
        return self._end

    def next_at(self) -> float | None:
        """The next arrival time, or None when the schedule is over (or paused at rate 0)."""
        if math.isinf(self._next) or (self._end is not None and self._next >= self._end):
            return None
        return self._next

    def finished(self, now: float) -> bool:
        """True once ``end`` has passed and every arrival before it was handed out."""
        return self._end is not None and now >= self._end and self.next_at() is None

    def due(self, now: float, limit: int | None = None) -> list[float]:
        """Pop every arrival at or before ``now`` (at most ``limit``), oldest first.

        A caller that fell behind gets all the arrivals it missed, each with its own
        scheduled time: they are issued late, and the lateness counts as latency.
        """
        times: list[float] = []
        while (limit is None or len(times) < limit) and self._next <= now:
            if self._end is not None and self._next >= self._end:
                break
            times.append(self._next)
            self._advance()
        self.issued += len(times)
        return times

    def set_rate(self, rate: float, now: float) -> None:
        """Change the rate from ``now`` on; rate 0 pauses, a positive rate resumes."""
        if rate < 0 or math.isnan(rate):
            raise SettingsError(f"rate: {rate!r} must not be negative")
        self._rate = rate
        if rate <= 0:
            self._next = math.inf
            return
        # An arrival already due stays due (the caller drains it); a future one was drawn
        # at the old rate, so it is redrawn from now at the new one.
        if math.isinf(self._next) or self._next > now:
            self._anchor, self._k = now, 0
            self._next = now
            if self.issued:
                self._advance()
        else:
            self._anchor, self._k = self._next, 0

    def _advance(self) -> None:
        if self._rate <= 0:
            self._next = math.inf
        elif self._arrival is Arrival.POISSON:
            self._next += self._rng.expovariate(self._rate)
        else:
            self._k += 1
            self._next = self._anchor + self._k / self._rate


class InFlightLimit:
    """Admission for requests in flight: admit up to ``limit``, count the overflow."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise SettingsError(f"max in flight: {limit!r} must be at least 1")
        self.limit = limit
        self.in_flight = 0
        self.rejected = 0

    def try_enter(self) -> bool:
        """Admit one request, or count it as rejected and say no."""
        if self.in_flight >= self.limit:
            self.rejected += 1
            return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        if self.in_flight <= 0:
            raise RuntimeError("InFlightLimit.leave without a matching try_enter")
        self.in_flight -= 1
