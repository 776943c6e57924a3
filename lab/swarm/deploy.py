"""Putting the stack on a swarm and taking it off: the docker CLI against the manager.

Why the CLI and not the SDK: ``docker stack deploy`` is the one implementation of the
stack format (configs by file, networks and services named by the stack, updates of an
existing stack); the SDK has no stacks. ``--resolve-image never``: the images were
loaded into every node (a local swarm) or must already be there (a swarm of yours); no
registry is asked. The stack file is written under ``.cache/swarm/`` with mode 0600,
since the clients' environment holds the lab's gossip key.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import docker.errors

from lab.errors import RuntimeUnavailable
from lab.stack import shape
from lab.stack.engine import Engine, Paths
from lab.swarm.stack import toxiproxy_config
from lab.swarm.state import SwarmState
from lab.swarm.tasks import Swarm

STACK_FILE = "stack.json"
CLI_TIMEOUT_S = 120.0


def swarm_dir(paths: Paths) -> Path:
    return paths.cache / "swarm"


def compose_model(paths: Paths, env: Mapping[str, str]) -> dict[str, Any]:
    """compose.yaml interpolated by Compose itself, every profile included.

    ``docker compose config`` reads files only: no engine is asked (so none of the host
    engine's images or containers is touched), hence an Engine without a client.
    """
    return shape.compose_model(Engine(client=None, paths=paths, env=dict(env)))


def docker_cli(docker_host: str, *args: str, timeout: float = CLI_TIMEOUT_S) -> str:
    """``docker -H HOST ARGS``: stdout, or RuntimeUnavailable with the CLI's last lines."""
    env = {k: v for k, v in os.environ.items() if k not in {"DOCKER_HOST", "DOCKER_CONTEXT"}}
    argv = ["docker", "-H", docker_host, *args]
    try:
        proc = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeUnavailable(f"`docker {' '.join(args[:2])}` failed: {exc}") from exc
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
        raise RuntimeUnavailable(f"`docker {' '.join(args[:2])}` on {docker_host}: {tail}")
    return proc.stdout


def write_stack(paths: Paths, stack: Mapping[str, Any]) -> Path:
    """The stack file and the Toxiproxy config it names, written (0600) under .cache/swarm."""
    where = swarm_dir(paths)
    where.mkdir(parents=True, exist_ok=True)
    workers = sum(1 for n in stack["services"] if n.startswith("worker-"))
    for cfg in (stack.get("configs") or {}).values():
        Path(cfg["file"]).write_text(toxiproxy_config(workers))
    path = where / STACK_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(stack, f, indent=1, sort_keys=True)
    return path


def deploy(
    state: SwarmState,
    stack: Mapping[str, Any],
    paths: Paths,
    log: Callable[[str], None] = lambda _m: None,
) -> Path:
    """``docker stack deploy`` of ``stack`` on the manager (not waiting: see ready.py)."""
    path = write_stack(paths, stack)
    t0 = time.monotonic()
    docker_cli(
        state.manager().docker_host,
        "stack",
        "deploy",
        "--resolve-image",
        "never",
        "--prune",
        "--detach=true",
        "--compose-file",
        str(path),
        state.stack,
    )
    log(
        f"swarm: stack {state.stack} deployed ({len(stack['services'])} services, "
        f"{time.monotonic() - t0:.1f}s)"
    )
    return path


def remove(
    state: SwarmState,
    timeout: float = 60.0,
    log: Callable[[str], None] = lambda _m: None,
) -> list[str]:
    """``docker stack rm`` and a wait until its services, containers and network are gone.

    Returns what is still there at the deadline (empty: clean). A manager that does not
    answer is reported, not raised: ``lab down`` goes on to tear the swarm down.
    """
    t0 = time.monotonic()
    try:
        docker_cli(state.manager().docker_host, "stack", "rm", state.stack)
    except RuntimeUnavailable as exc:
        return [f"stack rm: {exc}"]
    swarm = Swarm(state)
    try:
        deadline = t0 + timeout
        while True:
            left = _still_there(swarm, state)
            if not left or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
    finally:
        swarm.close()
    log(
        f"swarm: stack {state.stack} removed in {time.monotonic() - t0:.1f}s"
        + (f"; left: {', '.join(left)}" if left else "")
    )
    return left


def _still_there(swarm: Swarm, state: SwarmState) -> list[str]:
    left: list[str] = []
    try:
        left += [f"service {n}" for n in swarm.services()]
    except RuntimeUnavailable as exc:
        return [str(exc)]
    left += [f"container {c.name} on {node.name}" for node, c in swarm.containers()]
    try:
        nets = swarm.manager().networks.list(
            filters={"label": f"com.docker.stack.namespace={state.stack}"}
        )
    except docker.errors.DockerException as exc:  # the sweep is best effort
        return [*left, f"networks: {exc}"]
    left += [f"network {n.name}" for n in nets]
    return left


def forget(paths: Paths) -> None:
    """The stack file and Toxiproxy configs gone (the stack file holds the gossip key)."""
    where = swarm_dir(paths)
    for path in [where / STACK_FILE, *where.glob("lab_toxiproxy-*.json")]:
        path.unlink(missing_ok=True)


def service_names(stack: Mapping[str, Any]) -> Sequence[str]:
    return sorted(stack["services"])
