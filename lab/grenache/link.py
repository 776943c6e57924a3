"""Link: the client side of the grape HTTP API (lookup, announce, put, get).

Differences from grenache-nodejs-link 1.0.2, each on purpose (see ``docs/grenache.md``):

- **Stale-while-revalidate cache.** A fresh entry (younger than ``cache_ttl``) is served
  as is; a stale one is served at once while one background refresh runs. An empty or
  failed lookup never replaces known peers: :class:`LookupEmpty` is raised only when
  nothing was ever known for the name. (Upstream caches empty answers for 10 s too.)
- **Several grapes with failover.** Each call starts at the next grape in turn and moves
  on after a transport error, timeout or 5xx, for ``attempts`` tries in all.
- **Errors as exceptions.** A grape's string answer (``"ERR_GRAPE_LOOKUP"``, ``"No nodes
  to query"``) or an ``ERR_GRAPE_*`` status body becomes :class:`GrapeError(code, grape)`,
  which is the caller's mistake and is not retried on another grape.
- **Announce host extension.** ``announce(name, port, host)`` sends ``[name, port,
  {"host": host}]`` so a worker can announce a proxy's address (our grape honours it).
- ``local_host`` binds outgoing connections to one address, so that on 127.0.0.x a grape
  that records the caller's address records the right one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from lab.clock import SYSTEM_CLOCK, Clock
from lab.errors import DiscoveryError, GrapeError, LookupEmpty

log = logging.getLogger(__name__)

_HEX_KEY = re.compile(r"^[0-9a-f]{40}$")

AnnounceObserver = Callable[[str, bool], None]
"""Called after each announce of the loop with (service name, succeeded)."""


class _GrapeDown(Exception):
    """One grape could not be used (network, timeout, 5xx): try the next."""


@dataclass
class _Entry:
    peers: list[str]
    fetched_at: float
    refresh: asyncio.Task[None] | None = field(default=None)


class Link:
    """Talks to a set of grapes; an async context manager (``aclose`` on exit)."""

    def __init__(
        self,
        grapes: Sequence[str],
        *,
        clock: Clock = SYSTEM_CLOCK,
        cache_ttl: float = 1.0,
        attempt_timeout: float = 2.5,
        attempts: int = 3,
        rng: random.Random | None = None,
        local_host: str | None = None,
    ) -> None:
        urls = [g.rstrip("/") for g in grapes if g.strip()]
        if not urls:
            raise DiscoveryError("Link needs at least one grape URL (http://host:port)")
        self.grapes = [g if "://" in g else f"http://{g}" for g in urls]
        self._clock = clock
        self.cache_ttl = cache_ttl
        self.attempt_timeout = attempt_timeout
        self.attempts = max(1, attempts)
        self._rng = rng or random.Random()
        self._local_host = local_host
        self._next = 0
        self._session: aiohttp.ClientSession | None = None
        self._cache: dict[str, _Entry] = {}
        self._first: dict[str, asyncio.Task[list[str]]] = {}
        self._announcers: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    async def __aenter__(self) -> Link:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- the grape API ---------------------------------------------------------------------

    def cached(self, name: str) -> list[str] | None:
        """The cached peers of ``name`` without waiting (a stale entry starts its refresh),
        or None when nothing is cached yet: the hot path's way to skip a coroutine."""
        entry = self._cache.get(name)
        if entry is None:
            return None
        if self._clock.monotonic() - entry.fetched_at >= self.cache_ttl and (
            entry.refresh is None or entry.refresh.done()
        ):
            entry.refresh = asyncio.create_task(self._refresh(name, entry))
        return list(entry.peers)

    async def lookup(self, name: str) -> list[str]:
        """The ``host:port`` peers announced for ``name`` (see the module docstring)."""
        peers = self.cached(name)
        if peers is not None:
            return peers
        task = self._first.get(name)
        if task is None:  # one first lookup per name, however many callers wait for it
            task = self._first[name] = asyncio.create_task(self._fetch(name))
            task.add_done_callback(lambda _t: self._first.pop(name, None))
        peers = await asyncio.shield(task)
        if not peers:
            raise LookupEmpty(f"ERR_GRAPE_LOOKUP_EMPTY: no peer announced for {name!r}")
        entry = self._cache.get(name)
        if entry is None:
            self._cache[name] = entry = _Entry(list(peers), self._clock.monotonic())
        return list(entry.peers)

    async def _fetch(self, name: str) -> list[str]:
        answer = await self._call("lookup", name)
        if not isinstance(answer, list):
            raise DiscoveryError(f"lookup {name!r}: expected a list of peers, got {answer!r}")
        return [p for p in answer if isinstance(p, str)]

    async def _refresh(self, name: str, entry: _Entry) -> None:
        """Replace the peers on a non-empty answer; keep them on anything else."""
        try:
            peers = await self._fetch(name)
        except DiscoveryError as exc:
            log.info("lookup %r failed, serving %d known peers: %s", name, len(entry.peers), exc)
            return
        if peers:
            entry.peers = peers
            entry.fetched_at = self._clock.monotonic()
        else:
            log.info("lookup %r came back empty, keeping %d known peers", name, len(entry.peers))

    def forget(self, name: str) -> None:
        """Drop the cache entry for ``name`` (the next lookup asks a grape)."""
        entry = self._cache.pop(name, None)
        if entry is not None and entry.refresh is not None:
            entry.refresh.cancel()

    async def announce(self, name: str, port: int, host: str | None = None) -> int:
        """Announce ``name`` at ``port`` (and ``host``, our extension); nodes that stored it."""
        data: list[Any] = [name, port] if host is None else [name, port, {"host": host}]
        answer = await self._call("announce", data)
        if isinstance(answer, bool) or not isinstance(answer, int):
            raise DiscoveryError(f"announce {name!r}: expected a number, got {answer!r}")
        return answer

    def start_announcing(
        self,
        name: str,
        port: int,
        host: str | None = None,
        interval: float = 120.0,
        on_result: AnnounceObserver | None = None,
    ) -> None:
        """Announce now, then every 0.5-1.5 x ``interval`` seconds until stopped."""
        if interval <= 0:
            raise ValueError("announce interval must be positive")
        old = self._announcers.pop(name, None)
        if old is not None:
            old.cancel()
        self._announcers[name] = asyncio.create_task(
            self._announce_loop(name, port, host, interval, on_result), name=f"announce {name}"
        )

    async def _announce_loop(
        self,
        name: str,
        port: int,
        host: str | None,
        interval: float,
        on_result: AnnounceObserver | None,
    ) -> None:
        while True:
            try:
                await self.announce(name, port, host)
                ok = True
            except DiscoveryError as exc:
                log.warning("announce %r on port %d failed: %s", name, port, exc)
                ok = False
            if on_result is not None:
                on_result(name, ok)
            await self._clock.sleep(interval * self._rng.uniform(0.5, 1.5))

    async def stop_announcing(self, name: str) -> None:
        """Stop the loop for ``name`` (no unannounce: the grapes let it expire)."""
        task = self._announcers.pop(name, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def put(self, value: Any) -> str:
        """Store an immutable value; its hex key (SHA1 of its bencoding)."""
        answer = await self._call("put", {"v": value})
        if not isinstance(answer, str) or not _HEX_KEY.match(answer):
            raise DiscoveryError(f"put: expected a 40-digit hex key, got {answer!r}")
        return answer

    async def get(self, hexkey: str) -> Any:
        """The item stored under ``hexkey`` (``{"id", "v", ...}``), or None when unknown."""
        return await self._call("get", hexkey, string_is_error=False)

    async def aclose(self) -> None:
        """Stop every announce loop and refresh, then close the HTTP session."""
        self._closed = True
        tasks = [*self._announcers.values(), *self._first.values()]
        tasks += [e.refresh for e in self._cache.values() if e.refresh is not None]
        self._announcers.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # -- HTTP with failover ------------------------------------------------------------------

    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise DiscoveryError("the Link is closed")
        local = (self._local_host, 0) if self._local_host else None
        connector = aiohttp.TCPConnector(limit=32, local_addr=local)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None)
        )
        return self._session

    async def _call(self, endpoint: str, data: Any, *, string_is_error: bool = True) -> Any:
        """POST ``/endpoint`` to one grape after another until one answers."""
        failures: list[str] = []
        for _ in range(self.attempts):
            grape = self.grapes[self._next % len(self.grapes)]
            self._next += 1
            try:
                answer = await self._post(grape, endpoint, data)
            except _GrapeDown as exc:
                failures.append(f"{grape}: {exc}")
                continue
            if string_is_error and isinstance(answer, str) and not _HEX_KEY.match(answer):
                raise GrapeError(answer, grape)
            return answer
        raise DiscoveryError(f"{endpoint}: no grape answered ({'; '.join(failures)})")

    async def _post(self, grape: str, endpoint: str, data: Any) -> Any:
        session = self._session or self._open()
        body = {"rid": str(uuid.uuid4()), "data": data}
        try:
            async with asyncio.timeout(self.attempt_timeout):
                async with session.post(f"{grape}/{endpoint}", json=body) as resp:
                    raw = await resp.read()
                    status = resp.status
        except TimeoutError:
            raise _GrapeDown(f"no answer within {self.attempt_timeout}s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise _GrapeDown(f"{type(exc).__name__}: {exc}") from None
        text = raw.decode("utf-8", "replace").strip()
        if status >= 400:
            if (text.startswith("ERR_") and status < 500) or text.startswith("ERR_GRAPE_PAYLOAD"):
                raise GrapeError(text[:100], grape)
            raise _GrapeDown(f"HTTP {status}: {text[:100]}")
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise _GrapeDown(f"answer is not JSON: {text[:100]!r}") from None
