"""Immutable values: bencode and SHA1 keys match upstream's put."""

from __future__ import annotations

import pytest

from lab.grape import bencode


@pytest.mark.parametrize(
    ("value", "encoded", "key"),
    [  # keys computed with the npm bencode 2.0.3 that grenache-grape 1.0.0 uses
        ("hello world", b"11:hello world", "6d33adc2b6b2c14c3036feefb7fedbca1a880527"),
        (5, b"i5e", "fd512d5838b7f0c9fa46debf0d0f0d0d28ea81a1"),
        (-3, b"i-3e", "fdaa9c25a3de9418edf412cbf895c7b6bdbd77db"),
        ([1, "a"], b"li1e1:ae", "868f2ca4a6a842d726b58ff6ee9b2cc54819f8f7"),
        ({"b": 1, "a": "x"}, b"d1:a1:x1:bi1ee", "ff1fc5948c6876cde2c2a60a32628dce1909350d"),
        ("é", "2:é".encode(), "77b3bb16d627274ef5acae4f47ccfb17179c8fa9"),
    ],
)
def test_encoding_and_keys_match_upstream(value: object, encoded: bytes, key: str) -> None:
    assert bencode.encode(value) == encoded
    assert bencode.immutable_key(encoded).hex() == key
    assert bencode.decode(encoded) == value


@pytest.mark.parametrize("value", [1.5, True, None, {1: "a"}, object()])
def test_values_bencode_cannot_say_are_refused(value: object) -> None:
    with pytest.raises(bencode.BencodeError):
        bencode.encode(value)


def test_lone_surrogates_become_replacement_characters_as_in_javascript() -> None:
    assert bencode.utf8("a\ud800b") == "a\ufffdb".encode()


@pytest.mark.parametrize(
    "data", [b"", b"i1", b"5:ab", b"x", b"l", b"d1:ai1e", b"i1ei2e", b"di1ei1ee"]
)
def test_garbage_does_not_decode(data: bytes) -> None:
    with pytest.raises(ValueError):
        bencode.decode(data)


def test_nesting_is_bounded() -> None:
    with pytest.raises(bencode.BencodeError):
        bencode.encode([[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]])
    with pytest.raises(ValueError):
        bencode.decode(b"l" * 100 + b"e" * 100)
