"""Envelopes: round trips (hypothesis), upstream's quirks, clear errors on garbage."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.errors import RpcProtocolError
from lab.grenache import wire

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)  # fmt: skip
names = st.text(min_size=1)


@given(rid=names, key=names, payload=json_values, compress=st.booleans())
def test_request_round_trip(rid: str, key: str, payload: Any, compress: bool) -> None:
    body, headers = wire.encode_request(rid, key, payload, compress)
    req = wire.decode_request(body, headers)
    assert (req.rid, req.key, req.payload, req.compressed) == (rid, key, payload, compress)


@given(rid=names, error=st.none() | st.text(min_size=1), data=json_values, compress=st.booleans())
def test_reply_round_trip(rid: str, error: str | None, data: Any, compress: bool) -> None:
    reply = wire.decode_reply(wire.encode_reply(rid, error, data, compress), compress)
    assert (reply.rid, reply.error, reply.data) == (rid, error, data)


@given(body=st.binary(max_size=200), gzip_header=st.booleans())
def test_decode_request_never_raises_anything_but_protocol_errors(
    body: bytes, gzip_header: bool
) -> None:
    headers = {"grc-compress": "gzip" if gzip_header else "none"}
    try:
        wire.decode_request(body, headers)
    except RpcProtocolError as exc:
        assert str(exc)


def test_request_is_what_node_sends() -> None:
    body, headers = wire.encode_request("r1", "svc", {"a": 1})
    assert json.loads(body) == ["r1", "svc", {"a": 1}]
    assert headers == {"grc-compress": "none"}
    gz, headers = wire.encode_request("r1", "svc", None, compress=True)
    assert json.loads(gzip.decompress(gz)) == ["r1", "svc", None]
    assert headers == {"grc-compress": "gzip"}


def test_gr_header_overrides_rid_and_key_where_truthy() -> None:
    body = json.dumps(["body-rid", "body-key", 5]).encode()
    req = wire.decode_request(body, {"_gr": '["hdr-rid", "hdr-key"]'})
    assert (req.rid, req.key, req.payload) == ("hdr-rid", "hdr-key", 5)
    req = wire.decode_request(body, {"_GR": '[null, "hdr-key"]'})
    assert (req.rid, req.key) == ("body-rid", "hdr-key")


def test_bad_gr_header_is_named() -> None:
    with pytest.raises(RpcProtocolError, match="_gr"):
        wire.decode_request(b'["r","k",1]', {"_gr": "{nope"})


def test_gzip_header_with_plain_body_is_parsed_as_is() -> None:
    req = wire.decode_request(b'["r","k",1]', {"grc-compress": "gzip"})
    assert req.payload == 1 and req.compressed


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"", "empty"),
        (b"{not json", "not JSON"),
        (b'{"rid": 1}', "array"),
        (b'["only-rid"]', "array"),
        (b'[1, "k", null]', "rid"),
        (b'["r", "", null]', "key"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_garbage_requests_get_clear_errors(body: bytes, match: str) -> None:
    with pytest.raises(RpcProtocolError, match=match):
        wire.decode_request(body, {})


@pytest.mark.parametrize(
    ("body", "compressed"),
    [(b"", False), (b"nope", False), (b'{"a": 1}', False), (b"[]", False), (b"plain", True)],
)
def test_garbage_replies_are_reply_empty(body: bytes, compressed: bool) -> None:
    with pytest.raises(RpcProtocolError, match="ERR_REPLY"):
        wire.decode_reply(body, compressed)


@pytest.mark.parametrize(
    ("slot", "error"),
    [(None, None), ("", None), (False, None), (0, None), ("ERR_X", "ERR_X"), (7, "7")],
)
def test_error_slot_follows_javascript_truthiness(slot: Any, error: str | None) -> None:
    reply = wire.decode_reply(json.dumps(["r", slot, 1]).encode())
    assert reply.error == error


def test_deeply_nested_json_is_a_protocol_error() -> None:
    with pytest.raises(RpcProtocolError):
        wire.decode_request(b"[" * 100_000 + b"]" * 100_000, {})


def test_a_gzip_bomb_is_refused_before_it_inflates() -> None:
    """16 KiB of gzip that would inflate past the bound (and 1 MiB of it, to 1 GiB)."""
    bomb = gzip.compress(b"\0" * (wire.MAX_INFLATED + 1), compresslevel=9)
    assert len(bomb) < 64 * 1024
    body, _ = wire.encode_request("r", "k", None, compress=False)
    with pytest.raises(RpcProtocolError, match="inflates to more than"):
        wire.decode_request(bomb, {"grc-compress": "gzip"})
    ok = gzip.compress(body)
    assert wire.decode_request(ok, {"grc-compress": "gzip"}).key == "k"
    cut = ok[: len(ok) // 2]  # a truncated stream is parsed as sent, as before
    with pytest.raises(RpcProtocolError, match="not JSON"):
        wire.decode_request(cut, {"grc-compress": "gzip"})
