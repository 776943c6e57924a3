"""Immutable DHT values: bencode and their SHA1 keys (BEP 44, as upstream's put/get).

Upstream's ``/put`` stores ``v`` under SHA1(bencode(v)); ``"hello world"`` encodes as
``11:hello world`` and gets key ``6d33adc2b6b2c14c3036feefb7fedbca1a880527``. Only what
bencode can say is accepted: strings, integers, lists and objects with string keys.
Floats, booleans and null are refused (upstream's bencode silently turns 1.5 and true
into 1: two different values with one key). A stored value is at most 1000 bytes
encoded, as BEP 44 requires.
"""

from __future__ import annotations

import hashlib
from typing import Any

MAX_VALUE_BYTES = 1000
_MAX_DEPTH = 32


class BencodeError(ValueError):
    """A value cannot be bencoded, or bytes are not bencode."""


def utf8(text: str) -> bytes:
    """UTF-8 as JavaScript's ``Buffer.from(text)`` makes it: lone surrogates become U+FFFD."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        fixed = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return fixed.encode("utf-8")


def encode(value: Any) -> bytes:
    """Bencode ``value`` (str, bytes, int, list, dict with str keys)."""
    out: list[bytes] = []
    _encode(value, out, 0)
    return b"".join(out)


def _encode(value: Any, out: list[bytes], depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise BencodeError("nested too deeply")
    if isinstance(value, bool) or value is None or isinstance(value, float):
        raise BencodeError(f"bencode has no {type(value).__name__} values")
    if isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, str | bytes):
        raw = utf8(value) if isinstance(value, str) else value
        out.append(b"%d:" % len(raw))
        out.append(raw)
    elif isinstance(value, list):
        out.append(b"l")
        for item in value:
            _encode(item, out, depth + 1)
        out.append(b"e")
    elif isinstance(value, dict):
        out.append(b"d")
        items = sorted(((utf8(k) if isinstance(k, str) else k), v) for k, v in value.items())
        for raw_key, item in items:
            if not isinstance(raw_key, bytes):
                raise BencodeError("dictionary keys must be strings")
            out.append(b"%d:" % len(raw_key))
            out.append(raw_key)
            _encode(item, out, depth + 1)
        out.append(b"e")
    else:
        raise BencodeError(f"bencode has no {type(value).__name__} values")


def decode(data: bytes) -> Any:
    """Decode bencode; byte strings come back as text (invalid UTF-8 replaced), as upstream."""
    value, end = _decode(data, 0, 0)
    if end != len(data):
        raise BencodeError("trailing bytes after the value")
    return value


def _decode(data: bytes, i: int, depth: int) -> tuple[Any, int]:
    if depth > _MAX_DEPTH or i >= len(data):
        raise BencodeError("truncated or nested too deeply")
    head = data[i : i + 1]
    if head == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1 : end]), end + 1
    if head == b"l":
        items = []
        i += 1
        while data[i : i + 1] != b"e":
            item, i = _decode(data, i, depth + 1)
            items.append(item)
        return items, i + 1
    if head == b"d":
        obj: dict[str, Any] = {}
        i += 1
        while data[i : i + 1] != b"e":
            key, i = _decode(data, i, depth + 1)
            if not isinstance(key, str):
                raise BencodeError("dictionary keys must be strings")
            obj[key], i = _decode(data, i, depth + 1)
        return obj, i + 1
    if head.isdigit():
        colon = data.index(b":", i)
        size = int(data[i:colon])
        start = colon + 1
        if start + size > len(data):
            raise BencodeError("string runs past the end")
        return data[start : start + size].decode("utf-8", "replace"), start + size
    raise BencodeError(f"unexpected byte {head!r} at {i}")


def immutable_key(encoded: bytes) -> bytes:
    """The 20-byte key of an encoded immutable value: SHA1 of its bencoding."""
    return hashlib.sha1(encoded).digest()
