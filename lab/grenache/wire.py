"""Grenache HTTP transport envelopes: ``[rid, key, payload]`` in, ``[rid, error, data]`` out.

Pure functions, no I/O, so the server, the transport and the fuzz tests share one parser.
Facts (grenache-nodejs-http 1.0.2): the body is JSON, gzipped when the request header
``grc-compress`` contains ``gzip``; the reply is gzipped exactly when the request was,
with no ``Content-Encoding`` header. A ``_gr`` header (JSON ``[rid, key]``) overrides the
body's rid and key where its entries are truthy. A body that claims gzip but does not
inflate is parsed as it is (upstream does the same).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lab.errors import RpcProtocolError

COMPRESS_HEADER = "grc-compress"
STREAM_HEADER = "_gr"

_dumps = json.JSONEncoder(separators=(",", ":")).encode  # ASCII: lone surrogates survive
_loads = json.loads


@dataclass(frozen=True, slots=True)
class Request:
    """One decoded RPC request; ``compressed`` says how the reply must be encoded."""

    rid: Any
    key: Any
    payload: Any
    compressed: bool = False


@dataclass(frozen=True, slots=True)
class Reply:
    """One decoded RPC reply: ``error`` is Grenache's error string or None."""

    rid: Any
    error: str | None
    data: Any


def dumps(value: Any) -> bytes:
    """Compact JSON as UTF-8 (what Node's ``JSON.stringify`` sends)."""
    try:
        return _dumps(value).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise RpcProtocolError(f"value is not JSON-serialisable: {exc}") from exc


MAX_INFLATED = 16 * 1024 * 1024
"""Most bytes a gzipped body may inflate to: a 1 MiB body of zeros would otherwise
inflate to 1 GiB inside a 160 MiB worker."""


def _gunzip(body: bytes) -> bytes:
    """Inflate a gzip body; on failure keep the body as is (upstream behaviour)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, MAX_INFLATED)
    except zlib.error:
        return body
    if inflater.unconsumed_tail:
        raise RpcProtocolError(f"body inflates to more than {MAX_INFLATED} bytes")
    return out if inflater.eof else body  # a truncated stream: as zlib.decompress did


def _parse(body: bytes, what: str) -> Any:
    if not body:
        raise RpcProtocolError(f"{what}: empty body")
    try:
        return _loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RpcProtocolError(f"{what}: not JSON ({exc})") from None
    except RecursionError:
        raise RpcProtocolError(f"{what}: JSON nested too deeply") from None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None and not hasattr(headers, "getall"):  # a plain dict: match any case
        for k, v in headers.items():
            if k.lower() == name:
                return v
    return value


def is_compressed(headers: Mapping[str, str]) -> bool:
    """True when the request asks for gzip (``grc-compress`` contains ``gzip``)."""
    return "gzip" in (_header(headers, COMPRESS_HEADER) or "")


def encode_request(
    rid: str, key: str, payload: Any, compress: bool = False
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one request, as the Node client sends them."""
    body = dumps([rid, key, payload])
    if compress:
        body = gzip.compress(body, compresslevel=6, mtime=0)
    return body, {COMPRESS_HEADER: "gzip" if compress else "none"}


def parse_stream_header(value: str) -> tuple[Any, Any]:
    """The ``_gr`` header: JSON ``[rid, key]`` (either may be null)."""
    try:
        info = _loads(value)
    except (ValueError, RecursionError):
        raise RpcProtocolError("header _gr: not JSON (expected [rid, key])") from None
    if not isinstance(info, list):
        raise RpcProtocolError("header _gr: expected a JSON array [rid, key]")
    rid = info[0] if len(info) > 0 else None
    key = info[1] if len(info) > 1 else None
    return rid, key


def decode_request(body: bytes, headers: Mapping[str, str]) -> Request:
    """Parse a request body (and ``_gr``/``grc-compress`` headers) into a :class:`Request`.

    Raises :class:`RpcProtocolError` naming what is wrong; the server answers it with
    ``ERR_REQUEST_PARSE`` (upstream leaves such a request without any answer).
    """
    compressed = is_compressed(headers)
    info: tuple[Any, Any] | None = None
    gr = _header(headers, STREAM_HEADER)
    if gr is not None:
        info = parse_stream_header(gr)
    raw = _gunzip(body) if compressed else body
    data = _parse(raw, "request")
    if not isinstance(data, list) or len(data) < 2:
        raise RpcProtocolError("request: expected a JSON array [rid, key, payload]")
    rid, key = data[0], data[1]
    payload = data[2] if len(data) > 2 else None
    if info is not None:
        rid = info[0] or rid
        key = info[1] or key
    if not isinstance(rid, str) or not rid:
        raise RpcProtocolError("request: rid must be a non-empty string")
    if not isinstance(key, str) or not key:
        raise RpcProtocolError("request: key must be a non-empty string")
    return Request(rid, key, payload, compressed)


def encode_reply(rid: Any, error: str | None, data: Any, compress: bool = False) -> bytes:
    """``[rid, error, data]`` as JSON, gzipped when the request was."""
    body = dumps([rid, error, data])
    if compress:
        body = gzip.compress(body, compresslevel=6, mtime=0)
    return body


def decode_reply(body: bytes, compressed: bool = False) -> Reply:
    """Parse a reply body; garbage raises :class:`RpcProtocolError` (``ERR_REPLY_EMPTY``)."""
    if compressed:
        try:
            body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
        except zlib.error:
            raise RpcProtocolError("ERR_REPLY_ENCODING_COMPRESSION: reply is not gzip") from None
    data = _parse(body, "ERR_REPLY_EMPTY: reply")
    if not isinstance(data, list) or len(data) < 1:
        raise RpcProtocolError("ERR_REPLY_EMPTY: reply is not a JSON array [rid, error, data]")
    rid = data[0]
    error = data[1] if len(data) > 1 else None
    result = data[2] if len(data) > 2 else None
    if not _js_truthy(error):
        return Reply(rid, None, result)
    return Reply(rid, error if isinstance(error, str) else _dumps(error), result)


def _js_truthy(value: Any) -> bool:
    """JavaScript truthiness: upstream treats any truthy error slot as an error."""
    if value is None or value is False or value == "":
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == value and value != 0  # NaN and 0 are falsy
    return True
