"""The HTTP RPC transport's client side: one pooled aiohttp session, Grenache errors.

This sits on the load generator's hot path, so it does little per request: peer URLs
are built once and cached, headers are constants, the deadline is one
``asyncio.timeout`` (no per-request ``ClientTimeout`` objects, no global default),
replies are read as bytes and parsed by :mod:`lab.grenache.wire`.

Errors are translated here and nowhere else (aiohttp never leaks upward):

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
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
from yarl import URL

from lab.errors import RpcReplyError, RpcTimeout, RpcTransportError
from lab.grenache import load, wire

DEFAULT_LIMIT = 512
"""Pooled connections in total: ~200 req/s at tens of ms each needs a few dozen; the
headroom covers slow peers (a 1 s stall at 200 req/s holds 200 connections)."""

DEFAULT_LIMIT_PER_HOST = 256

_SKIP_HEADERS = ("User-Agent", "Accept-Encoding", "Accept", "Content-Type")


def peer_url(peer: str) -> URL:
    """``host:port`` -> ``http://host:port/`` (clear error naming the peer on garbage)."""
    host, sep, port = peer.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RpcTransportError(f"ERR_REQUEST_GENERIC: not a peer address: {peer!r}")
    return URL.build(scheme="http", host=host.strip("[]"), port=int(port), path="/")


class HttpTransport:
    """Sends Grenache RPC requests over HTTP with one shared connection pool."""

    def __init__(
        self,
        *,
        limit: int = DEFAULT_LIMIT,
        limit_per_host: int = DEFAULT_LIMIT_PER_HOST,
        keepalive_timeout: float = 15.0,
    ) -> None:
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._keepalive = keepalive_timeout
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, URL] = {}
        self._headers_plain = {wire.COMPRESS_HEADER: "none", "Content-Type": "application/json"}
        self._headers_gzip = {wire.COMPRESS_HEADER: "gzip", "Content-Type": "application/json"}
        self.on_load: Callable[[str, load.LoadReport], None] | None = None
        """Told the load report of every reply that carries one (C3's feedback)."""

    def _open(self) -> aiohttp.ClientSession:
        """The session, created lazily so it binds to the running loop."""
        connector = aiohttp.TCPConnector(
            limit=self._limit,
            limit_per_host=self._limit_per_host,
            keepalive_timeout=self._keepalive,
            ttl_dns_cache=60,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None),  # deadlines are per request
            auto_decompress=False,  # Grenache gzips the body without Content-Encoding
            skip_auto_headers=_SKIP_HEADERS,
            raise_for_status=False,
        )
        return self._session

    def _url(self, peer: str) -> URL:
        url = self._urls.get(peer)
        if url is None:
            url = self._urls[peer] = peer_url(peer)
        return url

    async def request(
        self, peer: str, key: str, payload: Any, *, timeout: float, compress: bool = False
    ) -> Any:
        """One RPC to ``peer`` (``host:port``) for service ``key``; the reply's data."""
        if timeout <= 0:
            raise RpcTimeout(f"ERR_TIMEOUT: no time left for {peer}")
        session = self._session or self._open()
        url = self._url(peer)
        body, _ = wire.encode_request(str(uuid.uuid4()), key, payload, compress)
        headers = self._headers_gzip if compress else self._headers_plain
        try:
            async with asyncio.timeout(timeout):
                async with session.post(url, data=body, headers=headers) as resp:
                    raw = await resp.read()
                    status = resp.status
                    if self.on_load is not None and load.HEADER_IN_FLIGHT in resp.headers:
                        report = load.from_headers(resp.headers)
                        if report is not None:
                            self.on_load(peer, report)
        except TimeoutError:
            raise RpcTimeout(f"ERR_TIMEOUT: {peer} after {timeout:.3f}s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise RpcTransportError(
                f"ERR_REQUEST_GENERIC: {peer}: {type(exc).__name__}: {exc}"
            ) from exc
        if not 200 <= status < 300:
            text = raw[:200].decode("utf-8", "replace")
            raise RpcTransportError(f"ERR_REQUEST_GENERIC: {peer}: HTTP {status}: {text}")
        reply = wire.decode_reply(raw, compress)
        if reply.error is not None:
            raise RpcReplyError(reply.error)
        return reply.data

    async def probe(self, peer: str, *, timeout: float) -> load.LoadReport:
        """``GET /load`` of ``peer``: its load report (Prequal's probe)."""
        session = self._session or self._open()
        url = self._url(peer).with_path(load.PROBE_PATH)
        try:
            async with asyncio.timeout(timeout):
                async with session.get(url) as resp:
                    raw = await resp.read()
                    status = resp.status
        except TimeoutError:
            raise RpcTimeout(f"ERR_TIMEOUT: probe of {peer} after {timeout:.3f}s") from None
        except (aiohttp.ClientError, OSError) as exc:
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
        """Close the pool; safe to call twice."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def __aenter__(self) -> HttpTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
