"""The bounded JSON parser every control surface and the gossip socket share."""

from __future__ import annotations

import pytest

from lab.jsonlimits import MAX_DEPTH, JsonRejected, loads, nesting_depth


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"[" * 5000 + b"]" * 5000, "nested deeper"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "nested deeper"),
        (b"[" * 10_000, "nested deeper"),  # unbalanced: still refused before parsing
        (b"NaN", "NaN"),
        (b"[Infinity]", "Infinity"),
        (b'{"x":-Infinity}', "Infinity"),
        (b"1e999", "overflows"),
        (b"9" * 5000, "digits"),
        (b"-" + b"9" * 65, "digits"),
        (b"{", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"x" * 20_000, "over 16384 bytes"),
    ],
)
def test_refused(raw: bytes, says: str) -> None:
    with pytest.raises(JsonRejected, match=says):
        loads(raw, max_bytes=16_384)


def test_accepted_values_and_strings_do_not_count_as_nesting() -> None:
    assert loads(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', max_bytes=999)
    assert loads(b'"\\"[[[["', max_bytes=99) == '"[[[['
    assert loads(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, max_bytes=999) is not None
    assert loads(b'{"seed": 9223372036854775807, "x": 1.5e300}', max_bytes=99)["x"] == 1.5e300
    assert loads('{"é": 1}', max_bytes=99) == {"é": 1}


def test_nesting_depth() -> None:
    assert nesting_depth(b"1") == 0
    assert nesting_depth(b'[{"a": [1]}, []]') == 3
    assert nesting_depth(b'["]]]]", [[]]]') == 3
