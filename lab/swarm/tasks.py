"""The stack as the Swarm manager sees it: each service's current task, node and container.

Why one module: deploying (wait until every task runs), the Swarm runtime (which node
holds ``worker-2``, which container to kill, a replacement task after a heal) and
``lab status`` all ask the manager the same question. The answer is plain data
(:class:`Task`); docker-py's exceptions are translated here, so nothing above sees them.

Each node's engine is a separate client (``SwarmNode.docker_host``): Swarm's API manages
services and tasks, but ``kill``/``pause`` of a task's container are the node engine's.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import docker
import docker.errors

from lab.errors import RuntimeUnavailable
from lab.swarm.state import SwarmNode, SwarmState

STACK_LABEL = "com.docker.stack.namespace"
KIND_LABEL = "com.grenache-lab.service"
DOWN = frozenset({"failed", "rejected", "shutdown", "complete", "orphaned", "remove"})
"""Task states a task never leaves: its container is gone or stays stopped."""


@dataclass(frozen=True, slots=True)
class Task:
    """One lab service's current task: where it runs and how it is doing."""

    service: str  # the lab's name (``worker-2``), the stack's prefix removed
    service_id: str
    labels: Mapping[str, str]  # the service's labels (the stack file's deploy.labels)
    state: str  # Swarm's task state: new ... starting, running, failed, shutdown, ...
    node: str | None  # the node's hostname (Swarm node name), None before scheduling
    container_id: str | None
    error: str = ""
    task_id: str = ""
    ports: tuple[int, ...] = field(default=())
    desired: str = ""  # the manager's desired state: "shutdown" once it gave the task up

    @property
    def running(self) -> bool:
        return self.state == "running"


def connect(docker_host: str, timeout: float = 10.0) -> Any:
    """A docker-py client for one node's engine (pinged: an engine that does not answer
    is said here, naming the node's address)."""
    try:
        client = docker.DockerClient(base_url=docker_host, timeout=int(timeout))
        client.ping()
    except docker.errors.DockerException as exc:
        raise RuntimeUnavailable(
            f"the swarm node engine at {docker_host} does not answer ({_short(exc)}): "
            "run `lab up --engine swarm` (or `lab down` to forget this swarm)"
        ) from exc
    return client


class Swarm:
    """Clients for the manager and each node, opened on first use, closed together."""

    def __init__(self, state: SwarmState) -> None:
        self.state = state
        self._clients: dict[str, Any] = {}
        self._node_names: dict[str, str] = {}  # Swarm node id -> hostname

    def manager(self) -> Any:
        return self.engine(self.state.manager())

    def engine(self, node: SwarmNode) -> Any:
        if not node.docker_host:
            raise RuntimeUnavailable(
                f"the lab does not know how to reach node {node.name}'s engine: create a "
                f"docker context named {node.name} for it (`docker context create {node.name} "
                f"--docker host=ssh://user@{node.address or node.name}`) and run "
                "`lab up --engine swarm` again"
            )
        if node.name not in self._clients:
            self._clients[node.name] = connect(node.docker_host)
        return self._clients[node.name]

    def close(self) -> None:
        for client in self._clients.values():
            with contextlib.suppress(Exception):
                client.close()
        self._clients.clear()

    # -- the manager's view --------------------------------------------------------------

    def services(self) -> dict[str, Any]:
        """The stack's services by the lab's name (``worker-2``), as docker-py objects."""
        prefix = f"{self.state.stack}_"
        try:
            found = self.manager().services.list(
                filters={"label": f"{STACK_LABEL}={self.state.stack}"}
            )
        except docker.errors.DockerException as exc:
            raise RuntimeUnavailable(f"cannot list the stack's services: {_short(exc)}") from exc
        return {s.name.removeprefix(prefix): s for s in found}

    def tasks(self) -> dict[str, Task]:
        """Each service's current task (its newest), by the lab's service name."""
        return {name: self.task_of(svc, name) for name, svc in self.services().items()}

    def task_of(self, service: Any, name: str) -> Task:
        try:
            found = service.tasks()
            labels = dict((service.attrs.get("Spec") or {}).get("Labels") or {})
        except docker.errors.NotFound:
            found, labels = [], {}
        except docker.errors.DockerException as exc:
            raise RuntimeUnavailable(f"cannot list {name}'s tasks: {_short(exc)}") from exc
        ports = tuple(
            int(p["PublishedPort"])
            for p in ((service.attrs.get("Endpoint") or {}).get("Spec") or {}).get("Ports") or []
            if p.get("PublishedPort")
        )
        if not found:
            return Task(name, service.id, labels, "missing", None, None, ports=ports)
        t = max(found, key=lambda t: _created(t.get("CreatedAt", "")))
        status = t.get("Status") or {}
        return Task(
            service=name,
            service_id=service.id,
            labels=labels,
            state=str(status.get("State", "unknown")),
            node=self.node_name(str(t.get("NodeID") or "")) if t.get("NodeID") else None,
            container_id=(status.get("ContainerStatus") or {}).get("ContainerID") or None,
            error=str(status.get("Err") or ""),
            task_id=str(t.get("ID", "")),
            ports=ports,
            desired=str(t.get("DesiredState") or ""),
        )

    def node_name(self, node_id: str) -> str:
        """A Swarm node id as its hostname (the name the state and constraints use)."""
        if node_id not in self._node_names:
            try:
                for n in self.manager().nodes.list():
                    host = (n.attrs.get("Description") or {}).get("Hostname")
                    self._node_names[n.id] = str(host or n.id)
            except docker.errors.DockerException as exc:
                raise RuntimeUnavailable(f"cannot list the swarm's nodes: {_short(exc)}") from exc
        return self._node_names.get(node_id, node_id)

    def container(self, task: Task) -> Any:
        """The task's container on its node's engine (FaultError-free: RuntimeUnavailable)."""
        if task.node is None or task.container_id is None:
            raise RuntimeUnavailable(f"{task.service} has no container ({task.state})")
        try:
            node = self.state.node(task.node)
        except KeyError as exc:
            raise RuntimeUnavailable(str(exc)) from exc
        try:
            return self.engine(node).containers.get(task.container_id)
        except docker.errors.NotFound as exc:
            raise RuntimeUnavailable(
                f"{task.service}'s container {task.container_id[:12]} is gone from {task.node}"
            ) from exc
        except docker.errors.DockerException as exc:
            raise RuntimeUnavailable(
                f"cannot inspect {task.service} on {task.node}: {_short(exc)}"
            ) from exc

    def containers(self) -> Iterator[tuple[SwarmNode, Any]]:
        """Every container of the stack on every node the lab can reach (leftover sweeps)."""
        for node in self.state.nodes:
            if not node.docker_host:
                continue
            try:
                found = self.engine(node).containers.list(
                    all=True, filters={"label": f"{STACK_LABEL}={self.state.stack}"}
                )
            except (docker.errors.DockerException, RuntimeUnavailable):
                continue
            for c in found:
                yield node, c


_FRACTION = re.compile(r"\.(\d+)")


def _created(text: str) -> float:
    """Swarm's RFC 3339 timestamps carry nanoseconds; Python reads at most microseconds."""
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
