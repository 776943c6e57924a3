"""Swarm membership through the docker CLI: init on the first manager, join the others,
wait until every node is Ready.

Why the CLI and not the SDK: the local swarm's engines are reached by ``-H unix://…``
sockets that change per checkout, and these are a handful of one-shot commands whose
errors the CLI already words well; each failure becomes RuntimeUnavailable here.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence

from lab.errors import RuntimeUnavailable
from lab.swarm.images import client_env

ADDRESS_POOL = "10.232.0.0/16"
"""Overlay subnets of the swarm: apart from the Compose lab's 10.231.0.0/24."""
SWARM_PORT = 2377


def docker(host: str, *args: str, timeout: float = 30.0) -> str:
    """``docker -H host args…``'s output; RuntimeUnavailable with its stderr on failure."""
    argv = ["docker", "-H", host, *args]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, env=client_env(), timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeUnavailable(f"`{' '.join(argv)}`: {exc}") from exc
    if done.returncode != 0:
        raise RuntimeUnavailable(
            f"`docker {' '.join(args)}` on {host} failed: {done.stderr.strip()}"
        )
    return done.stdout.strip()


def init(host: str, address: str) -> str:
    """Make ``host`` the first manager advertising ``address``; the worker join token."""
    docker(
        host, "swarm", "init",
        "--advertise-addr", address,
        "--listen-addr", f"{address}:{SWARM_PORT}",
        "--default-addr-pool", ADDRESS_POOL,
    )  # fmt: skip
    return docker(host, "swarm", "join-token", "-q", "worker")


def join(host: str, address: str, token: str, manager_address: str) -> None:
    """Join ``host`` (advertising ``address``) as a worker of the manager's swarm."""
    docker(
        host, "swarm", "join",
        "--token", token,
        "--advertise-addr", address,
        "--listen-addr", f"{address}:{SWARM_PORT}",
        f"{manager_address}:{SWARM_PORT}",
    )  # fmt: skip


def node_states(manager: str) -> dict[str, str]:
    """Each node's hostname -> status (``Ready``, ``Down``, ``Unknown``), from the manager."""
    out = docker(manager, "node", "ls", "--format", "{{.Hostname}} {{.Status}}")
    return parse_node_states(out)


def parse_node_states(text: str) -> dict[str, str]:
    """``docker node ls --format '{{.Hostname}} {{.Status}}'`` output as a dict (pure)."""
    states: dict[str, str] = {}
    for line in text.splitlines():
        name, _, status = line.strip().partition(" ")
        if name:
            states[name] = status.strip()
    return states


def wait_ready(manager: str, names: Sequence[str], timeout: float = 30.0) -> None:
    """Poll until every node in ``names`` is Ready; RuntimeUnavailable naming the others."""
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = node_states(manager)
        if all(states.get(n) == "Ready" for n in names):
            return
        time.sleep(0.2)
    late = {n: states.get(n, "absent") for n in names if states.get(n) != "Ready"}
    raise RuntimeUnavailable(f"swarm nodes not Ready after {timeout:.0f}s: {late}")
