"""``lab up --engine swarm`` and the swarm half of ``lab down``.

Up: a swarm (a local one built with ``--local-nodes N``, else the one the Docker
environment points at), the stack derived from compose.yaml on it, and a wait until it is
ready. The images are never built or retagged here: their names come from the
``.cache/stack.env`` a Compose ``lab up`` (or ``lab up --images-only``) wrote, and a local
swarm gets copies of them; a swarm of yours must already have them on every node.
Down: ``docker stack rm``, then, for a local swarm, its teardown; what is left is said.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

import docker
import docker.errors

from lab.errors import RuntimeUnavailable
from lab.stack import gossip_key
from lab.stack.engine import Paths, read_env_file
from lab.swarm import deploy, local, state
from lab.swarm.ready import wait_ready
from lab.swarm.stack import LOSSES, Counts, derive_stack
from lab.swarm.state import SwarmNode, SwarmState
from lab.swarm.tasks import Swarm

IMAGE_KEYS = ("LAB_SERVICES_IMAGE", "LAB_TOXIPROXY_IMAGE")


@dataclass(frozen=True, slots=True)
class UpReport:
    """What ``lab up --engine swarm`` did, with its figures."""

    state: SwarmState
    services: int
    swarm_s: float  # building or finding the swarm
    deploy_s: float  # docker stack deploy
    ready_s: float  # until every task ran, was healthy, and discovery was whole


def up(
    paths: Paths,
    *,
    local_nodes: int | None,
    counts: Counts,
    timeout: float,
    log: Callable[[str], None],
) -> UpReport:
    """The swarm, the stack on it, ready; the state saved for the later commands."""
    env = read_env_file(paths.state_env)
    missing = [k for k in IMAGE_KEYS if not env.get(k)]
    if missing:
        raise RuntimeUnavailable(
            f"{paths.state_env} names no {', '.join(missing)}: build the images first "
            "(`lab up --images-only`, or `make images`)"
        )
    t0 = time.monotonic()
    current = _swarm(paths, local_nodes, log)
    t1 = time.monotonic()
    model = deploy.compose_model(paths, {**env, **gossip_key.ensure(paths)})
    stack = derive_stack(model, current.nodes, counts, deploy.swarm_dir(paths))
    for line in LOSSES:
        log(f"swarm: not on Swarm: {line}")
    deploy.deploy(current, stack, paths, log)
    t2 = time.monotonic()
    swarm = Swarm(current)
    try:
        ready = wait_ready(swarm, deploy.service_names(stack), timeout, log)
    finally:
        swarm.close()
    log(f"swarm: all {len(stack['services'])} services ready, discovery whole ({ready:.1f}s)")
    return UpReport(current, len(stack["services"]), t1 - t0, t2 - t1, ready)


def _swarm(paths: Paths, local_nodes: int | None, log: Callable[[str], None]) -> SwarmState:
    """The saved swarm if it is the one asked for, else a new local one, else the manager's.

    Without ``--local-nodes`` a saved swarm, local or not, is the one asked for: ``lab up
    --engine swarm --workers 6`` redeploys on whatever swarm the lab runs on.
    """
    saved = state.load(paths)
    if saved is not None:
        same = local_nodes is None or (saved.local and len(saved.nodes) == local_nodes)
        if not same:
            kind = f"a local swarm of {len(saved.nodes)}" if saved.local else "a swarm of yours"
            raise RuntimeUnavailable(
                f"the lab runs on {kind} already ({state.state_file(paths)}): "
                "`lab down` first, then `lab up --engine swarm` as you want it"
            )
        log(f"swarm: reusing {', '.join(n.name for n in saved.nodes)}")
        return saved
    if local_nodes is not None:
        log(f"swarm: building a local swarm of {local_nodes} nodes")
        built = local.create(paths, local_nodes, log)
        state.save(paths, built)
        return built
    found = attach()
    log(
        f"swarm: using the swarm of {found.manager().docker_host} "
        f"({', '.join(n.name for n in found.nodes)}); the lab's images must be on every node"
    )
    state.save(paths, found)
    return found


def attach() -> SwarmState:
    """The swarm whose manager the Docker environment names (DOCKER_HOST, else the context).

    The manager's engine is the one named; another node's engine is the docker context
    named after that node's hostname, when there is one (``docker context create node-2
    --docker host=ssh://root@node-2``): Swarm's API cannot kill or pause a task's
    container, only its node's engine can. A node without a context is still used for
    tasks; faults on its tasks are refused with a sentence saying how to add one.
    """
    host = os.environ.get("DOCKER_HOST") or _context_host()
    try:
        client = docker.DockerClient(base_url=host, timeout=10)
        info = client.info()
        nodes = client.nodes.list() if (info.get("Swarm") or {}).get("ControlAvailable") else []
    except docker.errors.DockerException as exc:
        raise RuntimeUnavailable(f"no Docker engine answers at {host}: {exc}") from exc
    if not nodes:
        raise RuntimeUnavailable(
            f"the engine at {host} is not a Swarm manager: point DOCKER_HOST (or the docker "
            "context) at one, or build a local swarm with `lab up --engine swarm --local-nodes 3`"
        )
    me = str((info.get("Swarm") or {}).get("NodeID") or "")
    out = []
    for n in nodes:
        desc, status = n.attrs.get("Description") or {}, n.attrs.get("Status") or {}
        address = str(status.get("Addr") or "")
        if address in {"", "0.0.0.0"}:
            address = str((n.attrs.get("ManagerStatus") or {}).get("Addr", "")).rpartition(":")[0]
        out.append(
            SwarmNode(
                name=str(desc.get("Hostname") or n.id),
                docker_host=host if n.id == me else _context_host(str(desc.get("Hostname") or "")),
                address=address,
                manager=n.id == me,
            )
        )
    client.close()
    return SwarmState(nodes=tuple(sorted(out, key=lambda n: n.name)), local=False)


def _context_host(name: str | None = None) -> str:
    """The engine address of docker context ``name`` (None: the current context).

    The current context defaults to the local socket; a named one that does not exist
    is "" (that node's engine is unknown).
    """
    fallback = "unix:///var/run/docker.sock" if name is None else ""
    if name == "":
        return fallback
    try:
        out = subprocess.run(
            ["docker", "context", "inspect", *([name] if name else [])],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        if out.returncode != 0:
            return fallback
        return str(json.loads(out.stdout)[0]["Endpoints"]["docker"]["Host"])
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, IndexError):
        return fallback


def down(paths: Paths, log: Callable[[str], None]) -> list[str] | None:
    """The stack removed and a local swarm torn down; what is left (None: no swarm)."""
    current = state.load(paths)
    if current is None:
        return None
    left = deploy.remove(current, log=log)
    if current.local:
        left = local.destroy(paths, current, log)  # a stack on it dies with it
    state.remove(paths)
    deploy.forget(paths)
    return left
