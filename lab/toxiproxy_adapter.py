"""The one adapter over ``toxiproxy-python``: timeouts, error mapping, the missing calls.

Why an adapter: the library (0.1.1) has no timeouts on any call, keeps the API's host and
port in module globals, lets a 500 surface as ``KeyError``, returns ``None`` from
``add_toxic``, has no PATCH and no "remove every toxic"; and the server silently ignores
toxic attributes it does not know (``{"latnecy": 300}`` is a no-op toxic). Nothing else in
the lab imports ``toxiproxy``, and nothing else speaks Toxiproxy's API: faults, rollback,
leftover cleanup, ``lab up/status/down`` and the local cluster all come here, and
:meth:`ToxiproxyAdapter.sweep` is the one way toxics are swept.

How: each adapter makes its own subclass of the library's ``APIConsumer`` carrying its
host and port (the library's class methods read ``cls.host``), so two adapters never
share a global, and every call passes ``timeout=``. The library maps 400/404/409 to its
own exceptions; those, ``requests`` errors and any other non-2xx status become one
:class:`~lab.errors.FaultError` naming the proxy and toxic. PATCH, which the library
lacks, goes through ``requests`` directly with the same response check.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import toxiproxy.api
import toxiproxy.exceptions

from lab.errors import FaultError

MIN_VERSION = (2, 5)
"""Older servers lack ``reset_peer`` (Docker Hub's shopify/toxiproxy stops at 2.1.4)."""

TOXIC_ATTRIBUTES: dict[str, frozenset[str]] = {
    "latency": frozenset({"latency", "jitter"}),
    "bandwidth": frozenset({"rate"}),
    "slow_close": frozenset({"delay"}),
    "timeout": frozenset({"timeout"}),
    "reset_peer": frozenset({"timeout"}),
    "slicer": frozenset({"average_size", "size_variation", "delay"}),
    "limit_data": frozenset({"bytes"}),
}
"""Toxiproxy 2.12's toxic types and the attributes each one reads (all integers)."""

STREAMS = ("upstream", "downstream")


@dataclass(frozen=True, slots=True)
class ToxicState:
    """A toxic as the server reports it."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProxyState:
    """A proxy as the server reports it."""

    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[ToxicState, ...] = ()


@dataclass(frozen=True, slots=True)
class Sweep:
    """What :meth:`ToxiproxyAdapter.sweep` found and did."""

    dirty: tuple[ProxyState, ...] = ()  # proxies that were disabled or held toxics
    removed: tuple[tuple[str, str], ...] = ()  # (proxy, toxic) taken away
    enabled: tuple[str, ...] = ()  # proxies re-enabled
    errors: tuple[str, ...] = ()  # calls that failed (selective sweep only)


def validate_toxic(type_: str, attributes: Mapping[str, Any], stream: str, toxicity: float) -> None:
    """Refuse what the server would accept and then ignore (unknown types or attributes)."""
    known = TOXIC_ATTRIBUTES.get(type_)
    if known is None:
        raise FaultError(
            f"unknown toxic type {type_!r}; Toxiproxy knows {', '.join(sorted(TOXIC_ATTRIBUTES))}"
        )
    unknown = sorted(set(attributes) - known)
    if unknown:
        raise FaultError(
            f"toxic {type_}: unknown attribute(s) {', '.join(unknown)}; "
            f"it takes {', '.join(sorted(known))}"
        )
    for key, value in attributes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise FaultError(
                f"toxic {type_}: attribute {key} must be an integer >= 0, not {value!r}"
            )
    if stream not in STREAMS:
        raise FaultError(f"toxic {type_}: stream must be upstream or downstream, not {stream!r}")
    if not 0.0 <= float(toxicity) <= 1.0:
        raise FaultError(f"toxic {type_}: toxicity must be within [0, 1], not {toxicity!r}")


def _parse_toxic(d: Mapping[str, Any]) -> ToxicState:
    return ToxicState(
        name=str(d.get("name", "")),
        type=str(d.get("type", "")),
        stream=str(d.get("stream", "downstream")),
        toxicity=float(d.get("toxicity", 1.0)),
        attributes=dict(d.get("attributes") or {}),
    )


def _parse_proxy(d: Mapping[str, Any]) -> ProxyState:
    return ProxyState(
        name=str(d.get("name", "")),
        listen=str(d.get("listen", "")),
        upstream=str(d.get("upstream", "")),
        enabled=bool(d.get("enabled", False)),
        toxics=tuple(_parse_toxic(t) for t in d.get("toxics") or ()),
    )


def parse_version(text: str) -> tuple[int, int] | None:
    """``(2, 12)`` for ``"2.12.0"``/``"v2.12.0"``; None for a development build (``"git"``)."""
    parts = text.strip().lstrip("v").split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


class ToxiproxyAdapter:
    """Toxiproxy's API at ``api`` (``http://host:port``), every call bounded by ``timeout``."""

    def __init__(self, api: str = "http://127.0.0.1:8474", timeout: float = 2.0) -> None:
        parsed = urllib.parse.urlsplit(api if "://" in api else f"http://{api}")
        if not parsed.hostname or not parsed.port:
            raise FaultError(f"toxiproxy API address needs a host and port: {api!r}")
        self.api = f"http://{parsed.hostname}:{parsed.port}"
        self.timeout = timeout
        # A per-adapter subclass: the library's class methods read cls.host / cls.port.
        self._consumer: type[Any] = type(
            "LabAPIConsumer",
            (toxiproxy.api.APIConsumer,),
            {"host": parsed.hostname, "port": parsed.port},
        )

    # -- the one place that talks to the library --------------------------------------

    def _call(
        self, method: str, path: str, what: str, body: Mapping[str, Any] | None = None
    ) -> Any:
        """One API call; any failure is a FaultError that says ``what`` was being done."""
        try:
            if method == "GET":
                resp = self._consumer.get(path, timeout=self.timeout)
            elif method == "POST":
                resp = self._consumer.post(path, json=body, timeout=self.timeout)
            elif method == "DELETE":
                resp = self._consumer.delete(path, timeout=self.timeout)
            elif method == "PATCH":  # the library has no PATCH
                resp = toxiproxy.api.validate_response(
                    requests.patch(self.api + path, json=body, timeout=self.timeout)
                )
            else:  # pragma: no cover - a programming error
                raise ValueError(method)
        except toxiproxy.exceptions.NotFound as exc:
            raise FaultError(f"toxiproxy: {what}: not found ({_detail(exc)})") from exc
        except toxiproxy.exceptions.ProxyExists as exc:
            raise FaultError(f"toxiproxy: {what}: already exists ({_detail(exc)})") from exc
        except toxiproxy.exceptions.InvalidToxic as exc:
            raise FaultError(f"toxiproxy: {what}: rejected ({_detail(exc)})") from exc
        except requests.Timeout as exc:
            raise FaultError(
                f"toxiproxy: {what}: no answer from {self.api} within {self.timeout:.1f}s"
            ) from exc
        except requests.RequestException as exc:
            raise FaultError(f"toxiproxy: {what}: {self.api} unreachable ({exc})") from exc
        if not 200 <= resp.status_code < 300:
            raise FaultError(
                f"toxiproxy: {what}: HTTP {resp.status_code} ({resp.text.strip()[:200]})"
            )
        if not resp.content.strip():
            return None
        try:
            return resp.json()
        except ValueError as exc:
            raise FaultError(f"toxiproxy: {what}: answer is not JSON: {resp.text[:80]!r}") from exc

    # -- server -----------------------------------------------------------------------

    def version(self) -> str:
        data = self._call("GET", "/version", "read the server version")
        if isinstance(data, Mapping):
            return str(data.get("version", ""))
        return str(data)

    def check_version(self) -> str:
        """The server's version, or FaultError when it is older than 2.5 (no reset_peer)."""
        text = self.version()
        found = parse_version(text)
        if found is not None and found < MIN_VERSION:
            raise FaultError(
                f"Toxiproxy {text} at {self.api} is too old: the lab needs >= 2.5 (reset_peer)"
            )
        return text

    def reset(self) -> None:
        """Enable every proxy and remove every toxic (``POST /reset``)."""
        self._call("POST", "/reset", "reset")

    # -- proxies ----------------------------------------------------------------------

    def proxies(self) -> dict[str, ProxyState]:
        data = self._call("GET", "/proxies", "list proxies")
        if not isinstance(data, Mapping):
            raise FaultError(f"toxiproxy: list proxies: unexpected answer {data!r:.80}")
        return {str(name): _parse_proxy(p) for name, p in sorted(data.items())}

    def proxy(self, name: str) -> ProxyState:
        return _parse_proxy(self._call("GET", f"/proxies/{_q(name)}", f"proxy {name}"))

    def create_proxy(self, name: str, listen: str, upstream: str) -> ProxyState:
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": True}
        return _parse_proxy(self._call("POST", "/proxies", f"create proxy {name}", body))

    def delete_proxy(self, name: str) -> None:
        self._call("DELETE", f"/proxies/{_q(name)}", f"delete proxy {name}")

    def set_enabled(self, name: str, enabled: bool) -> ProxyState:
        """PATCH the proxy's ``enabled`` (disabling closes its open connections too)."""
        what = f"{'enable' if enabled else 'disable'} proxy {name}"
        state = _parse_proxy(
            self._call("PATCH", f"/proxies/{_q(name)}", what, {"enabled": enabled})
        )
        if state.enabled != enabled:
            raise FaultError(f"toxiproxy: {what}: the server still says enabled={state.enabled}")
        return state

    # -- toxics -----------------------------------------------------------------------

    def toxics(self, proxy: str) -> list[ToxicState]:
        data = self._call("GET", f"/proxies/{_q(proxy)}/toxics", f"list toxics of {proxy}")
        return [_parse_toxic(t) for t in data or ()]

    def add_toxic(
        self,
        proxy: str,
        name: str,
        type_: str,
        attributes: Mapping[str, Any],
        stream: str = "downstream",
        toxicity: float = 1.0,
    ) -> ToxicState:
        """Add a toxic after validating it; returns the server's view (the library's is None)."""
        try:
            validate_toxic(type_, attributes, stream, toxicity)
        except FaultError as exc:
            raise FaultError(f"toxiproxy: proxy {proxy} toxic {name}: {exc}") from None
        body = {
            "name": name,
            "type": type_,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": dict(attributes),
        }
        data = self._call(
            "POST", f"/proxies/{_q(proxy)}/toxics", f"add toxic {name} to proxy {proxy}", body
        )
        return _parse_toxic(data)

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call(
            "DELETE",
            f"/proxies/{_q(proxy)}/toxics/{_q(name)}",
            f"remove toxic {name} from proxy {proxy}",
        )

    def sweep(self, *, ours: str | None = None, reenable: Collection[str] = ()) -> Sweep:
        """Leave no toxic behind, by one of two rules.

        Without ``ours``: every proxy whole again, ``POST /reset`` when any is disabled or
        holds a toxic (a run's clean start, ``lab down``). With ``ours``: only toxics
        named with that prefix go, and the proxies in ``reenable`` that are disabled are
        enabled; a foreign toxic stays (a janitor undoes its own run only), and each
        failed call is collected in ``errors`` so every other one is still tried.
        Listing the proxies may raise FaultError: nothing was swept then.
        """
        proxies = self.proxies()
        dirty = tuple(p for p in proxies.values() if not p.enabled or p.toxics)
        if ours is None:
            if dirty:
                self.reset()
            removed = tuple((p.name, t.name) for p in dirty for t in p.toxics)
            enabled = tuple(p.name for p in dirty if not p.enabled)
            return Sweep(dirty, removed, enabled)
        taken: list[tuple[str, str]] = []
        errors: list[str] = []
        for name, p in proxies.items():
            for t in p.toxics:
                if t.name.startswith(ours):
                    try:
                        self.remove_toxic(name, t.name)
                        taken.append((name, t.name))
                    except FaultError as exc:
                        errors.append(str(exc))
        opened: list[str] = []
        for name in dict.fromkeys(reenable):
            if name in proxies and not proxies[name].enabled:
                try:
                    self.set_enabled(name, True)
                    opened.append(name)
                except FaultError as exc:
                    errors.append(str(exc))
        return Sweep(dirty, tuple(taken), tuple(opened), tuple(errors))

    def remove_all_toxics(self, proxy: str) -> int:
        """Remove every toxic of one proxy (the API has no such call); how many there were."""
        found = self.toxics(proxy)
        for t in found:
            self.remove_toxic(proxy, t.name)
        return len(found)


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def _detail(exc: BaseException) -> str:
    raw = exc.args[0] if exc.args else ""
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    return text.strip()[:200]
