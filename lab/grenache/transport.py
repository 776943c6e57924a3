"""The HTTP RPC transport's client side: pooled keep-alive connections, Grenache errors.

This sits on the load generator's hot path, so it does little per request: each peer's
address and request head are parsed and built once, the body is one JSON encode, the
deadline one ``asyncio.timeout``, and the bytes go out in one write on a connection of
:mod:`lab.grenache.http1` (a lean HTTP/1.1 client: aiohttp's ClientSession cost more CPU
per request than the sockets did; see that module). Replies are parsed by
:mod:`lab.grenache.wire`.

Errors are translated here and nowhere else:

- deadline hit                         -> :class:`RpcTimeout` (``ERR_TIMEOUT``)
- refused / reset / non-2xx status     -> :class:`RpcTransportError` (``ERR_REQUEST_GENERIC``)
- error string in the reply envelope   -> :class:`RpcReplyError` (the string kept as is)
- reply that is not an envelope        -> :class:`RpcProtocolError` (``ERR_REPLY_EMPTY``)

A reply's ``X-Lab-*`` load headers go to ``on_load`` when set; :meth:`HttpTransport.
probe` asks a worker for its load alone (:mod:`lab.grenache.load`).
"""

# ruff: noqa: ASYNC109  (the contract passes per-request timeouts explicitly)
from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from typing import Any

from lab.errors import RpcReplyError, RpcTimeout, RpcTransportError
from lab.grenache import load, wire
from lab.grenache.http1 import ConnectionPool

DEFAULT_LIMIT_PER_HOST = 256
"""Connections per peer: ~200 req/s at tens of ms each needs a few dozen; the headroom
covers a slow peer (a 1 s stall at 200 req/s holds 200 connections)."""


_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant


def peer_address(peer: str) -> tuple[str, int]:
    """``host:port`` -> ``(host, port)`` (clear error naming the peer on garbage)."""
    host, sep, port = peer.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RpcTransportError(f"ERR_REQUEST_GENERIC: not a peer address: {peer!r}")
    return host.strip("[]"), int(port)


def request_head(peer: str, compress: bool) -> bytes:
    """The constant part of a request's head to ``peer`` (Content-Length comes last)."""
    return (
        f"POST / HTTP/1.1\r\nHost: {peer}\r\n"
        f"{wire.COMPRESS_HEADER}: {'gzip' if compress else 'none'}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode("ascii")


class HttpTransport:
    """Sends Grenache RPC requests over HTTP/1.1 keep-alive connections, pooled per peer."""

    def __init__(
        self,
        *,
        limit: int | None = None,
        limit_per_host: int = DEFAULT_LIMIT_PER_HOST,
        keepalive_timeout: float = 15.0,
        rng: random.Random | None = None,
    ) -> None:
        self._pool = ConnectionPool(
            limit=limit, limit_per_host=limit_per_host, keepalive_timeout=keepalive_timeout
        )
        self._peers: dict[tuple[str, bool], tuple[str, int, bytes]] = {}
        self._rng = rng or random.Random()
        self.on_load: Callable[[str, load.LoadReport], None] | None = None
        """Told the load report of every reply that carries one (C3's feedback)."""

    def _peer(self, peer: str, compress: bool) -> tuple[str, int, bytes]:
        known = self._peers.get((peer, compress))
        if known is None:
            host, port = peer_address(peer)
            known = self._peers[(peer, compress)] = (host, port, request_head(peer, compress))
        return known

    def _rid(self) -> str:
        """A random (version 4) UUID, as Grenache's rids are; no syscall, no UUID object."""
        h = "%032x" % (self._rng.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    async def request(
        self, peer: str, key: str, payload: Any, *, timeout: float, compress: bool = False
    ) -> Any:
        """One RPC to ``peer`` (``host:port``) for service ``key``; the reply's data."""
        if timeout <= 0:
            raise RpcTimeout(f"ERR_TIMEOUT: no time left for {peer}")
        host, port, head = self._peer(peer, compress)
        body, _ = wire.encode_request(self._rid(), key, payload, compress)
        message = b"%s%d\r\n\r\n%s" % (head, len(body), body)
        try:
            async with asyncio.timeout(timeout):
                status, raw, lab_headers = await self._pool.send(host, port, message)
        except TimeoutError:
            raise RpcTimeout(f"ERR_TIMEOUT: {peer} after {timeout:.3f}s") from None
        except OSError as exc:
            raise RpcTransportError(
                f"ERR_REQUEST_GENERIC: {peer}: {type(exc).__name__}: {exc}"
            ) from exc
        if lab_headers and self.on_load is not None:
            report = load.from_headers(lab_headers)
            if report is not None:
                self.on_load(peer, report)
        if not 200 <= status < 300:
            text = raw[:200].decode("utf-8", "replace")
            raise RpcTransportError(f"ERR_REQUEST_GENERIC: {peer}: HTTP {status}: {text}")
        reply = wire.decode_reply(raw, compress)
        if reply.error is not None:
            raise RpcReplyError(reply.error)
        return reply.data

    async def probe(self, peer: str, *, timeout: float) -> load.LoadReport:
        """``GET /load`` of ``peer``: its load report (Prequal's probe)."""
        host, port = self._peer(peer, False)[:2]
        message = f"GET {load.PROBE_PATH} HTTP/1.1\r\nHost: {peer}\r\n\r\n".encode("ascii")
        try:
            async with asyncio.timeout(timeout):
                status, raw, _ = await self._pool.send(host, port, message)
        except TimeoutError:
            raise RpcTimeout(f"ERR_TIMEOUT: probe of {peer} after {timeout:.3f}s") from None
        except OSError as exc:
            raise RpcTransportError(
                f"ERR_REQUEST_GENERIC: probe of {peer}: {type(exc).__name__}: {exc}"
            ) from exc
        report = None
        if status == 200:
            try:
                report = load.from_json(json.loads(raw))
            except ValueError:
                report = None
        if report is None:
            raise RpcTransportError(f"ERR_REQUEST_GENERIC: probe of {peer}: HTTP {status}")
        return report

    async def aclose(self) -> None:
        """Close every connection; safe to call twice."""
        self._pool.close()
        await asyncio.sleep(0)  # let the transports' close callbacks run

    async def __aenter__(self) -> HttpTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
