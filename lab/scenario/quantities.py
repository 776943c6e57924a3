"""Durations (``15s``, ``500ms``, ``1m30s``) and bounds (``">= 0.999"``) in scenario files.

Why strings: a scenario reads like the experiment it describes (``at: 15s``,
``detection_s: "<= 1"``). Parsing lives here, apart from the schema, so the runner's
``--duration`` style flags and the tests share one grammar. Errors name the field through
:class:`~lab.scenario.yamlsource.Field`.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lab.scenario.yamlsource import Field, describe

MAX_DURATION_S = 6 * 3600.0
"""The longest time a scenario may name (its duration, any time or span within it): a
run keeps every request in memory, ~100 req/s x 5 clients, and 6 h of that is ~11 M
records. ``1.0e+300`` used to be accepted."""

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$")


def parse_duration(
    value: Any,
    at: Field,
    *,
    allow_zero: bool = True,
    low: float = 0.0,
    high: float = MAX_DURATION_S,
) -> float:
    """Seconds from ``15s``, ``250ms``, ``1m30s`` or a bare number, within [low, high]."""
    seconds: float | None = None
    if isinstance(value, bool):
        seconds = None
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if _DURATION.match(text):
            seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
    if seconds is None or not math.isfinite(seconds):
        raise at.error(f"expected a duration like 15s, got {describe(value)}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise at.error(f"must be {'>= 0' if allow_zero else '> 0'}, got {describe(value)}")
    if seconds < low:
        raise at.error(f"must be at least {format_duration(low)}, got {describe(value)}")
    if seconds > high:
        raise at.error(f"must be at most {format_duration(high)}, got {describe(value)}")
    return seconds


def format_duration(seconds: float) -> str:
    """The short form a person writes: ``15s``, ``1.5s``, ``250ms``."""
    if seconds != 0 and abs(seconds) < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
    "==": operator.eq,
}
_BOUND = re.compile(r"^\s*(<=|<|>=|>|==)\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True, slots=True)
class Bound:
    """A comparison a measured figure must satisfy, e.g. ``<= 1``."""

    op: str
    value: float

    def holds(self, measured: float) -> bool:
        return OPS[self.op](measured, self.value)

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


def parse_bound(value: Any, at: Field) -> Bound:
    """A :class:`Bound` from ``"<= 1"``; quote it in YAML (``>`` starts a block scalar)."""
    m = _BOUND.match(value) if isinstance(value, str) else None
    if m is None:
        raise at.error(
            f'expected a bound like "<= 1" (ops <=, <, >=, >, ==), got {describe(value)}'
        )
    number = float(m.group(2))
    if not math.isfinite(number):
        raise at.error(f"the bound's value must be finite, got {describe(value)}")
    return Bound(m.group(1), number)


def parse_number(
    value: Any,
    at: Field,
    *,
    low: float | None = None,
    high: float | None = None,
    integer: bool = False,
) -> float:
    """A number within [low, high]; ``integer`` refuses fractions."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or (integer and not isinstance(value, int)):
        kind = "an integer" if integer else "a number"
        raise at.error(f"expected {kind}, got {describe(value)}")
    try:
        x = float(value)
    except OverflowError:
        x = math.inf
    if not math.isfinite(x):
        raise at.error(f"expected a finite number, got {describe(value)}")
    if low is not None and x < low:
        raise at.error(f"must be >= {low:g}, got {describe(value)}")
    if high is not None and x > high:
        raise at.error(f"must be <= {high:g}, got {describe(value)}")
    return x
