"""The clients' control plane as the engine speaks it: one protocol, one HTTP implementation.

The control API (``docs/contracts.md``: load start/stop/lease, gossip, oracle, history and
events pages, clock) is spoken from here only. The runner, the collector, the watch, the
janitor and the clock probe take a :class:`LabClient` and address a client by its control
base URL; :class:`HttpLabClient` implements it once over one aiohttp session, and
:class:`lab.fake_lab_client.FakeLabClient` in memory, so the engine's unit tests need no
socket.

Every failure of a call (no answer, a refusal, an HTTP error status, a body that is not
the JSON the contract promises) is a :class:`ControlError` naming the method and URL, so
callers catch one type; ``status`` tells an HTTP answer from silence.

The synchronous :class:`ControlClient` and :func:`http_json` serve the code that must not
run an event loop (a local cluster's readiness polls, a fault's undo in a signal-safe
``finally``); they speak the same routes over urllib.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol

import aiohttp

from lab.errors import FaultError, RuntimeUnavailable

CALL_TIMEOUT_S = 5.0
"""A control call's whole budget unless the caller says otherwise."""
PAGE_LIMIT = 5000
"""Records or events asked per page (the API caps a page at 10,000)."""


class ControlError(FaultError):
    """A control call failed; ``status`` is the HTTP status, ``None`` when none came back."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        refused: bool = False,
        error: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.refused = refused
        self.error = error  # the ``error`` of a JSON refusal, whole (a policy's traceback)


class LabClient(Protocol):
    """The control calls the engine makes on a client, addressed by its control base URL."""

    async def start_load(self, url: str, body: Mapping[str, Any]) -> Any:
        """``POST /load/start``: the load spec (rate, duration, seed, lease, ...)."""
        ...

    async def stop_load(self, url: str, *, budget_s: float = CALL_TIMEOUT_S) -> Any:
        """``POST /load/stop``."""
        ...

    async def renew_lease(self, url: str, lease_s: float, *, budget_s: float) -> bool:
        """``POST /load/lease``: True when a load now holds it, False when none runs (409)."""
        ...

    async def set_gossip(self, url: str, enabled: bool) -> Any:
        """``PUT /gossip``."""
        ...

    async def set_oracle(
        self, url: str, faulty: Sequence[str], *, budget_s: float = CALL_TIMEOUT_S
    ) -> Any:
        """``PUT /oracle``: the peers the oracle policy must avoid."""
        ...

    async def history(self, url: str, cursor: int, limit: int = PAGE_LIMIT) -> dict[str, Any]:
        """``GET /history``: ``{"records": [...], "cursor": next, "dropped": k}``."""
        ...

    async def events(self, url: str, cursor: int, limit: int = PAGE_LIMIT) -> dict[str, Any]:
        """``GET /events``: ``{"events": [...], "cursor": next}``."""
        ...

    async def clock(self, url: str, *, budget_s: float = 2.0) -> float:
        """``GET /clock``: the client's ``time.monotonic()``."""
        ...


class HttpLabClient:
    """:class:`LabClient` over one aiohttp session.

    Use as ``async with HttpLabClient()``, or call :meth:`close` when done: the session it
    owns opens on the first call (inside the running loop) and closes there.
    """

    def __init__(self, session: aiohttp.ClientSession | None = None) -> None:
        self._session = session
        self._owned = session is None

    async def __aenter__(self) -> HttpLabClient:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owned and self._session is not None:
            await self._session.close()
            self._session = None

    async def start_load(self, url: str, body: Mapping[str, Any]) -> Any:
        return await self._json("POST", f"{url}/load/start", body)

    async def stop_load(self, url: str, *, budget_s: float = CALL_TIMEOUT_S) -> Any:
        return await self._json("POST", f"{url}/load/stop", {}, budget_s=budget_s)

    async def renew_lease(self, url: str, lease_s: float, *, budget_s: float) -> bool:
        try:
            await self._json("POST", f"{url}/load/lease", {"lease_s": lease_s}, budget_s=budget_s)
        except ControlError as exc:
            if exc.status == 409:  # no load running: its load is already over
                return False
            raise
        return True

    async def set_gossip(self, url: str, enabled: bool) -> Any:
        return await self._json("PUT", f"{url}/gossip", {"enabled": enabled})

    async def set_oracle(
        self, url: str, faulty: Sequence[str], *, budget_s: float = CALL_TIMEOUT_S
    ) -> Any:
        return await self._json("PUT", f"{url}/oracle", {"faulty": list(faulty)}, budget_s=budget_s)

    async def history(self, url: str, cursor: int, limit: int = PAGE_LIMIT) -> dict[str, Any]:
        return await self._page(f"{url}/history", cursor, limit)

    async def events(self, url: str, cursor: int, limit: int = PAGE_LIMIT) -> dict[str, Any]:
        return await self._page(f"{url}/events", cursor, limit)

    async def clock(self, url: str, *, budget_s: float = 2.0) -> float:
        data = await self._json("GET", f"{url}/clock", None, budget_s=budget_s)
        try:
            return float(data["monotonic"])
        except (TypeError, KeyError, ValueError):
            raise ControlError(
                f"GET {url}/clock answered {data!r:.80}, not {{'monotonic': t}}", 200
            ) from None

    async def _page(self, url: str, cursor: int, limit: int) -> dict[str, Any]:
        data = await self._json(
            "GET", url, None, params={"cursor": str(cursor), "limit": str(limit)}
        )
        if not isinstance(data, dict):
            raise ControlError(f"GET {url}: expected a JSON object, got {data!r:.80}", 200)
        return data

    async def _json(
        self,
        method: str,
        url: str,
        body: Mapping[str, Any] | None,
        *,
        budget_s: float = CALL_TIMEOUT_S,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.request(
                method,
                url,
                json=None if body is None else dict(body),
                params=params,
                timeout=aiohttp.ClientTimeout(total=budget_s),
            ) as resp:
                text = await resp.text()
                status = resp.status
        except aiohttp.ClientConnectorError as exc:
            raise ControlError(f"{method} {url}: {exc.os_error or exc}", refused=True) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ControlError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
        if status >= 300:
            raise ControlError(
                f"{method} {url}: HTTP {status}: {text[:200]}", status, error=_error_of(text)
            )
        try:
            return json.loads(text) if text.strip() else None
        except ValueError:
            raise ControlError(f"{method} {url}: not JSON: {text[:80]!r}", status) from None


def http_json(
    method: str, url: str, body: Mapping[str, Any] | None = None, timeout: float = 5.0
) -> Any:
    """One JSON request with urllib; an HTTP error status raises with the body's text."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise RuntimeUnavailable(f"{method} {url}: {exc.code} {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise RuntimeUnavailable(f"{method} {url}: {exc}") from None
    return json.loads(raw) if raw.strip() else None


class ControlClient:
    """The client control API of ``docs/contracts.md``, synchronously (tests, readiness)."""

    def __init__(self, base: str, timeout: float = 5.0) -> None:
        self.base = base
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return http_json(method, f"{self.base}{path}", body, self.timeout)

    def health(self) -> Any:
        return self._call("GET", "/health")

    def clock(self) -> float:
        return float(self._call("GET", "/clock")["monotonic"])

    def start_load(self, **spec: Any) -> Any:
        return self._call("POST", "/load/start", spec)

    def stop_load(self) -> Any:
        return self._call("POST", "/load/stop", {})

    def patch_load(self, **change: Any) -> Any:
        return self._call("PATCH", "/load", change)

    def history(self, cursor: int = 0, limit: int = 10_000) -> Any:
        return self._call("GET", f"/history?cursor={cursor}&limit={limit}")

    def events(self, cursor: int = 0, limit: int = 10_000) -> Any:
        return self._call("GET", f"/events?cursor={cursor}&limit={limit}")

    def peers(self) -> Any:
        return self._call("GET", "/peers")

    def set_oracle(self, faulty: Sequence[str]) -> Any:
        return self._call("PUT", "/oracle", {"faulty": list(faulty)})

    def set_gossip(self, enabled: bool) -> Any:
        return self._call("PUT", "/gossip", {"enabled": enabled})

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.base}/metrics", timeout=self.timeout) as resp:
            return bytes(resp.read()).decode()


def _error_of(text: str) -> str | None:
    """The ``error`` field of a JSON error body, if it is one."""
    try:
        body = json.loads(text)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return str(error) if error else None
