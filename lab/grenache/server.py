"""The HTTP RPC transport's server side: Grenache envelopes in, replies out.

Built on aiohttp's low-level server (no router or middleware: every request on the one
path is an RPC). Where we improve on upstream (grenache-nodejs-http 1.0.2):

- any method but POST gets 405, a body over ``max_body`` gets 413, and garbage gets 400
  ``[null, "ERR_REQUEST_PARSE", null]`` (upstream never answers such a request);
- a bad ``_gr`` header gets 400 ``[null, "ERR_HEADER_PARSE_GR", null]`` (upstream: 500);
- a request head not complete within 5 s closes the connection, a body not complete
  within 5 s more gets 408 (:mod:`lab.httplimits`; upstream waits forever);
- bodies in flight are bounded (``max_body_in_flight``, 16 MiB: a request holds its body
  about four times over, and a worker has 160 MiB); past it a request gets 429
  ``ERR_BUSY`` before its body is read (upstream reads every body it is sent);
- a handler exception becomes ``[rid, "ERR_...: message", null]`` instead of a crash;
- :meth:`RpcServer.aclose` stops accepting, lets in-flight requests finish (bounded),
  then closes idle keep-alive connections.

With a ``load`` source (the worker's load gate), every reply carries the worker's load
in extra ``X-Lab-*`` headers and ``GET /load`` answers it as JSON, a probe far cheaper
than an RPC (:mod:`lab.grenache.load`); the envelope is unchanged.

Every request is reported to an optional observer (outcome, key, seconds), which is how
the worker feeds its Prometheus metrics without this module knowing about them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any

from aiohttp import web

from lab.errors import RpcProtocolError
from lab.grenache import wire
from lab.grenache.load import PROBE_PATH, LoadReport
from lab.httplimits import BODY_TIMEOUT_S, server_options

log = logging.getLogger(__name__)

MiB = 1024 * 1024
MAX_BODY_IN_FLIGHT = 16 * MiB

Handler = Callable[[wire.Request], Awaitable[Any]]
"""Gets a decoded request, returns the reply data; an exception becomes an error reply."""


class Outcome(StrEnum):
    """How the server answered one HTTP request."""

    OK = "ok"
    ERROR = "error"  # the handler raised: an error reply
    BAD_REQUEST = "bad_request"  # unparseable body, bad _gr header, wrong method
    TOO_LARGE = "too_large"


Observer = Callable[[Outcome, str | None, float], None]
"""Called once per request with (outcome, service key or None, seconds spent)."""

_JSON = "application/json"


def error_message(exc: BaseException) -> str:
    """A Grenache error string for a handler exception: ``ERR_...`` kept, else prefixed."""
    text = str(exc) or type(exc).__name__
    return text if text.startswith("ERR_") else f"ERR_HANDLER: {type(exc).__name__}: {text}"


class _TooLarge(Exception):
    pass


class RpcServer:
    """Serves ``handler`` with Grenache's HTTP transport on ``host:port``."""

    def __init__(
        self,
        handler: Handler,
        *,
        host: str = "0.0.0.0",
        port: int = 0,
        max_body: int = MiB,
        observer: Observer | None = None,
        drain_timeout: float = 5.0,
        load: Callable[[], LoadReport] | None = None,
        max_body_in_flight: int = MAX_BODY_IN_FLIGHT,
    ) -> None:
        self._handler = handler
        self._body_budget = max_body_in_flight
        self._body_held = 0
        self.host = host
        self.port = port
        self.max_body = max_body
        self._observer = observer
        self._drain_timeout = drain_timeout
        self._load = load
        self._lowlevel: web.Server | None = None
        self._server: asyncio.Server | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def start(self) -> RpcServer:
        """Bind and listen; ``port=0`` picks a free port (then read :attr:`port`)."""
        loop = asyncio.get_running_loop()
        # No access log: one INFO line per RPC is formatting in the worker's event loop and
        # a line through Docker's log pipe for every request, noise in every latency figure.
        self._lowlevel = web.Server(
            self._serve, handler_cancellation=True, access_log=None, **server_options()
        )
        self._server = await loop.create_server(
            self._lowlevel, self.host, self.port, reuse_address=True, backlog=1024
        )
        sock = self._server.sockets[0]
        self.port = int(sock.getsockname()[1])
        return self

    async def aclose(self) -> None:
        """Stop accepting, drain in-flight requests (bounded), close every connection."""
        if self._server is None:
            return
        self._closing = True
        self._server.close()
        try:
            await asyncio.wait_for(self._idle.wait(), self._drain_timeout)
        except TimeoutError:
            log.warning("RPC server closed with %d requests still in flight", self._in_flight)
        if self._lowlevel is not None:
            await self._lowlevel.shutdown(0.5)
        await self._server.wait_closed()
        self._server = None
        self._lowlevel = None

    async def __aenter__(self) -> RpcServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- one request ---------------------------------------------------------------------

    async def _serve(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        self._in_flight += 1
        self._idle.clear()
        key: str | None = None
        outcome = Outcome.OK
        held = 0
        try:
            if request.method == "GET" and request.path == PROBE_PATH and self._load:
                return web.json_response(self._load().to_json())
            if request.method != "POST":
                outcome = Outcome.BAD_REQUEST
                return _fail(405, "ERR_REQUEST_METHOD", close=False)
            # Reserve the body's bytes (the limit when undeclared) before reading any.
            length = request.content_length
            need = self.max_body if length is None else length
            if need > self.max_body:
                need = 0  # refused unread (413) below: nothing to hold
            if self._body_held and self._body_held + need > self._body_budget:
                outcome = Outcome.BAD_REQUEST
                return _fail(429, f"ERR_BUSY: over {self._body_budget} bytes of bodies in flight")
            held = need
            self._body_held += held
            try:
                async with asyncio.timeout(BODY_TIMEOUT_S):
                    body = await self._read(request)
            except TimeoutError:
                outcome = Outcome.BAD_REQUEST
                return _fail(408, f"ERR_REQUEST_TIMEOUT: body not received in {BODY_TIMEOUT_S:g}s")
            except _TooLarge:
                outcome = Outcome.TOO_LARGE
                return _fail(413, f"ERR_REQUEST_TOO_LARGE: body over {self.max_body} bytes")
            except (asyncio.IncompleteReadError, ConnectionError):
                outcome = Outcome.BAD_REQUEST
                return _fail(400, "ERR_REQUEST_PARSE: body cut short")
            try:
                rpc = wire.decode_request(body, request.headers)
            except RpcProtocolError as exc:
                outcome = Outcome.BAD_REQUEST
                code = "ERR_HEADER_PARSE_GR" if "_gr" in str(exc) else "ERR_REQUEST_PARSE"
                return _fail(400, code, close=False)
            key = rpc.key
            try:
                data = await self._handler(rpc)
                reply = wire.encode_reply(rpc.rid, None, data, rpc.compressed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the handler's failure is the caller's error reply
                outcome = Outcome.ERROR
                reply = wire.encode_reply(rpc.rid, error_message(exc), None, rpc.compressed)
            resp = web.Response(body=reply, content_type=_JSON)
            if self._load is not None:
                resp.headers.update(self._load().to_headers())
            if self._closing:
                resp.force_close()
            return resp
        finally:
            self._body_held -= held
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()
            if self._observer is not None:
                self._observer(outcome, key, time.perf_counter() - started)

    async def _read(self, request: web.BaseRequest) -> bytes:
        """The whole body, refusing more than ``max_body`` bytes without reading it all."""
        length = request.content_length
        if length is not None:
            if length > self.max_body:
                raise _TooLarge
            return await request.content.readexactly(length) if length else b""
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = await request.content.readany()
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self.max_body:
                raise _TooLarge
            chunks.append(chunk)


def _fail(status: int, code: str, *, close: bool = True) -> web.Response:
    """An error envelope ``[null, code, null]`` (plain JSON, never gzipped)."""
    resp = web.Response(status=status, body=wire.encode_reply(None, code, None), content_type=_JSON)
    if close:
        resp.force_close()  # the unread rest of the body is not worth draining
    return resp
