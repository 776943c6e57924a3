"""What a worker does to each request besides echoing it: added latency, errors, CPU work.

Pure and seeded: :class:`Behaviour` is a frozen value, drawn from with a caller's
``random.Random``; the control API swaps the whole value at once, so a request never
sees half an update. The JSON form is the one ``PUT /behaviour`` takes and
``GET /behaviour`` returns (``docs/contracts.md``), field names shared with the
scenario files: ``fixed`` ``ms``; ``uniform`` ``min_ms``/``max_ms``; ``normal``
``mean_ms``/``stddev_ms``; ``exp`` ``mean_ms``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from lab.errors import SettingsError

MAX_MS = 600_000.0
"""Ten minutes: more than any lab timeout, small enough to catch a unit mistake."""

FIELDS: dict[str, tuple[str, ...]] = {
    "fixed": ("ms",),
    "uniform": ("min_ms", "max_ms"),
    "normal": ("mean_ms", "stddev_ms"),
    "exp": ("mean_ms",),
}


@dataclass(frozen=True, slots=True)
class Latency:
    """A latency distribution in milliseconds; ``params`` in the order of :data:`FIELDS`."""

    kind: str = "fixed"
    params: tuple[float, ...] = (0.0,)

    def __post_init__(self) -> None:
        if self.kind not in FIELDS:
            raise SettingsError(f"latency.kind: {self.kind!r} is not one of {', '.join(FIELDS)}")
        names = FIELDS[self.kind]
        if len(self.params) != len(names):
            raise SettingsError(f"latency: {self.kind} takes {', '.join(names)}")
        for name, value in zip(names, self.params, strict=True):
            if not (math.isfinite(value) and 0 <= value <= MAX_MS):
                raise SettingsError(f"latency.{name}: must be within 0..{MAX_MS:g} ms")
        if self.kind == "uniform" and self.params[0] > self.params[1]:
            raise SettingsError("latency.max_ms: must be >= min_ms")

    def sample_ms(self, rng: random.Random) -> float:
        """One delay in milliseconds (never negative)."""
        p = self.params
        if self.kind == "fixed":
            return p[0]
        if self.kind == "uniform":
            return rng.uniform(p[0], p[1])
        if self.kind == "normal":
            return max(0.0, rng.gauss(p[0], p[1]))
        return rng.expovariate(1.0 / p[0]) if p[0] > 0 else 0.0

    def spec(self) -> str:
        """The command-line form (``fixed:0``, ``uniform:100-300``, ``normal:300,50``)."""
        p = [f"{x:g}" for x in self.params]
        sep = "-" if self.kind == "uniform" else ","
        return f"{self.kind}:{sep.join(p)}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **dict(zip(FIELDS[self.kind], self.params, strict=True))}


def parse_latency(text: str) -> Latency:
    """``fixed:0`` | ``uniform:100-300`` | ``normal:300,50`` | ``exp:50`` (milliseconds)."""
    kind, sep, rest = text.strip().lower().partition(":")
    if not sep or kind not in FIELDS:
        raise SettingsError(
            f"not a latency: {text!r} (try fixed:0, uniform:100-300, normal:300,50, exp:50)"
        )
    parts = rest.replace("-", ",").split(",") if kind == "uniform" else rest.split(",")
    try:
        params = tuple(float(x) for x in parts)
    except ValueError:
        raise SettingsError(f"not a latency: {text!r}: numbers of milliseconds expected") from None
    return Latency(kind, params)


def latency_from_json(value: Any) -> Latency:
    """``{"kind": "fixed", "ms": 300}`` (or the string form) into a :class:`Latency`."""
    if isinstance(value, str):
        return parse_latency(value)
    if not isinstance(value, Mapping):
        raise SettingsError('latency: expected an object like {"kind": "fixed", "ms": 300}')
    kind = value.get("kind")
    if not isinstance(kind, str) or kind not in FIELDS:
        raise SettingsError(
            f"latency.kind: expected one of {', '.join(FIELDS)}, got {repr(kind)[:40]}"
        )
    names = FIELDS[kind]
    unknown = sorted(set(value) - {"kind", *names})
    if unknown:
        raise SettingsError(f"latency.{unknown[0]}: unknown field for kind {kind!r}")
    params = []
    for name in names:
        x = value.get(name)
        if isinstance(x, bool) or not isinstance(x, int | float):
            raise SettingsError(f"latency.{name}: expected a number of milliseconds, got {x!r}")
        params.append(float(x))
    return Latency(kind, tuple(params))


def _rate(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise SettingsError(f"{field}: expected a number within [0, 1], got {value!r}")
    return float(value)


def _cpu(value: Any, field: str) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not (math.isfinite(value) and 0 <= value <= 10_000):
        raise SettingsError(f"{field}: expected milliseconds within 0..10000, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class Behaviour:
    """The knobs of one worker; replaced whole on every change."""

    latency: Latency = Latency()
    error_rate: float = 0.0
    cpu_ms: float = 0.0

    def __post_init__(self) -> None:
        _rate(self.error_rate, "error_rate")
        _cpu(self.cpu_ms, "cpu_ms")

    def to_json(self) -> dict[str, Any]:
        return {
            "latency": self.latency.to_json(),
            "latency_spec": self.latency.spec(),
            "error_rate": self.error_rate,
            "cpu_ms": self.cpu_ms,
        }

    def updated(self, change: Any) -> Behaviour:
        """A partial update from ``PUT /behaviour`` JSON; errors name the field."""
        if not isinstance(change, Mapping):
            raise SettingsError('body: expected a JSON object like {"error_rate": 0.1}')
        unknown = sorted(set(change) - {"latency", "error_rate", "cpu_ms"})
        if unknown:
            raise SettingsError(f"{unknown[0]}: unknown field (latency, error_rate, cpu_ms)")
        new = self
        if "latency" in change:
            new = replace(new, latency=latency_from_json(change["latency"]))
        if "error_rate" in change:
            new = replace(new, error_rate=_rate(change["error_rate"], "error_rate"))
        if "cpu_ms" in change:
            new = replace(new, cpu_ms=_cpu(change["cpu_ms"], "cpu_ms"))
        return new


def burn_cpu(ms: float) -> None:
    """Keep the CPU busy for ``ms`` milliseconds (blocks the loop on purpose: real work does)."""
    if ms <= 0:
        return
    end = time.perf_counter() + ms / 1000.0
    x = 0
    while time.perf_counter() < end:
        for i in range(200):
            x ^= i * i
