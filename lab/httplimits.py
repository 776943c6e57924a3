"""Read timeouts every HTTP server of the lab applies (client control, worker, grape).

A slow-header or slow-body client (one byte every few seconds) used to hold a
connection, its buffers and a handler open for 40 s and more. Two rules bound that:

- **headers and idle**: a connection must deliver a complete request head within
  :data:`HEADER_TIMEOUT_S` of opening or of the previous response, else it is closed.
  This is aiohttp's ``keepalive_timeout``: aiohttp arms it when a connection opens and
  after each response, and closes the connection if no whole request head has arrived
  by then (bytes of a partial head do not re-arm it). :func:`server_options` passes it.
- **body**: once the head is in, the whole body must arrive within
  :data:`BODY_TIMEOUT_S`, else the answer is 408 and the connection is closed after at
  most :data:`LINGER_S` more
  (:func:`body_deadline`, a middleware that reads the body before the handler does;
  the RPC server, which has no middleware, reads under the same deadline).

Both are well above what a lab request needs (milliseconds on a loopback or bridge
network) and below the 40 s that let a few dozen slow connections pin a service. Pooled
client connections idle for less than this (``lab.loadgen.limits.CONNECTION_IDLE_S``),
so a server never closes a connection a client is about to reuse.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

HEADER_TIMEOUT_S = 5.0
BODY_TIMEOUT_S = 5.0
LINGER_S = 1.0
"""After answering a request whose body was not read (413, 408), aiohttp drains the rest
for this long before closing (its default, 10 s, let a slow-body client hold on)."""


def server_options() -> dict[str, Any]:
    """Keyword arguments for ``web.AppRunner`` / ``web.Server``: idle/header and linger."""
    return {"keepalive_timeout": HEADER_TIMEOUT_S, "lingering_time": LINGER_S}


def body_timeout_response() -> web.Response:
    """408 with a JSON error, closing the connection (the rest of the body is not wanted)."""
    resp = web.Response(
        status=408,
        text=json.dumps({"error": f"request body not received within {BODY_TIMEOUT_S:g}s"}),
        content_type="application/json",
    )
    resp.force_close()
    return resp


@web.middleware
async def body_deadline(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Read the whole body within :data:`BODY_TIMEOUT_S` (cached for the handler)."""
    if request.body_exists:
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):
                await request.read()  # over client_max_size: 413 from aiohttp
        except TimeoutError:
            return body_timeout_response()
    return await handler(request)
