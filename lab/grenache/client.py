"""The plain Grenache RPC client: the honest baseline the adaptive client is measured against.

Same choice rule as grenache-nodejs-http's PeerRPCClient: every request goes to a peer
drawn uniformly at random from the (cached) lookup; a slow or dead peer is never
avoided and nothing is retried. ``map`` calls every peer and fails on the first error.
The only addition is a deadline covering the lookup and the request together.
"""

# ruff: noqa: ASYNC109  (the contract passes per-request timeouts explicitly)
from __future__ import annotations

import asyncio
import random
import time
from typing import Any, Protocol

from lab.errors import RpcTimeout


class Lookup(Protocol):
    async def lookup(self, name: str) -> list[str]: ...


class Transport(Protocol):
    async def request(
        self, peer: str, key: str, payload: Any, *, timeout: float, compress: bool = False
    ) -> Any: ...


class PeerRpcClient:
    """Uniform-random peer choice over a Link's lookup (see the module docstring)."""

    def __init__(
        self, link: Lookup, transport: Transport, rng: random.Random | None = None
    ) -> None:
        self._link = link
        self._transport = transport
        self._rng = rng or random.Random()

    async def request(
        self, service: str, payload: Any, timeout: float, *, compress: bool = False
    ) -> Any:
        """One request to one random peer of ``service``; its reply data."""
        deadline = time.monotonic() + timeout
        peers = await self._lookup(service, timeout)
        peer = self._rng.choice(peers)
        return await self._transport.request(
            peer, service, payload, timeout=deadline - time.monotonic(), compress=compress
        )

    async def map(
        self, service: str, payload: Any, timeout: float, *, compress: bool = False
    ) -> list[Any]:
        """The same request to every peer; results in peer order, or the first error."""
        deadline = time.monotonic() + timeout
        peers = await self._lookup(service, timeout)
        left = deadline - time.monotonic()
        tasks = [
            asyncio.create_task(
                self._transport.request(p, service, payload, timeout=left, compress=compress)
            )
            for p in peers
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in tasks:
                if task.done() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            return [t.result() for t in tasks]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _lookup(self, service: str, timeout: float) -> list[str]:
        cached = getattr(self._link, "cached", None)  # Link's fast path; fakes may lack it
        peers: list[str] | None = cached(service) if cached is not None else None
        if peers:
            return peers
        try:
            async with asyncio.timeout(timeout):
                return await self._link.lookup(service)
        except TimeoutError:
            raise RpcTimeout(f"ERR_TIMEOUT: lookup of {service!r} over {timeout:.3f}s") from None
