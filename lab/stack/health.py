"""Waiting until the lab is healthy: a poll with a deadline over Docker's own health states.

Why Docker's health and not our own probes: compose.yaml's healthchecks run inside each
container against the service's health endpoint, so "healthy" means the same thing to
``lab up``, ``docker ps`` and the scenario engine. Toxiproxy's own healthcheck is its
CLI (``toxiproxy-cli inspect worker-3``: no shell in its image); it is also judged from
the host by its API (running, and every proxy present), which is what the host reaches.
A container that exits fails the wait at once with its last log lines, never after the
deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import docker.errors

from lab.errors import RuntimeUnavailable
from lab.stack import toxiapi
from lab.stack.engine import Engine, service_name


@dataclass(frozen=True)
class ServiceState:
    """One Compose service as seen now: container state and health in Docker's words."""

    service: str
    state: str  # missing | created | running | exited | paused | restarting | dead
    health: str  # healthy | unhealthy | starting | none | proxies-missing | api-down
    exit_code: int | None = None
    detail: str = ""

    @property
    def ready(self) -> bool:
        return self.state == "running" and self.health in {"healthy", "none"}


def states(engine: Engine, services: Sequence[str]) -> dict[str, ServiceState]:
    """The state of every expected service (``missing`` when it has no container)."""
    found = {service_name(c): c for c in engine.containers(all=True)}
    out: dict[str, ServiceState] = {}
    for name in services:
        c = found.get(name)
        if c is None:
            out[name] = ServiceState(name, "missing", "none")
            continue
        st: dict[str, Any] = c.attrs.get("State") or {}
        health: dict[str, Any] | None = st.get("Health")
        detail = ""
        if health and health.get("Log"):
            detail = str(health["Log"][-1].get("Output", "")).strip()[:160]
        out[name] = ServiceState(
            service=name,
            state=str(st.get("Status", "unknown")),
            health=str(health.get("Status")) if health else "none",
            exit_code=int(st["ExitCode"]) if st.get("Status") in {"exited", "dead"} else None,
            detail=detail,
        )
    if "toxiproxy" in out and out["toxiproxy"].state == "running":
        out["toxiproxy"] = _toxiproxy_state(out["toxiproxy"])
    return out


def _toxiproxy_state(s: ServiceState) -> ServiceState:
    if s.health == "unhealthy":  # its own healthcheck fails: that stands
        return s
    try:
        missing = toxiapi.missing_proxies(toxiapi.proxies(timeout=1.0))
    except RuntimeUnavailable as exc:
        return ServiceState(s.service, s.state, "api-down", detail=str(exc)[:160])
    if missing:
        return ServiceState(s.service, s.state, "proxies-missing", detail=", ".join(missing))
    return ServiceState(s.service, s.state, "healthy")


def wait_healthy(
    engine: Engine,
    services: Sequence[str],
    timeout: float,
    log: Callable[[str], None] = print,
    interval: float = 0.5,
) -> dict[str, ServiceState]:
    """Poll until every service is ready; raise at once when one exits, else at the deadline."""
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    last_ready = -1
    while True:
        now = states(engine, services)
        dead = [s for s in now.values() if s.state in {"exited", "dead"}]
        if dead:
            lines = 3 if len(dead) == 1 else 1  # several dead: one line each stays readable
            raise RuntimeUnavailable(
                "; ".join(
                    f"{s.service} exited with code {s.exit_code}: "
                    f"{last_logs(engine, s.service, lines)}"
                    for s in dead
                )
                + " (see `lab logs SERVICE`)"
            )
        ready = [s for s in now.values() if s.ready]
        if len(ready) == len(services):
            log(f"health: all {len(services)} services healthy after {time.monotonic() - t0:.1f}s")
            return now
        if len(ready) != last_ready:
            waiting = [s.service for s in now.values() if not s.ready]
            log(f"health: {len(ready)}/{len(services)} healthy; waiting for {', '.join(waiting)}")
            last_ready = len(ready)
        if time.monotonic() >= deadline:
            bad = [s for s in now.values() if not s.ready]
            raise RuntimeUnavailable(
                f"not healthy after {timeout:.0f}s: "
                + "; ".join(
                    f"{s.service} {s.state}/{s.health}" + (f" ({s.detail})" if s.detail else "")
                    for s in bad
                )
                + " (see `lab logs SERVICE`)"
            )
        time.sleep(interval)


def last_logs(engine: Engine, service: str, lines: int = 3) -> str:
    """The last few log lines of a service's container, on one line (for error messages)."""
    for c in engine.containers(all=True):
        if service_name(c) == service:
            try:
                text = c.logs(tail=lines).decode(errors="replace").strip()
            except docker.errors.DockerException:  # it may vanish meanwhile; logs are optional
                return "(no logs)"
            return " | ".join(text.splitlines()) or "(no output)"
    return "(no container)"
