"""Parse JSON from untrusted callers within explicit limits: size, nesting depth, numbers.

Python's ``json`` is not safe to hand a stranger's bytes as it is: it accepts ``NaN``,
``Infinity`` and ``-Infinity`` (not JSON), turns ``1e999`` into ``inf``, and recurses
once per nesting level, so 10 KB nested 5,000 deep raises ``RecursionError``. Every
control surface (client, worker) and the gossip socket parse through :func:`loads`, so
each refuses the same inputs with the same sentence, before any value reaches a handler:

- more than ``max_bytes`` bytes: refused unread;
- nested deeper than ``max_depth`` (default :data:`MAX_DEPTH`): refused before parsing,
  by counting brackets outside strings (no recursion, no objects built);
- ``NaN``/``Infinity`` or a float that overflows to infinity: refused;
- an integer of more than :data:`MAX_INT_DIGITS` digits: refused (CPython's own limit
  is 4,300 digits, and converting such a number costs quadratic time).

The grape keeps its own envelope parser (upstream Grenache's error codes) but uses
:func:`nesting_depth` for the same depth rule.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 32
"""Deeper than any body the lab's APIs take (their deepest is 3); shallow enough that a
walk over the parsed value can never come near Python's recursion limit."""

MAX_INT_DIGITS = 64
"""Digits an integer may have: 2**63 has 19; 64 leaves room and stays cheap to convert."""

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")
_LONG_INT = re.compile(rb"-?\d{%d,}" % (MAX_INT_DIGITS + 1))


class JsonRejected(ValueError):
    """The bytes are not JSON within the limits; the message says which limit."""


def nesting_depth(raw: bytes) -> int:
    """How deep brackets nest in ``raw`` (strings skipped); no parsing, no recursion."""
    depth = deepest = 0
    for m in _BRACKET.finditer(_STRING.sub(b'""', raw)):
        if m.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def deeper_than(raw: bytes, limit: int) -> bool:
    """Whether brackets nest more than ``limit`` deep in ``raw``.

    Nesting can be no deeper than the count of opening brackets, so a body with at most
    ``limit`` of them (every well-formed request here) is passed without a scan.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    return nesting_depth(raw) > limit


def _no_constant(name: str) -> Any:
    raise JsonRejected(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise JsonRejected(f"number {text[:32]} overflows a double")
    return value


def loads(raw: bytes | str, *, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value in ``raw``, or :class:`JsonRejected` naming the limit it broke."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if len(data) > max_bytes:
        raise JsonRejected(f"over {max_bytes} bytes ({len(data)})")
    if deeper_than(data, max_depth):
        raise JsonRejected(f"nested deeper than {max_depth} levels")
    if _LONG_INT.search(_STRING.sub(b'""', data)):
        raise JsonRejected(f"a number has more than {MAX_INT_DIGITS} digits")
    try:
        return json.loads(data, parse_constant=_no_constant, parse_float=_finite_float)
    except JsonRejected:
        raise
    except RecursionError:  # unreachable after the depth check; kept as a last line
        raise JsonRejected(f"nested deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise JsonRejected(f"not JSON: {exc}") from None
