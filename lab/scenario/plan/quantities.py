"""Durations (``15s``, ``500ms``, ``1m30s``) and bounds (``">= 0.999"``) in scenario files.

A bound is absolute (``"<= 1"``) or relative to another client of the same run:
``"<op> [<factor>x] <ref> [(+|-) <number>]"``, e.g. ``"<= random"``,
``"<= 1.5x oracle"``, ``">= random - 0.001"``. ``<ref>`` is a policy or client name of the
scenario's ``clients:``; the bound is ``factor x`` that client's figure for the same
metric in the same run, ``+/- number``. Which names exist is the schema's business
(:mod:`lab.scenario.plan.spec`); this module only parses.

Why strings: a scenario reads like the experiment it describes (``at: 15s``,
``detection_s: "<= 1"``). Parsing lives here, apart from the schema, so the runner's
``--duration`` style flags and the tests share one grammar. Errors name the field through
:class:`~lab.scenario.plan.yamlsource.Field`.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lab.scenario.plan.yamlsource import Field, describe

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
_NUMBER = r"\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"
_BOUND = re.compile(rf"^\s*(<=|<|>=|>|==)\s*([-+]?{_NUMBER})\s*$")
_RELATIVE = re.compile(
    rf"^\s*(<=|<|>=|>|==)\s*(?:({_NUMBER})\s*x\s+)?([A-Za-z_][\w.\-]*)"
    rf"(?:\s*(\+)|\s+(-))?\s*({_NUMBER})?\s*$"
)  # a "-" needs a space before it: names may hold dashes (client-adaptive-2)


@dataclass(frozen=True, slots=True)
class Bound:
    """A comparison a measured figure must satisfy: ``<= 1``, or ``<= 1.5x random + 2``.

    Relative (``ref`` set): the limit is ``factor x`` the ref's figure ``+ offset``,
    known only once the run is measured (:meth:`against`); ``value`` is unused then.
    """

    op: str
    value: float
    ref: str | None = None
    factor: float = 1.0
    offset: float = 0.0

    def holds(self, measured: float) -> bool:
        return OPS[self.op](measured, self.value)

    def against(self, ref_value: float) -> Bound:
        """The absolute bound this relative one means when the ref measured ``ref_value``."""
        return Bound(self.op, self.factor * ref_value + self.offset)

    def __str__(self) -> str:
        if self.ref is None:
            return f"{self.op} {self.value:g}"
        text = f"{self.op} "
        if self.factor != 1.0:
            text += f"{self.factor:g}x "
        text += self.ref
        if self.offset:
            text += f" {'-' if self.offset < 0 else '+'} {abs(self.offset):g}"
        return text


def parse_bound(value: Any, at: Field, *, relative: bool = False) -> Bound:
    """A :class:`Bound` from ``"<= 1"`` (or, with ``relative``, ``"<= 1.5x random"``).

    Quote it in YAML (``>`` starts a block scalar).
    """
    text = value if isinstance(value, str) else None
    m = _BOUND.match(text) if text is not None else None
    if m is not None:
        number = float(m.group(2))
        if not math.isfinite(number):
            raise at.error(f"the bound's value must be finite, got {describe(value)}")
        return Bound(m.group(1), number)
    r = _RELATIVE.match(text) if text is not None and relative else None
    if r is None:
        like = '"<= 1" or "<= 1.5x random + 2"' if relative else '"<= 1"'
        raise at.error(
            f"expected a bound like {like} (ops <=, <, >=, >, ==), got {describe(value)}"
        )
    sign, digits = r.group(4) or r.group(5), r.group(6)
    if (sign is None) != (digits is None):
        raise at.error(
            f"expected a number after + or - (and a sign before it), got {describe(value)}"
        )
    factor = float(r.group(2)) if r.group(2) else 1.0
    offset = float(digits) * (-1 if sign == "-" else 1) if digits else 0.0
    if not (math.isfinite(factor) and math.isfinite(offset)):
        raise at.error(f"the bound's numbers must be finite, got {describe(value)}")
    if factor <= 0:
        raise at.error(f"the factor must be positive, got {describe(value)}")
    return Bound(r.group(1), math.nan, r.group(3), factor, offset)


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
