"""Is the stack ready: every task running, every service healthy, every client seeing
every worker. A poll with a deadline whose failure names the services that are not.

Why these three: a task Swarm calls running may still be starting its event loop (so
health is asked from the host, on the control address the service's labels name, as on
Compose: lab.stack.health.probe); Toxiproxy is judged by its API and its proxies; and a
lab whose grapes do not find each other across nodes would run every scenario on a
partial view, so the last step is discovery itself: each client's ``/peers`` holds the
address every worker announces (``toxiproxy:2100<i>``). A task that failed (no image on
its node, a refused mount) fails the wait at once with Swarm's own error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from lab.errors import RuntimeUnavailable
from lab.lab_client import http_json
from lab.stack import health, toxiapi
from lab.swarm.tasks import DOWN, KIND_LABEL, Swarm, Task

CONTROL_LABEL = "com.grenache-lab.control"
HEALTH_LABEL = "com.grenache-lab.health"
ANNOUNCE_LABEL = "com.grenache-lab.announce"
PROXY_LABEL = "com.grenache-lab.proxy"


@dataclass(frozen=True, slots=True)
class Verdict:
    """One service's readiness now: ``ok`` or why not, in a few words."""

    service: str
    ok: bool
    why: str = ""


def judge(tasks: Mapping[str, Task], wanted: Sequence[str]) -> dict[str, Verdict]:
    """Every wanted service's verdict: task state first, then its health from the host."""
    out: dict[str, Verdict] = {}
    probes: dict[str, str] = {}
    for name in wanted:
        t = tasks.get(name)
        if t is None:
            out[name] = Verdict(name, False, "no such service in the stack")
        elif not t.running:
            err = f": {t.error}" if t.error else ""
            out[name] = Verdict(name, False, f"task {t.state}{err}")
        elif t.labels.get(KIND_LABEL) == "toxiproxy":
            out[name] = _toxiproxy(t, tasks)
        elif HEALTH_LABEL in t.labels and CONTROL_LABEL in t.labels:
            probes[name] = f"{t.labels[CONTROL_LABEL]}{t.labels[HEALTH_LABEL]}"
        else:
            out[name] = Verdict(name, True)
    if probes:
        with ThreadPoolExecutor(max_workers=len(probes)) as pool:
            answers = dict(zip(probes, pool.map(health.probe, probes.values()), strict=True))
        for name, (ok, detail) in answers.items():
            out[name] = Verdict(name, ok, "" if ok else detail)
    return out


def _toxiproxy(t: Task, tasks: Mapping[str, Task]) -> Verdict:
    wanted = {x.labels[PROXY_LABEL] for x in tasks.values() if PROXY_LABEL in x.labels}
    try:
        found = {p.name for p in toxiapi.proxies(f"http://{t.labels[CONTROL_LABEL]}", 1.0)}
    except (RuntimeUnavailable, KeyError) as exc:
        return Verdict(t.service, False, f"API down ({exc})"[:160])
    missing = sorted(wanted - found)
    return Verdict(
        t.service, not missing, f"proxies missing: {', '.join(missing)}" if missing else ""
    )


def discovery_gaps(tasks: Mapping[str, Task]) -> dict[str, str]:
    """Clients whose ``/peers`` is not exactly the workers' announced addresses: why."""
    peers = {t.labels[ANNOUNCE_LABEL] for t in tasks.values() if ANNOUNCE_LABEL in t.labels}
    out: dict[str, str] = {}
    for name, t in tasks.items():
        if t.labels.get(KIND_LABEL) != "client" or CONTROL_LABEL not in t.labels:
            continue
        try:
            answer = http_json("GET", f"http://{t.labels[CONTROL_LABEL]}/peers", timeout=2.0)
            seen = {str(p["peer"]) for p in answer["peers"]}
        except (RuntimeUnavailable, KeyError, TypeError) as exc:
            out[name] = f"/peers: {exc}"[:160]
            continue
        if seen != peers:
            out[name] = f"sees {sorted(seen)}, not {sorted(peers)}"
    return out


def wait_ready(
    swarm: Swarm,
    wanted: Sequence[str],
    timeout: float,
    log: Callable[[str], None] = lambda _m: None,
    interval: float = 0.5,
) -> float:
    """Poll until every wanted service is ready and discovery is whole; the seconds taken.

    Raises RuntimeUnavailable at once when a task failed, else at the deadline, naming
    each service that is not ready and why.
    """
    t0 = time.monotonic()
    deadline = t0 + timeout
    last = -1
    while True:
        tasks = swarm.tasks()
        dead = [t for n, t in tasks.items() if n in wanted and t.state in DOWN]
        if dead:
            raise RuntimeUnavailable(
                "; ".join(f"{t.service} {t.state} on {t.node}: {t.error or '?'}" for t in dead)
                + " (see `docker -H <node> service ps --no-trunc lab_<service>`)"
            )
        verdicts = judge(tasks, wanted)
        bad = [v for v in verdicts.values() if not v.ok]
        if not bad:
            gaps = discovery_gaps(tasks)
            if not gaps:
                return time.monotonic() - t0
            bad = [Verdict(n, False, why) for n, why in gaps.items()]
        if len(bad) != last:
            log(
                f"swarm: {len(wanted) - len(bad)}/{len(wanted)} ready; waiting for "
                + ", ".join(v.service for v in bad)
            )
            last = len(bad)
        if time.monotonic() >= deadline:
            raise RuntimeUnavailable(
                f"the swarm stack is not ready after {timeout:.0f}s: "
                + "; ".join(f"{v.service}: {v.why}" for v in bad)
            )
        time.sleep(interval)
