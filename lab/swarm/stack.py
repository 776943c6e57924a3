"""The Swarm stack, derived from compose.yaml's interpolated model: one topology, two engines.

Why derived and not a second file: compose.yaml is the lab's topology; a hand-kept
stack file would drift from it (a new flag, a label, a limit). :func:`derive_stack` takes
what ``docker compose config --format json`` prints and changes only what Swarm treats
differently (/work/shared/swarm-and-kernel-facts.md, checked on engine 20.10, CLI 28):

- converted: ``mem_limit`` -> ``deploy.resources.limits.memory``, ``pids_limit`` ->
  ``deploy.resources.limits.pids`` (API 1.41), the short ``tmpfs:`` -> a tmpfs volume
  (Swarm drops the short form silently and a read-only task then crash-loops), host-IP
  ports -> ``mode: host`` ports (published on the address of the node running the task:
  this kernel has no IPVS, so the routing mesh and virtual IPs fail), Toxiproxy's
  bind-mounted config -> a Swarm ``configs:`` entry named by a hash of its content
  (Swarm configs are immutable) whose upstreams are worker *names* (no fixed addresses);
- dropped, and lost: ``cpu_shares`` (Swarm has no CPU weights; no ``cpus`` quota either,
  for the reason compose.yaml gives), ``security_opt`` (``no-new-privileges``: Swarm
  ignores it; non-root, ``cap_drop: [ALL]`` and a read-only root remain), ``ipv4_address``
  and ipam (names instead), ``depends_on``, ``pull_policy`` (``--resolve-image never``),
  the top-level ``name`` (the stack's name is ``lab``), the ``policies/`` bind mount (a
  host path need not exist on every node: ``client-byo`` is not offered on Swarm);
- changed: a healthcheck's interval, 5 s (:data:`HEALTH_INTERVAL`: Swarm leaves a task
  out of DNS until its first check passed);
- added: ``endpoint_mode: dnsrr`` (no IPVS), ``restart_policy: none`` (a kill the lab
  injects must stick until the scenario heals it), small reservations (0.05 CPU each: 30
  services fit 2 cores even on one node) and one node per service.

Why pinned to nodes rather than ``placement.preferences: spread``: a preference spreads
the replicas *of one service*, and every lab service has one replica, so it spreads
nothing; Swarm's own least-loaded choice is not reproducible. A fixed constraint per
service (round robin over the nodes, workers on different nodes) makes a killed task's
replacement come back on the same node, at the same control address.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lab.errors import RuntimeUnavailable
from lab.stack import shape

STACK_VERSION = "3.9"
"""The compose file format ``docker stack deploy`` reads: 3.9 has ``limits.pids``."""
NETWORK = "lab"
NETWORK_LABEL = "com.grenache-lab.network"
TOXIPROXY_CONFIG = "toxiproxy"
CONFIG_TARGET = "/config/toxiproxy.json"
WORKER_PORT = 1337
PROXY_BASE = 21000
HEALTH_INTERVAL = "5s"
"""A Docker healthcheck's interval on Swarm (compose.yaml's Toxiproxy: 30 s). Swarm keeps a
task ``starting``, out of the service's DNS, until its first check passed, and Docker 20.10
runs that check one interval after the start: 30 s of ``toxiproxy`` not resolving after
every (re)start (measured: every client's requests failed with gaierror for the first 19 s
of a run). One Go CLI exec every 5 s is the price."""
RESERVED_CPUS = "0.05"
RESERVED_MEMORY = 32 * 1024**2
MAX_WORKERS = 64
"""Worker i: control port 9100+i, proxy port 21000+i; no subnet bounds them on Swarm."""
MAX_GRAPES = 16
BYO = "client-byo"

KEPT = frozenset(
    {
        "image",
        "command",
        "entrypoint",
        "environment",
        "user",
        "read_only",
        "cap_drop",
        "cap_add",
        "init",
        "stop_grace_period",
        "stop_signal",
        "healthcheck",
        "labels",
        "logging",
        "working_dir",
    }
)
"""Service keys Swarm honours as Compose writes them."""
CONVERTED = frozenset({"mem_limit", "pids_limit", "tmpfs", "ports", "volumes", "networks"})
DROPPED = frozenset(
    {
        "cpu_shares",
        "cpus",
        "security_opt",
        "depends_on",
        "pull_policy",
        "container_name",
        "profiles",
        "restart",
    }
)

LOSSES = (
    "cpu_shares: Swarm has no CPU weights; every task weighs the same under contention",
    "security_opt no-new-privileges: Swarm ignores it (non-root, cap_drop ALL, "
    "read-only root remain)",
    "fixed addresses: Toxiproxy's upstreams are worker names (worker-2:1337)",
    "ports on 127.0.0.1: mode-host ports listen on each node's addresses",
    "client-byo: the policies/ bind mount needs the path on every node",
)
"""What the lab's Compose hardening or topology gives up on Swarm, said by ``lab up``."""


class Node(Protocol):
    """What placement needs of a Swarm node (lab.swarm.state.SwarmNode has more)."""

    @property
    def name(self) -> str: ...

    @property
    def address(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Counts:
    """How many of each the stack runs; ``clients`` are those beyond compose.yaml's base.

    A client named here is either one of compose.yaml's profiled clients
    (``client-c3``) or ``client-<declared>-<k>`` (``client-random-2``), cloned from the
    declared client with the next index, control port and seed.
    """

    grapes: int = shape.BASE_GRAPES
    workers: int = shape.BASE_WORKERS
    clients: tuple[str, ...] = ()
    worker_concurrency: int = 0

    def __post_init__(self) -> None:
        if not shape.BASE_GRAPES <= self.grapes <= MAX_GRAPES:
            raise ValueError(f"grapes: {shape.BASE_GRAPES}..{MAX_GRAPES}, not {self.grapes}")
        if not 1 <= self.workers <= MAX_WORKERS:
            raise ValueError(f"workers: 1..{MAX_WORKERS}, not {self.workers}")


def config_name(content: str) -> str:
    """The Swarm config's name: its content's hash (a changed config is a new config)."""
    return f"lab_toxiproxy-{hashlib.sha256(content.encode()).hexdigest()[:12]}"


def toxiproxy_config(workers: int) -> str:
    """Toxiproxy's ``-config``: one proxy per worker, upstream by the worker's name."""
    proxies = [
        {
            "name": f"worker-{i}",
            "listen": f"0.0.0.0:{PROXY_BASE + i}",
            "upstream": f"worker-{i}:{WORKER_PORT}",
            "enabled": True,
        }
        for i in range(1, workers + 1)
    ]
    return json.dumps(proxies, indent=1) + "\n"


def derive_stack(
    model: Mapping[str, Any],
    nodes: Sequence[Node],
    counts: Counts = Counts(),
    config_dir: Path = Path("."),
) -> dict[str, Any]:
    """The stack file (as a dict) for ``docker stack deploy``; nothing is written.

    ``config_dir`` is where the deployer writes :func:`toxiproxy_config` (under the
    file name this stack refers to). Raises RuntimeUnavailable naming what cannot be
    derived (a client that cannot be cloned, a service key of unknown Swarm meaning).
    """
    if not nodes:
        raise RuntimeUnavailable("a Swarm stack needs at least one node")
    services = _selected(model["services"], counts)
    placed = _placement([n for n in services], nodes)
    content = toxiproxy_config(counts.workers)
    name = config_name(content)
    out = {name_: swarm_service(name_, svc, placed[name_]) for name_, svc in services.items()}
    if "toxiproxy" in out:
        out["toxiproxy"]["configs"] = [
            {"source": TOXIPROXY_CONFIG, "target": CONFIG_TARGET, "mode": 0o444}
        ]
    labels = dict((model.get("networks") or {}).get(NETWORK, {}).get("labels") or {})
    return {
        "version": STACK_VERSION,
        "services": out,
        "networks": {
            NETWORK: {
                "driver": "overlay",
                "attachable": True,
                "labels": {NETWORK_LABEL: NETWORK, **labels},
            }
        },
        "configs": {TOXIPROXY_CONFIG: {"name": name, "file": str(config_dir / f"{name}.json")}},
    }


def _selected(declared: Mapping[str, Any], counts: Counts) -> dict[str, dict[str, Any]]:
    """compose.yaml's base services within the counts, plus the generated and named ones."""
    out: dict[str, dict[str, Any]] = {}
    for name, svc in declared.items():
        kind, _, idx = name.rpartition("-")
        if svc.get("profiles"):
            continue
        wanted = counts.workers if kind == "worker" else counts.grapes
        if kind in {"worker", "grape"} and idx.isdigit() and int(idx) > wanted:
            continue
        out[name] = copy.deepcopy(dict(svc))
    for i in range(shape.BASE_GRAPES + 1, counts.grapes + 1):
        out[f"grape-{i}"] = shape.extra_grape(declared[f"grape-{shape.BASE_GRAPES}"], i)
    for i in range(shape.BASE_WORKERS + 1, counts.workers + 1):
        out[f"worker-{i}"] = shape.extra_worker(declared["worker-1"], i, 0)
    if counts.worker_concurrency:
        for name in out:
            if name.startswith("worker-"):
                env = dict(out[name].get("environment") or {})
                env[shape.CONCURRENCY_ENV] = str(counts.worker_concurrency)
                out[name]["environment"] = env
    next_index = 1 + max(_index(s) for s in declared.values() if _kind(s) == "client")
    for name in counts.clients:
        if name in out:
            continue
        if name == BYO:
            raise RuntimeUnavailable(
                f"{BYO} is not offered on Swarm (it bind-mounts policies/ from the host); "
                "run a policy of yours with --runtime compose or local"
            )
        if name in declared:
            out[name] = copy.deepcopy(dict(declared[name]))
            continue
        base, _, k = name.rpartition("-")
        if not k.isdigit() or base not in declared or _kind(declared[base]) != "client":
            raise RuntimeUnavailable(
                f"client {name!r}: neither a client of compose.yaml nor "
                f"client-<declared>-<k> (e.g. client-random-2)"
            )
        out[name] = extra_client(declared[base], name, next_index)
        next_index += 1
    return out


def _kind(svc: Mapping[str, Any]) -> str:
    return str((svc.get("labels") or {}).get("com.grenache-lab.service", ""))


def _index(svc: Mapping[str, Any]) -> int:
    return int((svc.get("labels") or {}).get("com.grenache-lab.index", "0"))


def extra_client(template: Mapping[str, Any], name: str, index: int) -> dict[str, Any]:
    """Client ``name`` cloned from a declared one: same policy, next index, port and seed."""
    svc = copy.deepcopy(dict(template))
    port = 8500 + index
    svc["command"] = [
        f"--name={name}"
        if a.startswith("--name=")
        else f"--seed={10 + index}"
        if a.startswith("--seed=")
        else a
        for a in svc["command"]
    ]
    svc["ports"] = [{**p, "published": str(port)} for p in svc.get("ports") or []]
    svc["labels"] = {
        **(svc.get("labels") or {}),
        "com.grenache-lab.index": str(index),
        "com.grenache-lab.control": f"127.0.0.1:{port}",
    }
    return svc


def _placement(names: Sequence[str], nodes: Sequence[Node]) -> dict[str, Node]:
    """Round robin over the nodes in a fixed order: Toxiproxy, grapes, workers, clients.

    With 2+ nodes consecutive workers land on different nodes, so a worker's node fault
    never takes every worker, and each node carries a share of every kind.
    """
    order = {"toxiproxy": 0, "grape": 1, "worker": 2, "client": 3}

    def key(name: str) -> tuple[int, int, str]:
        kind, _, idx = name.rpartition("-")
        kind = kind or name
        return (order.get(kind.split("-")[0], 4), int(idx) if idx.isdigit() else 0, name)

    return {name: nodes[i % len(nodes)] for i, name in enumerate(sorted(names, key=key))}


def swarm_service(name: str, svc: Mapping[str, Any], node: Node) -> dict[str, Any]:
    """One Compose service as Swarm takes it, pinned to ``node``."""
    unknown = sorted(set(svc) - KEPT - CONVERTED - DROPPED)
    if unknown:
        raise RuntimeUnavailable(
            f"compose.yaml's {name} has {', '.join(unknown)}: lab/swarm/stack.py does not "
            "know what Swarm does with it (add it to KEPT, CONVERTED or DROPPED)"
        )
    out: dict[str, Any] = {k: copy.deepcopy(v) for k, v in svc.items() if k in KEPT}
    out = {k: v for k, v in out.items() if v is not None}
    if isinstance(out.get("healthcheck"), dict) and out["healthcheck"].get("interval"):
        out["healthcheck"] = {**out["healthcheck"], "interval": HEALTH_INTERVAL}
    labels = {str(k): str(v) for k, v in (svc.get("labels") or {}).items()}
    ports = [_host_port(p) for p in svc.get("ports") or []]
    if ports:
        out["ports"] = ports
        if "com.grenache-lab.control" in labels:
            port = labels["com.grenache-lab.control"].rpartition(":")[2]
            labels["com.grenache-lab.control"] = f"{node.address}:{port}"
    out["labels"] = labels
    out["networks"] = [NETWORK]
    volumes = [_tmpfs(t) for t in svc.get("tmpfs") or []]
    volumes += [v for v in svc.get("volumes") or [] if v.get("type") != "bind"]
    if volumes:
        out["volumes"] = volumes
    limits: dict[str, Any] = {}
    if svc.get("mem_limit"):
        limits["memory"] = str(svc["mem_limit"])
    if svc.get("pids_limit"):
        limits["pids"] = int(svc["pids_limit"])
    out["deploy"] = {
        "endpoint_mode": "dnsrr",
        "restart_policy": {"condition": "none"},
        "placement": {"constraints": [f"node.hostname == {node.name}"]},
        "resources": {
            "limits": limits,
            "reservations": {"cpus": RESERVED_CPUS, "memory": str(_reserved(svc))},
        },
        "labels": labels,
    }
    return out


def _reserved(svc: Mapping[str, Any]) -> int:
    limit = int(svc.get("mem_limit") or 0)
    return min(RESERVED_MEMORY, limit) if limit else RESERVED_MEMORY


def _host_port(port: Mapping[str, Any]) -> dict[str, Any]:
    """A published port in ``mode: host`` (the routing mesh needs IPVS; this kernel has none)."""
    out: dict[str, Any] = {
        "target": int(port["target"]),
        "protocol": str(port.get("protocol") or "tcp"),
        "mode": "host",
    }
    if port.get("published"):
        out["published"] = int(port["published"])
    return out


def _tmpfs(short: str) -> dict[str, Any]:
    """``/tmp:size=32m`` as the long tmpfs volume Swarm honours (size in bytes)."""
    target, _, opts = short.partition(":")
    out: dict[str, Any] = {"type": "tmpfs", "target": target}
    for opt in opts.split(","):
        key, _, value = opt.partition("=")
        if key == "size" and value:
            out["tmpfs"] = {"size": _bytes(value)}
    return out


def _bytes(text: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    text = text.strip().lower().rstrip("b")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)
