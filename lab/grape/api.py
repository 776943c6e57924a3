"""The grape's HTTP API: Grenache's four endpoints, plus health and metrics.

Matches the upstream grape (see ``docs/grape.md``): every request is ``POST /<endpoint>``
with a JSON body ``{"rid", "data"}`` of any content type; only ``data`` is read. The path
picks the handler the way upstream's lodash ``camelCase`` does (``/Lookup`` and
``/lookup/`` work, ``/lookup?x=1`` does not); an unknown one answers 200 with the JSON
string ``"ERR_REQ_NOTFOUND"``. A body over 8192 bytes answers 413 ``ERR_GRAPE_PAYLOAD_SIZE``;
an empty or unparseable body (or a GET) 500 ``ERR_GRAPE_PAYLOAD_INVALID``, both plain
text. Beyond upstream, a body nested deeper than 32 levels is ``ERR_GRAPE_PAYLOAD_INVALID``
too, and one that does not arrive within 5 s answers 408 ``ERR_GRAPE_PAYLOAD_TIMEOUT``
(:mod:`lab.httplimits`). Application errors are 200 with a JSON string
(``"ERR_GRAPE_LOOKUP"`` ...). Where upstream leaks a raw exception text we answer with one
of those codes instead.

Ours, under ``/_lab/`` so they never collide with a Grenache endpoint: ``GET
/_lab/health`` (JSON) and ``GET /_lab/metrics`` (Prometheus text, a registry per app).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from lab.grape import bencode
from lab.grape.node import GrapeNode, ValueTooLarge
from lab.grape.settings import parse_host
from lab.httplimits import BODY_TIMEOUT_S
from lab.jsonlimits import MAX_DEPTH, deeper_than

log = logging.getLogger(__name__)

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_ASCII_WORD = re.compile(r"[^\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]+")  # lodash reAsciiWord
_HEX_KEY = re.compile(r"^[0-9a-fA-F]{40}$")


class AppError(Exception):
    """An application error: answered 200 with its code as a JSON string."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class GrapeMetrics:
    """The API's Prometheus metrics, in a registry of its own (two apps never mix)."""

    def __init__(self, node: GrapeNode) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "grape_http_requests", "Grape API requests", ["endpoint", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "grape_http_request_seconds", "Grape API request latency", ["endpoint"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )  # fmt: skip
        self._counted: dict[tuple[str, int], Any] = {}
        self._timed: dict[str, Any] = {}
        Gauge("grape_dht_peers", "Nodes in the DHT routing table",
              registry=self.registry).set_function(node.peer_count)  # fmt: skip
        Gauge("grape_announcements", "Announcements held (host:port per service)",
              registry=self.registry).set_function(lambda: len(node.records))  # fmt: skip
        Gauge("grape_services", "Service keys with announcements held",
              registry=self.registry).set_function(node.records.services)  # fmt: skip
        Gauge("grape_dht_dropped", "DHT datagrams ignored (garbage, other cluster)",
              registry=self.registry).set_function(
            lambda: node.protocol.dropped if node.protocol is not None else 0
        )  # fmt: skip

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        counted = self._counted.get((endpoint, status))
        if counted is None:  # labels() locks and builds a key each call; a few pairs exist
            counted = self._counted[endpoint, status] = self.requests.labels(endpoint, str(status))
        counted.inc()
        timed = self._timed.get(endpoint)
        if timed is None:
            timed = self._timed[endpoint] = self.latency.labels(endpoint)
        timed.observe(seconds)


def endpoint_of(raw_path: str) -> str | None:
    """The Grenache endpoint a request path names, as upstream's ``camelCase`` finds it.

    Upstream calls ``handlePeer<UpperFirst(camelCase('-' + path))>``: the path must hold
    exactly one word (separators around it are fine) spelled all lower, all upper or
    capitalised; mixed case splits into several words and names no handler.
    """
    text = raw_path[1:] if raw_path.startswith("/") else raw_path
    words = _ASCII_WORD.findall(text.replace("'", "").replace("\u2019", ""))
    if len(words) != 1:
        return None
    w = words[0]
    if not (w.islower() or w.isupper() or (w[:1].isupper() and w[1:].islower())):
        return None
    name = w.lower()
    return name if name in HANDLERS else None


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AppError("ERR_GRAPE_SERVICE_PORT")
    if isinstance(value, float) and not value.is_integer():
        raise AppError("ERR_GRAPE_SERVICE_PORT")
    port = int(value)
    if not 1 <= port <= 65535:
        raise AppError("ERR_GRAPE_SERVICE_PORT")
    return port


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def recorded_host(explicit: str | None, caller: str | None, advertise: str) -> str:
    """The host recorded for an announce.

    The announcer's explicit host (our extension) wins; else the HTTP caller's address,
    except that a loopback caller of a grape advertised on a routable address is recorded
    as that address (other hosts could not reach the caller's 127.0.0.1).
    """
    if explicit:
        return explicit
    if caller is None:
        return advertise
    if _is_loopback(caller) and not _is_loopback(advertise):
        return advertise
    return caller


async def _announce(node: GrapeNode, caller: str | None, data: Any) -> Any:
    if not isinstance(data, list):
        raise AppError("ERR_GRAPE_ANNOUNCE")
    port = _port(data[1] if len(data) > 1 else None)
    name = data[0] if data else None
    if not isinstance(name, str) or not name:
        raise AppError("ERR_GRAPE_ANNOUNCE")
    explicit: str | None = None
    if len(data) > 2 and isinstance(data[2], dict) and data[2].get("host") is not None:
        try:
            explicit = parse_host(data[2]["host"]) if isinstance(data[2]["host"], str) else None
        except ValueError:
            explicit = None
        if not explicit:
            raise AppError("ERR_GRAPE_ANNOUNCE")
    host = recorded_host(explicit, caller, node.advertise)
    return await node.announce(name, f"{host}:{port}")


async def _lookup(node: GrapeNode, _caller: str | None, data: Any) -> Any:
    if not isinstance(data, str) or not data:
        raise AppError("ERR_GRAPE_LOOKUP")
    return await node.lookup(data)


async def _put(node: GrapeNode, _caller: str | None, data: Any) -> Any:
    if isinstance(data, str):
        value = data
    elif isinstance(data, dict) and "v" in data and not data.get("k"):
        value = data["v"]
    else:
        raise AppError("ERR_GRAPE_PUT")
    try:
        return await node.put(value)
    except ValueTooLarge:
        raise AppError("ERR_GRAPE_PUT_SIZE") from None
    except bencode.BencodeError:
        raise AppError("ERR_GRAPE_PUT") from None


async def _get(node: GrapeNode, _caller: str | None, data: Any) -> Any:
    key = data.get("hash") if isinstance(data, dict) else data
    if not isinstance(key, str) or not _HEX_KEY.match(key):
        raise AppError("ERR_GRAPE_HASH_FORMAT")
    return await node.get(bytes.fromhex(key))


Handler = Callable[[GrapeNode, str | None, Any], Awaitable[Any]]
"""An endpoint: the node, the HTTP caller's address (announce records it), ``data``."""
HANDLERS: dict[str, Handler] = {
    "announce": _announce,
    "lookup": _lookup,
    "put": _put,
    "get": _get,
}


class _Unreadable(Exception):
    """The body could not be read (a broken Content-Encoding, a truncated chunk)."""


class _TooSlow(Exception):
    """The body did not arrive within ``BODY_TIMEOUT_S``."""


async def _read_limited(request: web.BaseRequest, limit: int) -> bytes | None:
    """The body, or None once it passes ``limit`` bytes (declared or actually sent)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    content = request.content
    if content.is_eof():  # the whole body came with the headers: nothing left to wait for
        whole = content.read_nowait()
        return whole if len(whole) <= limit else None
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            while chunk := await request.content.readany():
                size += len(chunk)
                if size > limit:
                    return None
                chunks.append(chunk)
    except TimeoutError:
        raise _TooSlow from None
    except (RequestPayloadError, HttpProcessingError) as exc:
        raise _Unreadable(str(exc)) from exc
    return b"".join(chunks)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
"""One decoder for every request (``json.loads`` with an option builds one per call)."""


def _text(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text)


def _json(value: Any) -> web.Response:
    if value is None:  # upstream answers "undefined": an empty body
        return web.Response(status=200, body=b"")
    return web.Response(
        status=200, body=json.dumps(value).encode(), content_type="application/json"
    )


class GrapeApi:
    """The API of one node as a low-level aiohttp handler (:meth:`server`).

    Why not a ``web.Application``: its router, middleware chain and richer request
    object cost ~25 us a request (measured against ``web.Server`` with the same handler,
    0.39 vs 0.36 ms a keep-alive POST here), a tenth of a lookup that answers from one
    grape. Five fixed paths need no router: two ``GET``s under ``/_lab/``, and everything
    else is a Grenache request, as the catch-all route made it before.
    """

    def __init__(self, node: GrapeNode) -> None:
        self.node = node
        self.metrics = GrapeMetrics(node)

    def server(self, **options: Any) -> web.Server:
        """The handler served, with ``options`` (lab.httplimits) for its connections.

        Bodies are not decompressed, as upstream's raw-body does not: a Content-Encoding
        cannot make the parser answer with its own error text or inflate past the limit.
        """
        return web.Server(self.handle, access_log=None, auto_decompress=False, **options)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method in ("GET", "HEAD"):
            if request.path == "/_lab/health":
                return self.health()
            if request.path == "/_lab/metrics":
                return self.metrics_page()
        return await self.grenache(request)

    async def grenache(self, request: web.BaseRequest) -> web.Response:
        """Every Grenache request: size limit, JSON envelope, then the endpoint's handler."""
        started = time.perf_counter()
        resp, endpoint = await self._answer(request)
        self.metrics.observe(endpoint, resp.status, time.perf_counter() - started)
        return resp

    async def _answer(self, request: web.BaseRequest) -> tuple[web.Response, str]:
        try:
            body = await _read_limited(request, self.node.settings.max_payload)
        except _Unreadable:
            resp = _text(500, "ERR_GRAPE_PAYLOAD_INVALID")
            resp.force_close()  # the rest of the stream cannot be trusted
            return resp, "invalid"
        except _TooSlow:
            resp = _text(408, "ERR_GRAPE_PAYLOAD_TIMEOUT")
            resp.force_close()
            return resp, "timeout"
        if body is None:
            resp = _text(413, "ERR_GRAPE_PAYLOAD_SIZE")
            resp.force_close()  # the unread rest of the body is not worth draining
            return resp, "oversize"
        return await self._dispatch(request, body)

    async def _dispatch(self, request: web.BaseRequest, body: bytes) -> tuple[web.Response, str]:
        if deeper_than(body, MAX_DEPTH):  # before json recurses into it
            return _text(500, "ERR_GRAPE_PAYLOAD_INVALID"), "invalid"
        try:
            msg = _DECODER.decode(body.decode("utf-8", "replace"))
        except (ValueError, RecursionError):
            return _text(500, "ERR_GRAPE_PAYLOAD_INVALID"), "invalid"
        if msg is None:  # upstream crashes reading null.data; we call it what it is
            return _text(500, "ERR_GRAPE_PAYLOAD_INVALID"), "invalid"
        data = msg.get("data") if isinstance(msg, dict) else None
        name = endpoint_of(request.raw_path)
        if name is None:
            return _json("ERR_REQ_NOTFOUND"), "unknown"
        try:
            return _json(await HANDLERS[name](self.node, request.remote, data)), name
        except AppError as exc:
            return _json(exc.code), name
        except Exception:  # never leak an exception's text to a caller
            log.exception("%s failed", name)
            return _json("ERR_GRAPE_GENERIC"), name

    def health(self) -> web.Response:
        node = self.node
        started = time.perf_counter()
        resp = web.json_response(
            {
                "status": "ok",
                "node_id": node.node_id,
                "cluster": node.settings.cluster_id,
                "advertise": node.advertise,
                "dht_port": node.settings.dht_port,
                "dht_peers": node.peer_count(),
                "joined": node.joined,
                "announcements": len(node.records),
                "services": node.records.services(),
            }
        )
        self.metrics.observe("health", 200, time.perf_counter() - started)
        return resp

    def metrics_page(self) -> web.Response:
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})
