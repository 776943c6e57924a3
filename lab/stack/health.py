"""Waiting until the lab is healthy: a poll with a deadline, probing from the host.

Why from the host and not Docker healthchecks: an in-container probe is a ``docker exec``
(runc, a new process, for Python ~20 ms of CPU) every interval in each of a dozen
containers, and on 2 cores those probes were the periodic clusters of slow requests the
lab measured in itself (every ~3.4 s, all policies at once). Each Python service
publishes its health endpoint on 127.0.0.1 and names its path in the
``com.grenache-lab.health`` label, so the host asks it only when someone wants to know
(``lab up``, ``lab status``, the scenario engine before a run) and never during a
measurement. A container that does have a Docker healthcheck (an image of yours) is
judged by Docker's verdict. Toxiproxy (FROM scratch) is judged by its own CLI healthcheck
(``toxiproxy-cli inspect worker-3``: no shell in its image) and from the host by its API:
running, and its proxies present. A container that exits fails the wait at once with its
last log lines, never after the deadline.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import docker.errors

from lab.errors import RuntimeUnavailable
from lab.stack import toxiapi
from lab.stack.engine import CONTROL_LABEL, Engine, service_name

HEALTH_LABEL = "com.grenache-lab.health"
"""The path of a service's health endpoint on its published control address."""

PROBE_TIMEOUT = 1.0
"""Seconds one host probe may take: a paused container must not stall ``lab status``."""


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
    probes: dict[str, str] = {}
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
        labels = c.labels or {}
        if health is None and out[name].state == "running" and HEALTH_LABEL in labels:
            probes[name] = f"{labels.get(CONTROL_LABEL, '')}{labels[HEALTH_LABEL]}"
    if probes:
        with ThreadPoolExecutor(max_workers=len(probes)) as pool:
            verdicts = dict(zip(probes, pool.map(probe, probes.values()), strict=True))
        for name, (ok, detail) in verdicts.items():
            verdict = "healthy" if ok else "unhealthy"
            out[name] = replace(out[name], health=verdict, detail="" if ok else detail)
    if "toxiproxy" in out and out["toxiproxy"].state == "running":
        out["toxiproxy"] = _toxiproxy_state(out["toxiproxy"])
    return out


def probe(target: str, timeout: float = PROBE_TIMEOUT) -> tuple[bool, str]:
    """``GET http://<target>`` from the host (``target`` = ``host:port/path``): 2xx or why not."""
    address, _, path = target.partition("/")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return False, f"no control address to probe ({target!r})"
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", "/" + path)
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return False, f"{target}: {type(exc).__name__}: {exc}"[:160]
    finally:
        conn.close()
    return (200 <= status < 300), f"{target}: HTTP {status}"


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
