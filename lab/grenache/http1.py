"""HTTP/1.1 keep-alive connections for the RPC client: one POST in flight per connection.

Why not aiohttp's ClientSession here: the load generator's profile (py-spy, 32 requests
in flight against one worker) spent ~45 % of the client's CPU in ClientSession's
per-request machinery (request and response objects, header multidicts, cookie and
trace hooks, payload and stream-reader layers), more than in the sockets themselves.
A Grenache RPC needs none of it: one POST of a small JSON body to ``/`` and one reply
(and, for Prequal's probes, one GET of a worker's load).
This module does only that, on an :class:`asyncio.Protocol` per connection with
`httptools <https://github.com/MagicStack/httptools>`_ (llhttp, the parser of Node.js)
parsing the replies: Content-Length, chunked and close-delimited bodies, keep-alive
from the reply's headers; of the headers, only the lab's ``X-Lab-*`` load report is kept
(C3 reads it; :mod:`lab.grenache.load`). Idle connections are reused per peer (LIFO: the warmest
first); a connection whose request failed, was cancelled or timed out is closed, never
reused, since its reply may still arrive.

Errors are builtin ``OSError``/``ConnectionError`` (and :class:`ProtocolViolation` for a
reply that is not HTTP); :mod:`lab.grenache.transport` maps them to Grenache's errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import NamedTuple, cast

import httptools

LAB_HEADER_PREFIX = b"x-lab-"


class Reply(NamedTuple):
    """A whole reply: its status, its body, and its ``X-Lab-*`` headers (title-cased)."""

    status: int
    body: bytes
    lab_headers: dict[str, str]


class ProtocolViolation(ConnectionError):
    """The peer answered something that is not an HTTP/1.x reply."""


class _Connection(asyncio.Protocol):
    """One TCP connection; :meth:`post` sends a request and waits for its whole reply."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._body: list[bytes] = []
        self._lab_headers: dict[str, str] = {}
        self._waiter: asyncio.Future[Reply] | None = None
        self._keep_alive = True
        self._lost: Exception | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport; they quack alike
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolViolation("the peer switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(ProtocolViolation(f"not an HTTP reply: {exc}"))

    def eof_received(self) -> bool | None:
        return False  # close our side too: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if exc is None and self._body and not self._parser.should_keep_alive():
                # a reply delimited by the close: what came is the whole body
                waiter.set_result(self._reply())
            else:
                waiter.set_exception(
                    ConnectionResetError("the peer closed the connection before replying")
                    if exc is None
                    else exc
                )

    # -- httptools callbacks ---------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        if name[:6].lower() == LAB_HEADER_PREFIX:
            self._lab_headers[name.decode("latin-1").title()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._keep_alive = self._parser.should_keep_alive()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(self._reply())

    def _reply(self) -> Reply:
        return Reply(self._parser.get_status_code(), b"".join(self._body), self._lab_headers)

    # -- use ------------------------------------------------------------------------
    def _fail(self, exc: Exception) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def send(self, request: bytes) -> Reply:
        """Send one whole request (head and body); its whole reply."""
        assert self.transport is not None
        self._body = []
        if self._lab_headers:
            self._lab_headers = {}
        self._keep_alive = True
        waiter: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        self.transport.write(request)
        try:
            return await waiter
        finally:
            self._waiter = None

    @property
    def reusable(self) -> bool:
        return self._keep_alive and not self.closed


_UNBOUNDED = contextlib.nullcontext()


class ConnectionPool:
    """Keep-alive connections per ``(host, port)``: at most ``limit_per_host`` each, and at
    most ``limit`` busy in all (``None``: no bound beyond the per-host one)."""

    def __init__(
        self,
        *,
        limit: int | None = None,
        limit_per_host: int = 256,
        keepalive_timeout: float = 15.0,
    ) -> None:
        self._total = None if limit is None else asyncio.Semaphore(limit)
        self._limit = limit_per_host
        self._keepalive = keepalive_timeout
        self._idle: dict[tuple[str, int], deque[_Connection]] = {}
        self._slots: dict[tuple[str, int], asyncio.Semaphore] = {}
        self._all: set[_Connection] = set()

    async def _connect(self, host: str, port: int) -> _Connection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Connection, host, port)
        self._all.add(conn)
        return conn

    def _take_idle(self, key: tuple[str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        if not idle:
            return None
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self._keepalive:
                return conn
            self._drop(conn)
        return None

    def _drop(self, conn: _Connection) -> None:
        conn.close()
        self._all.discard(conn)

    async def send(self, host: str, port: int, request: bytes) -> Reply:
        """Send ``request`` on an idle or new connection to ``host:port``; its reply.

        Cancelled (a deadline) or failed, the connection is closed: its reply may still
        come and must not be read as the next request's.
        """
        key = (host, port)
        slots = self._slots.get(key)
        if slots is None:
            slots = self._slots[key] = asyncio.Semaphore(self._limit)
        async with slots, self._total or _UNBOUNDED:
            conn = self._take_idle(key) or await self._connect(host, port)
            try:
                reply = await conn.send(request)
            except BaseException:
                self._drop(conn)
                raise
            if conn.reusable:
                conn.idle_since = time.monotonic()
                self._idle.setdefault(key, deque()).append(conn)
            else:
                self._drop(conn)
            return reply

    def close(self) -> None:
        """Close every connection, idle or busy."""
        for conn in list(self._all):
            conn.close()
        self._all.clear()
        self._idle.clear()
