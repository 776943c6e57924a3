"""Bringing the Compose lab to a scenario's shape for a run, and back to compose.yaml's.

compose.yaml declares the base lab (3 grapes, 3 workers, 5 clients) and, under the
``policies`` profile, one client per field policy (least_request, peak_ewma, prequal,
c3), and under the ``byo`` profile ``client-byo``, the client that runs a learner's
policy from ``policies/``. A run may need more workers or grapes, some profiled clients,
the learner's client, or workers with a concurrency bound: its :class:`Shape`. What
compose.yaml does not declare (worker-4..., grape-4...) is generated as a Compose
override from the base services' own interpolated definitions (``docker compose
config``), so every extra container is hardened, labelled and limited exactly like its
siblings; it gets the next fixed address, host port and
Toxiproxy proxy (created through Toxiproxy's API, since the proxies in
images/toxiproxy/toxiproxy.json are the base three).

Why reconcile rather than undo: :func:`apply` makes the lab exactly the wanted shape
whatever it finds (containers beyond the shape removed, missing ones started, proxies
of absent workers deleted, worker settings changed by recreating the container), so
restoring is ``apply(BASE)`` and a run killed before it restored is corrected by the
next run's own apply. The shape is reached when every client sees exactly the shape's
workers in discovery, so a run never starts while a removed worker's announce lingers
or an added one is not yet announced.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker.errors

from lab.errors import RuntimeUnavailable
from lab.lab_client import http_json
from lab.stack import gossip_key, health
from lab.stack.engine import Engine, service_name

PROFILE = "policies"
"""compose.yaml's profile of the clients that run only when a scenario names them."""
BYO_PROFILE = "byo"
"""compose.yaml's profile of ``client-byo`` (a profile of its own: ``docker compose
--profile policies up`` starts the field's clients without a learner's one)."""
BYO_SERVICE = "client-byo"
"""The service that runs a learner's policy (lab.scenario.plan.byo says which may run)."""
BYO_POLICY_ENV = "LAB_BYO_POLICY"
BYO_NAME_ENV = "LAB_BYO_NAME"
"""What compose.yaml interpolates into client-byo: the policy and the client's name."""
BASE_GRAPES = 3
BASE_WORKERS = 3
MAX_WORKERS = 16
"""Worker i lives at 10.231.0.(20+i), control 127.0.0.1:(9100+i), proxy port 21000+i:
16 keeps them clear of the subnet's dynamic half (.128/25) and of each other."""
MAX_GRAPES = 8
OVERRIDE_FILE = "shape.compose.json"
"""The generated override, under the lab's .cache/ (written on every apply)."""
CONCURRENCY_ENV = "LAB_WORKER_CONCURRENCY"
PROXY_TIMEOUT_S = 20.0
"""Toxiproxy's API on a host at load average 20+ took over 5 s to delete a proxy."""
LOOKUP_WAIT_S = 45.0
"""A removed worker leaves discovery after the grapes' 5 s peer age and the clients' 10 s
grace (lab/balancer/client.py); 45 s leaves room on a loaded host."""


@dataclass(frozen=True, slots=True)
class Byo:
    """The learner's client of a run: its name and policy as the scenario wrote them.

    Both reach the client by environment (:func:`byo_env`), so its records, the report's
    rows and the expectations carry the scenario's names, not the service's.
    """

    name: str
    policy: str


@dataclass(frozen=True, slots=True)
class Shape:
    """What the lab runs: counts, the profiled clients wanted, the workers' concurrency."""

    grapes: int = BASE_GRAPES
    workers: int = BASE_WORKERS
    clients: tuple[str, ...] = ()  # profiled client services to run (the base ones always run)
    worker_concurrency: int = 0  # 0: no bound (compose.yaml's workers as declared)
    byo: Byo | None = None  # the learner's client (client-byo), if the run has one

    def __post_init__(self) -> None:
        if not BASE_GRAPES <= self.grapes <= MAX_GRAPES:
            raise ValueError(f"grapes: {BASE_GRAPES}..{MAX_GRAPES} on Compose, not {self.grapes}")
        if not 1 <= self.workers <= MAX_WORKERS:
            raise ValueError(f"workers: 1..{MAX_WORKERS} on Compose, not {self.workers}")
        if self.worker_concurrency < 0:
            raise ValueError(f"worker_concurrency: >= 0, not {self.worker_concurrency}")

    def peers(self) -> set[str]:
        """The addresses the shape's workers announce (clients must see exactly these)."""
        return {f"toxiproxy:{21000 + i}" for i in range(1, self.workers + 1)}


BASE = Shape()


def worker_address(index: int) -> str:
    return f"10.231.0.{20 + index}"


# -- the override -----------------------------------------------------------------------


def _set_flag(command: list[str], flag: str, value: str) -> list[str]:
    """``--flag=value`` in place of the command's ``--flag=...`` (which must be there)."""
    out, found = [], False
    for item in command:
        if item.startswith(f"{flag}="):
            out.append(f"{flag}={value}")
            found = True
        else:
            out.append(item)
    if not found:
        raise RuntimeUnavailable(f"compose.yaml: the command {command[:3]} has no {flag}=")
    return out


def _published(ports: Sequence[Mapping[str, Any]], port: int) -> list[dict[str, Any]]:
    if len(ports) != 1:
        raise RuntimeUnavailable(f"compose.yaml: expected one published port, found {len(ports)}")
    return [{**ports[0], "published": str(port)}]


def _labels(base: Mapping[str, str], index: int, control: str, **extra: str) -> dict[str, str]:
    return {
        **base,
        "com.grenache-lab.index": str(index),
        "com.grenache-lab.control": control,
        **{f"com.grenache-lab.{k}": v for k, v in extra.items()},
    }


def extra_worker(template: Mapping[str, Any], index: int, concurrency: int) -> dict[str, Any]:
    """worker-<index> cloned from a base worker's interpolated definition."""
    svc = copy.deepcopy(dict(template))
    cmd = list(svc["command"])
    cmd = _set_flag(cmd, "--name", f"worker-{index}")
    cmd = _set_flag(cmd, "--announce-port", str(21000 + index))
    svc["command"] = _set_flag(cmd, "--seed", str(index))
    svc["ports"] = _published(svc.get("ports") or [], 9100 + index)
    svc["networks"] = {"lab": {"ipv4_address": worker_address(index)}}
    svc["labels"] = _labels(
        svc.get("labels") or {},
        index,
        f"127.0.0.1:{9100 + index}",
        proxy=f"worker-{index}",
        announce=f"toxiproxy:{21000 + index}",
    )
    env = dict(svc.get("environment") or {})
    if concurrency:
        env[CONCURRENCY_ENV] = str(concurrency)
    svc["environment"] = env
    svc.pop("container_name", None)
    return svc


def extra_grape(template: Mapping[str, Any], index: int) -> dict[str, Any]:
    """grape-<index> cloned from a base grape, bootstrapping from grape-1..3."""
    svc = copy.deepcopy(dict(template))
    boot = ",".join(f"grape-{i}:20001" for i in range(1, BASE_GRAPES + 1))
    svc["command"] = _set_flag(list(svc["command"]), "--bootstrap", boot)
    svc["ports"] = _published(svc.get("ports") or [], 30000 + index)
    svc["labels"] = _labels(svc.get("labels") or {}, index, f"127.0.0.1:{30000 + index}")
    svc.pop("container_name", None)
    return svc


def override(model: Mapping[str, Any], shape: Shape) -> dict[str, Any]:
    """The Compose override that adds the shape's services beyond compose.yaml's."""
    services: Mapping[str, Any] = model["services"]
    out: dict[str, Any] = {}
    for i in range(BASE_GRAPES + 1, shape.grapes + 1):
        out[f"grape-{i}"] = extra_grape(services[f"grape-{BASE_GRAPES}"], i)
    for i in range(1, shape.workers + 1):
        if i > BASE_WORKERS:
            out[f"worker-{i}"] = extra_worker(
                services[f"worker-{BASE_WORKERS}"], i, shape.worker_concurrency
            )
        elif shape.worker_concurrency:  # environment merges by key: only the bound changes
            out[f"worker-{i}"] = {"environment": {CONCURRENCY_ENV: str(shape.worker_concurrency)}}
    return {"services": out}


def wanted_services(model: Mapping[str, Any], shape: Shape) -> list[str]:
    """Every service the shape runs: the base ones within its counts, extras, named clients."""
    out: list[str] = []
    for name, svc in model["services"].items():
        kind, _, idx = name.rpartition("-")
        if svc.get("profiles"):
            if name in shape.clients or (name == BYO_SERVICE and shape.byo is not None):
                out.append(name)
            continue
        if kind == "worker" and idx.isdigit() and int(idx) > shape.workers:
            continue
        out.append(name)
    out += [f"grape-{i}" for i in range(BASE_GRAPES + 1, shape.grapes + 1)]
    out += [f"worker-{i}" for i in range(BASE_WORKERS + 1, shape.workers + 1)]
    return sorted(set(out))


# -- applying it ------------------------------------------------------------------------


def profile_args() -> list[str]:
    """Every profile of compose.yaml, so Compose sees (and can start) every service."""
    return ["--profile", PROFILE, "--profile", BYO_PROFILE]


def byo_env(shape: Shape) -> dict[str, str]:
    """The variables compose.yaml interpolates into client-byo for this shape (none without)."""
    if shape.byo is None:
        return {}
    return {BYO_POLICY_ENV: shape.byo.policy, BYO_NAME_ENV: shape.byo.name}


def up_args(override_file: Path | None, wanted: Sequence[str]) -> list[str]:
    """``docker compose`` arguments that start exactly ``wanted`` (never a build or a pull)."""
    files = ["-f", str(override_file)] if override_file is not None else []
    return [
        *files,
        *profile_args(),
        "up",
        "--detach",
        "--no-build",
        "--pull",
        "never",
        *wanted,
    ]


def compose_model(engine: Engine, shape: Shape = BASE) -> dict[str, Any]:
    """compose.yaml interpolated, profiled services included, as Compose itself reads it."""
    argv = [*profile_args(), "config", "--format", "json"]
    out = engine.compose(*argv, env=byo_env(shape)).stdout
    model: dict[str, Any] = json.loads(out)
    return model


def _toxiproxy_api(engine: Engine) -> str:
    for c in engine.containers(all=True):
        if service_name(c) == "toxiproxy":
            control = (c.labels or {}).get("com.grenache-lab.control")
            if control:
                return f"http://{control}"
    raise RuntimeUnavailable("the Compose lab is not up (run `lab up` first)")


def _sync_proxies(api: str, shape: Shape) -> list[str]:
    """Proxies for worker-4..N present, those of workers beyond the shape gone."""
    done: list[str] = []
    found = http_json("GET", f"{api}/proxies", timeout=PROXY_TIMEOUT_S)
    if not isinstance(found, dict):
        raise RuntimeUnavailable(f"GET {api}/proxies answered {found!r:.80}")
    pattern = re.compile(r"^worker-(\d+)$")
    for name in sorted(found):
        m = pattern.match(name)
        if m and int(m.group(1)) > max(shape.workers, BASE_WORKERS):
            http_json("DELETE", f"{api}/proxies/{name}", timeout=PROXY_TIMEOUT_S)
            done.append(f"deleted proxy {name}")
    for i in range(BASE_WORKERS + 1, shape.workers + 1):
        name = f"worker-{i}"
        if name not in found:
            body = {
                "name": name,
                "listen": f"0.0.0.0:{21000 + i}",
                "upstream": f"{worker_address(i)}:1337",
                "enabled": True,
            }
            http_json("POST", f"{api}/proxies", body, timeout=PROXY_TIMEOUT_S)
            done.append(f"created proxy {name}")
    return done


def _remove_unwanted(engine: Engine, model: Mapping[str, Any], wanted: set[str]) -> list[str]:
    """Remove what the shape does not run, and any client-byo: a run's learner client is
    always a fresh container, since its policy file is read when it starts (a container
    left by a killed run may hold an older edit, or a policy that already failed)."""
    done: list[str] = []
    pattern = re.compile(r"^(worker|grape)-(\d+)$")
    profiled = {n for n, s in model["services"].items() if s.get("profiles")}
    for c in engine.containers(all=True):
        name = service_name(c)
        fresh = name == BYO_SERVICE
        if not fresh and (name in wanted or not (pattern.match(name) or name in profiled)):
            continue
        try:
            c.remove(force=True)
        except docker.errors.NotFound:
            continue
        except docker.errors.DockerException as exc:
            raise RuntimeUnavailable(f"cannot remove {name} to shape the lab: {exc}") from exc
        done.append(f"removed {name}")
    return done


def _clients_see(engine: Engine, peers: set[str], timeout: float) -> None:
    """Poll until every running client sees exactly ``peers`` in discovery."""
    urls = []
    for c in engine.containers(all=False):
        labels = c.labels or {}
        if labels.get("com.grenache-lab.service") == "client" and labels.get(
            "com.grenache-lab.control"
        ):
            urls.append((service_name(c), f"http://{labels['com.grenache-lab.control']}/peers"))
    deadline = time.monotonic() + timeout
    pending = dict(urls)
    last: dict[str, set[str]] = {}
    while pending:
        for name, url in list(pending.items()):
            try:
                seen = {str(p["peer"]) for p in http_json("GET", url, timeout=2.0)["peers"]}
            except (RuntimeUnavailable, KeyError, TypeError):
                continue
            last[name] = seen
            if seen == peers:
                del pending[name]
        if not pending:
            return
        if time.monotonic() >= deadline:
            name = sorted(pending)[0]
            seen = last.get(name, set())
            raise RuntimeUnavailable(
                f"shape: {name} does not see the shape's {len(peers)} workers after "
                f"{timeout:.0f}s (missing {sorted(peers - seen)}, extra {sorted(seen - peers)})"
            )
        time.sleep(0.25)


def apply(
    engine: Engine,
    shape: Shape,
    *,
    log: Callable[[str], None] = lambda _m: None,
    timeout: float = 120.0,
) -> list[str]:
    """Make the running lab exactly ``shape``; what was done, one line per change."""
    # the lab's gossip key, as `lab up` passes it: without it Compose would see every
    # client's environment changed and recreate them keyless
    engine.env = {**engine.env, **gossip_key.ensure(engine.paths)}
    model = compose_model(engine, shape)
    wanted = wanted_services(model, shape)
    extra = override(model, shape)
    path: Path = engine.paths.cache / OVERRIDE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(extra, indent=1, sort_keys=True))
    done = _remove_unwanted(engine, model, set(wanted))
    done += _sync_proxies(_toxiproxy_api(engine), shape)
    before = {service_name(c): c.id for c in engine.containers(all=True)}
    override_file = path if extra["services"] else None
    engine.compose(*up_args(override_file, wanted), env=byo_env(shape))
    after = {service_name(c): c.id for c in engine.containers(all=True)}
    done += [
        f"{'recreated' if n in before else 'started'} {n}"
        for n in sorted(after)
        if n in wanted and before.get(n) != after[n]
    ]
    try:
        health.wait_healthy(engine, wanted, timeout, log=log)
    except RuntimeUnavailable as exc:
        raise _byo_failed(engine, shape) or exc from None
    _clients_see(engine, shape.peers(), LOOKUP_WAIT_S)
    return done


BYO_LOG_LINES = 40
"""How much of client-byo's log a failed start shows: a policy's traceback, whole."""


def _byo_failed(engine: Engine, shape: Shape) -> RuntimeUnavailable | None:
    """client-byo's own words when it exited at start, else None.

    Its usual cause is the learner's file failing to import (the client prints the fault,
    ``file:line`` and the traceback, then exits): the few log lines of a generic health
    failure would cut the traceback off, so it is shown whole.
    """
    if shape.byo is None:
        return None
    for c in engine.containers(all=True):
        if service_name(c) != BYO_SERVICE or c.status not in ("exited", "dead"):
            continue
        try:
            text = c.logs(tail=BYO_LOG_LINES).decode(errors="replace").strip()
        except docker.errors.DockerException:
            text = "(no logs)"
        return RuntimeUnavailable(
            f"{BYO_SERVICE} ({shape.byo.name}, policy {shape.byo.policy}) exited at start:\n"
            f"{text}"
        )
    return None
