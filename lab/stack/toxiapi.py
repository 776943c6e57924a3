"""The Toxiproxy facts the stack commands need, in their terms: proxies, reset, version.

Through the one Toxiproxy client (:mod:`lab.toxiproxy_adapter`), so ``up``/``down``/
``status`` and the engine speak the API one way; here its FaultError becomes the stack's
RuntimeUnavailable ("Toxiproxy is not there"), which is what a half-up lab means to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lab.errors import FaultError, RuntimeUnavailable
from lab.toxiproxy_adapter import MIN_VERSION, ProxyState, ToxiproxyAdapter, parse_version

DEFAULT_API = "http://127.0.0.1:8474"
EXPECTED_PROXIES = ("worker-1", "worker-2", "worker-3")


@dataclass(frozen=True)
class Proxy:
    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: list[dict[str, Any]] = field(default_factory=list)


def _proxy(p: ProxyState) -> Proxy:
    toxics = [
        {
            "name": t.name,
            "type": t.type,
            "stream": t.stream,
            "toxicity": t.toxicity,
            "attributes": dict(t.attributes),
        }
        for t in p.toxics
    ]
    return Proxy(p.name, p.listen, p.upstream, p.enabled, toxics)


def _adapter(api: str, timeout: float) -> ToxiproxyAdapter:
    try:
        return ToxiproxyAdapter(api, timeout=timeout)
    except FaultError as exc:
        raise RuntimeUnavailable(str(exc)) from None


def proxies(api: str = DEFAULT_API, timeout: float = 2.0) -> list[Proxy]:
    """Every proxy with its toxics (``GET /proxies``)."""
    try:
        return [_proxy(p) for p in _adapter(api, timeout).proxies().values()]
    except FaultError as exc:
        raise RuntimeUnavailable(str(exc)) from exc


def reset(api: str = DEFAULT_API, timeout: float = 2.0) -> None:
    """Remove every toxic and re-enable every proxy (``POST /reset``)."""
    try:
        _adapter(api, timeout).reset()
    except FaultError as exc:
        raise RuntimeUnavailable(str(exc)) from exc


def version(api: str = DEFAULT_API, timeout: float = 2.0) -> str:
    """The server's version: ``{"version": "2.12.0"}`` in 2.x, a bare string in older ones."""
    try:
        return _adapter(api, timeout).version()
    except FaultError as exc:
        raise RuntimeUnavailable(str(exc)) from exc


def check_version(api: str = DEFAULT_API) -> str:
    """The server's version, or RuntimeUnavailable when it is older than 2.5."""
    text = version(api)
    found = parse_version(text)
    if found is not None and found < MIN_VERSION:  # None: a development build ("git")
        raise RuntimeUnavailable(
            f"Toxiproxy {text} is too old (the lab needs >= 2.5 for reset_peer): "
            f"use ghcr.io/shopify/toxiproxy:2.12.0 or unset LAB_TOXIPROXY_IMAGE"
        )
    return text


def missing_proxies(found: list[Proxy]) -> list[str]:
    names = {p.name for p in found}
    return [n for n in EXPECTED_PROXIES if n not in names]
