"""The client's control API: thin aiohttp handlers over the load runner and recorder.

The routes are those of ``docs/contracts.md``. Handlers parse and validate, call one
method, and answer JSON; they hold no state of their own (everything lives in the
:class:`Controls` under the app key), so tests can mount them on a bare app.
Bad input is a 4xx whose ``error`` names the field; it never reaches the runner. The
limits (:data:`MAX_BODY_BYTES`, :data:`MAX_PAGE`, :data:`MAX_FAULTY`, the JSON rules of
:mod:`lab.jsonlimits` and the load limits of :mod:`lab.loadgen.limits`) are documented in
``docs/contracts.md``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from aiohttp import web

from lab.balancer.stats import PeerStats
from lab.clock import Clock
from lab.errors import SettingsError
from lab.history import event_to_json, request_to_json
from lab.jsonlimits import JsonRejected, loads
from lab.loadgen.load import LoadRunner
from lab.loadgen.metrics import CONTENT_TYPE, ClientMetrics
from lab.loadgen.recorder import Recorder, Ring
from lab.loadgen.schedule import LoadSpec

T = TypeVar("T")

MAX_BODY_BYTES = 16 * 1024
"""The largest control body: the biggest real one (an oracle list) is a few hundred bytes."""

MAX_PAGE = 10_000
"""Most records one ``/history`` or ``/events`` page returns (the engine asks for 5,000)."""

MAX_FAULTY = 64
"""Most peers ``PUT /oracle`` may name (the lab has three workers)."""

MAX_PEER_NAME = 255


class PolicyControls(Protocol):
    """What the control API may ask of the policy side (balancer, gossip, oracle)."""

    def peers(self) -> Sequence[PeerStats]: ...

    def faulty(self) -> Sequence[str]: ...

    def set_faulty(self, peers: Sequence[str]) -> None: ...

    def gossip_enabled(self) -> bool: ...

    def set_gossip(self, enabled: bool) -> None: ...

    def health(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Controls:
    """Everything the handlers reach, stored under :data:`CONTROLS`."""

    name: str
    policy: str
    clock: Clock
    load: LoadRunner
    recorder: Recorder
    metrics: ClientMetrics
    policy_side: PolicyControls
    started: float


CONTROLS: web.AppKey[Controls] = web.AppKey("controls", Controls)


def _controls(request: web.Request) -> Controls:
    return request.app[CONTROLS]


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


async def _body(request: web.Request) -> dict[str, Any]:
    """The JSON object in the body (an empty body is an empty object)."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = loads(raw, max_bytes=MAX_BODY_BYTES)
    except JsonRejected as exc:
        raise _bad(f"body: {exc}") from None
    if not isinstance(data, dict):
        raise _bad("body must be a JSON object")
    return data


def _int_query(request: web.Request, name: str, default: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if len(raw) > 20 or not (raw.isascii() and raw.isdigit()):
        raise _bad(f"{name}: not a non-negative integer: {raw[:24]!r}")
    return min(int(raw), high)


async def health(request: web.Request) -> web.Response:
    c = _controls(request)
    now = c.clock.monotonic()
    return web.json_response(
        {
            "status": "ok",
            "name": c.name,
            "policy": c.policy,
            "uptime_s": now - c.started,
            "load": c.load.status(),
            **c.policy_side.health(),
        }
    )


async def metrics(request: web.Request) -> web.Response:
    c = _controls(request)
    c.metrics.in_flight.labels(c.name).set(c.load.in_flight())
    c.metrics.history_evicted.labels(c.name).set(c.recorder.requests.evicted)
    return web.Response(body=c.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


async def clock(request: web.Request) -> web.Response:
    return web.json_response({"monotonic": _controls(request).clock.monotonic()})


MIN_LEASE_S = 0.5
MAX_LEASE_S = 60.0
"""A load lease (``lease_s``) lies within these: shorter cannot be renewed in time over a
busy host, longer keeps an orphaned load running too long."""


def _lease_s(data: dict[str, Any]) -> float | None:
    """The ``lease_s`` field (removed from ``data``): None, or seconds within the bounds."""
    value = data.pop("lease_s", None)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad("lease_s: expected a number of seconds")
    if not MIN_LEASE_S <= value <= MAX_LEASE_S:  # NaN fails both comparisons
        raise _bad(f"lease_s: must be within {MIN_LEASE_S:g}..{MAX_LEASE_S:g} seconds")
    return float(value)


async def _refuse_if_policy_failed(c: Controls) -> None:
    """410 Gone, with the fault and its traceback, once the learner's policy has failed.

    The load is stopped first: nothing more goes through a broken policy, and the run
    that renews the lease learns why at its next renewal (:mod:`lab.scenario.runtime.watch`).
    """
    fault = getattr(c.policy_side, "policy_fault", lambda: None)()
    if fault is None:
        return
    await c.load.stop()
    raise web.HTTPGone(
        text=json.dumps({"error": f"policy failed: {fault}", "policy_error": fault}),
        content_type="application/json",
    )


async def load_start(request: web.Request) -> web.Response:
    c = _controls(request)
    await _refuse_if_policy_failed(c)
    data = await _body(request)
    lease_s = _lease_s(data)
    try:
        spec = LoadSpec.from_json(data)
    except SettingsError as exc:
        raise _bad(str(exc)) from None
    started = await c.load.start(spec, lease_s=lease_s)
    return web.json_response(
        {"started": started, "spec": spec.to_json(), "lease_until": c.load.lease_until}
    )


async def load_lease(request: web.Request) -> web.Response:
    """Renew the running load's lease: ``{"lease_s": 3}``; 409 when no load runs."""
    c = _controls(request)
    lease_s = _lease_s(await _body(request))
    if lease_s is None:
        raise _bad("lease_s: required")
    await _refuse_if_policy_failed(c)
    if not c.load.running:
        raise web.HTTPConflict(
            text=json.dumps({"error": "no load is running", **c.load.status()}),
            content_type="application/json",
        )
    return web.json_response({"lease_until": c.load.lease(lease_s)})


async def load_stop(request: web.Request) -> web.Response:
    c = _controls(request)
    await c.load.stop()
    return web.json_response({"stopped": c.clock.monotonic(), **c.load.status()})


async def load_patch(request: web.Request) -> web.Response:
    c = _controls(request)
    data = await _body(request)
    unknown = set(data) - {"rate", "payload_bytes"}
    if unknown:
        raise _bad(f"only rate and payload_bytes can change; not {', '.join(sorted(unknown))}")
    current = c.load.spec
    if current is None:
        raise web.HTTPConflict(
            text=json.dumps({"error": "no load has been started"}),
            content_type="application/json",
        )
    try:
        checked = LoadSpec.from_json(data, base=current)  # validates the new values
    except SettingsError as exc:
        raise _bad(str(exc)) from None
    spec = c.load.patch(
        rate=checked.rate if "rate" in data else None,
        payload_bytes=checked.payload_bytes if "payload_bytes" in data else None,
    )
    return web.json_response({"spec": spec.to_json(), **c.load.status()})


async def load_status(request: web.Request) -> web.Response:
    return web.json_response(_controls(request).load.status())


async def history(request: web.Request) -> web.Response:
    return _page(request, _controls(request).recorder.requests, "records", request_to_json)


async def events(request: web.Request) -> web.Response:
    return _page(request, _controls(request).recorder.events, "events", event_to_json)


def _page(
    request: web.Request, ring: Ring[T], key: str, to_json: Callable[[T], dict[str, Any]]
) -> web.Response:
    """One page of ``ring`` from the query's ``cursor`` (``limit`` at most), as ``key``."""
    page = ring.page(
        _int_query(request, "cursor", 0, 2**63), _int_query(request, "limit", 1000, MAX_PAGE)
    )
    return web.json_response(
        {key: [to_json(r) for r in page.records], "cursor": page.cursor, "dropped": page.dropped}
    )


async def peers(request: web.Request) -> web.Response:
    c = _controls(request)
    return web.json_response(
        {
            "t": c.clock.monotonic(),
            "policy": c.policy,
            "peers": [p.to_json() for p in c.policy_side.peers()],
        }
    )


async def oracle_put(request: web.Request) -> web.Response:
    c = _controls(request)
    data = await _body(request)
    faulty = data.get("faulty")
    if not isinstance(faulty, list) or not all(
        isinstance(p, str) and 0 < len(p) <= MAX_PEER_NAME for p in faulty
    ):
        raise _bad('faulty: expected a list of "host:port" strings')
    if len(faulty) > MAX_FAULTY:
        raise _bad(f"faulty: at most {MAX_FAULTY} peers")
    c.policy_side.set_faulty(faulty)
    return web.json_response(
        {"faulty": list(c.policy_side.faulty()), "applies": c.policy == "oracle"}
    )


async def oracle_get(request: web.Request) -> web.Response:
    c = _controls(request)
    return web.json_response(
        {"faulty": list(c.policy_side.faulty()), "applies": c.policy == "oracle"}
    )


async def gossip_put(request: web.Request) -> web.Response:
    c = _controls(request)
    enabled = (await _body(request)).get("enabled")
    if not isinstance(enabled, bool):
        raise _bad("enabled: expected true or false")
    c.policy_side.set_gossip(enabled)
    return web.json_response({"enabled": c.policy_side.gossip_enabled()})


async def gossip_get(request: web.Request) -> web.Response:
    return web.json_response({"enabled": _controls(request).policy_side.gossip_enabled()})


def add_routes(app: web.Application) -> None:
    """Mount the control API on ``app`` (which must hold :data:`CONTROLS`)."""
    app.router.add_routes(
        [
            web.get("/health", health),
            web.get("/metrics", metrics),
            web.get("/clock", clock),
            web.post("/load/start", load_start),
            web.post("/load/stop", load_stop),
            web.post("/load/lease", load_lease),
            web.patch("/load", load_patch),
            web.get("/load", load_status),
            web.get("/history", history),
            web.get("/events", events),
            web.get("/peers", peers),
            web.put("/oracle", oracle_put),
            web.get("/oracle", oracle_get),
            web.put("/gossip", gossip_put),
            web.get("/gossip", gossip_get),
        ]
    )
