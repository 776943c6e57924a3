"""A worker's load as it reports it: response headers and the ``GET /load`` probe body.

An extension of the Grenache HTTP transport that changes nothing on the wire a plain
Grenache peer relies on: the reply envelope is untouched, the figures travel in extra
``X-Lab-*`` response headers (which grenache-nodejs-http ignores), and the probe is a
``GET /load`` that upstream servers never receive from upstream clients.

- ``in_flight``: requests the worker holds, in service or queued (Prequal's RIF);
- ``queue``: of those, the ones waiting for a service slot (C3's queue size);
- ``service_s``: the worker's recent mean service time, queueing excluded (C3's 1/mu);
- ``latency_s``: its recent mean time from arrival to answer, queueing included
  (Prequal's probed latency).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

HEADER_IN_FLIGHT = "X-Lab-In-Flight"
HEADER_QUEUE = "X-Lab-Queue"
HEADER_SERVICE_MS = "X-Lab-Service-Ms"
HEADER_LATENCY_MS = "X-Lab-Latency-Ms"
PROBE_PATH = "/load"


@dataclass(frozen=True, slots=True)
class LoadReport:
    """One worker's load at one moment (see the module docstring for each field)."""

    in_flight: int
    queue: int
    service_s: float
    latency_s: float

    def to_headers(self) -> dict[str, str]:
        return {
            HEADER_IN_FLIGHT: str(self.in_flight),
            HEADER_QUEUE: str(self.queue),
            HEADER_SERVICE_MS: f"{self.service_s * 1000:.3f}",
            HEADER_LATENCY_MS: f"{self.latency_s * 1000:.3f}",
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "in_flight": self.in_flight,
            "queue": self.queue,
            "service_ms": round(self.service_s * 1000, 3),
            "latency_ms": round(self.latency_s * 1000, 3),
        }


def _count(text: object) -> int | None:
    try:
        value = int(str(text))
    except ValueError:
        return None
    return value if value >= 0 else None


def _ms(text: object) -> float | None:
    try:
        value = float(str(text))
    except ValueError:
        return None
    return value / 1000 if value >= 0 and math.isfinite(value) else None


def from_headers(headers: Mapping[str, str]) -> LoadReport | None:
    """The report in a reply's headers; None when absent or garbled (a plain peer)."""
    raw = headers.get(HEADER_IN_FLIGHT)
    if raw is None:
        return None
    rif, queue = _count(raw), _count(headers.get(HEADER_QUEUE, "0"))
    service = _ms(headers.get(HEADER_SERVICE_MS, "0"))
    latency = _ms(headers.get(HEADER_LATENCY_MS, "0"))
    if rif is None or queue is None or service is None or latency is None:
        return None
    return LoadReport(rif, queue, service, latency)


def from_json(body: object) -> LoadReport | None:
    """The report in a probe's JSON body; None when it is not one."""
    if not isinstance(body, dict):
        return None
    rif, queue = _count(body.get("in_flight")), _count(body.get("queue"))
    service, latency = _ms(body.get("service_ms")), _ms(body.get("latency_ms"))
    if rif is None or queue is None or service is None or latency is None:
        return None
    return LoadReport(rif, queue, service, latency)
