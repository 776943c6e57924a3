"""The few Toxiproxy API calls the stack commands need, with timeouts and one error type.

Why not the toxiproxy-python adapter the scenario engine uses: ``up``/``down``/``status``
only list proxies, read toxics and ``POST /reset``, and must work (or fail in one sentence)
when Toxiproxy is half up; three stdlib calls with explicit timeouts do that with nothing
to wrap.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from lab.errors import RuntimeUnavailable

DEFAULT_API = "http://127.0.0.1:8474"
EXPECTED_PROXIES = ("worker-1", "worker-2", "worker-3")


@dataclass(frozen=True)
class Proxy:
    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: list[dict[str, Any]] = field(default_factory=list)


def _call(method: str, url: str, timeout: float, body: bytes | None = None) -> Any:
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise RuntimeUnavailable(f"Toxiproxy API {method} {url}: {exc}") from exc
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise RuntimeUnavailable(f"Toxiproxy API {method} {url}: not JSON: {raw[:80]!r}") from exc


def proxies(api: str = DEFAULT_API, timeout: float = 2.0) -> list[Proxy]:
    """Every proxy with its toxics (``GET /proxies``)."""
    data = _call("GET", f"{api}/proxies", timeout)
    if not isinstance(data, dict):
        raise RuntimeUnavailable(f"Toxiproxy API {api}/proxies: unexpected answer {data!r:.80}")
    return [
        Proxy(
            name=str(name),
            listen=str(p.get("listen", "")),
            upstream=str(p.get("upstream", "")),
            enabled=bool(p.get("enabled", False)),
            toxics=list(p.get("toxics") or []),
        )
        for name, p in sorted(data.items())
    ]


def reset(api: str = DEFAULT_API, timeout: float = 2.0) -> None:
    """Remove every toxic and re-enable every proxy (``POST /reset``)."""
    _call("POST", f"{api}/reset", timeout, body=b"")


def version(api: str = DEFAULT_API, timeout: float = 2.0) -> str:
    """The server's version: ``{"version": "2.12.0"}`` in 2.x, a bare string in older ones."""
    data = _call("GET", f"{api}/version", timeout)
    if isinstance(data, dict):
        return str(data.get("version", ""))
    return str(data)


MIN_VERSION = (2, 5)
"""Older servers lack ``reset_peer`` (Docker Hub's shopify/toxiproxy stops at 2.1.4)."""


def check_version(api: str = DEFAULT_API) -> str:
    """The server's version, or RuntimeUnavailable when it is older than 2.5."""
    text = version(api)
    parts = text.lstrip("v").split(".")
    try:
        found = (int(parts[0]), int(parts[1]))
    except (IndexError, ValueError):
        return text  # a development build ("git"): nothing to compare, accept it
    if found < MIN_VERSION:
        raise RuntimeUnavailable(
            f"Toxiproxy {text} is too old (the lab needs >= 2.5 for reset_peer): "
            f"use ghcr.io/shopify/toxiproxy:2.12.0 or unset LAB_TOXIPROXY_IMAGE"
        )
    return text


def missing_proxies(found: list[Proxy]) -> list[str]:
    names = {p.name for p in found}
    return [n for n in EXPECTED_PROXIES if n not in names]
