"""The Swarm runtime: the stack ``lab up --engine swarm`` deployed, driven per node.

Why per node: Swarm's manager knows services and tasks, but a task's container belongs to
its node's engine, so ``kill``/``pause``/``unpause`` go to the engine of the node running
the task (``SwarmNode.docker_host``). Targets come from the services' ``com.grenache-lab.*``
labels as on Compose; a target's control URL is the address of the node running its task
and the port it publishes there (``mode: host``: no routing mesh without IPVS).

What differs from Compose, and why:
- **start after kill/stop** is ``docker service update --force``: Swarm ignores a
  ``docker start`` of a task's container (the task stays failed and out of DNS). The new
  task runs on the same node (the stack pins every service, lab/swarm/stack.py), with a
  new container and a new overlay address; Toxiproxy's upstream is the worker's name,
  so it follows. ``restart`` is a stop and that start.
- **disconnect/reconnect** (grape partitions): a ``network disconnect`` of a task is
  accepted but not undone by a ``network connect`` (the service's DNS name stays gone),
  so the task's own namespace drops the overlay's traffic (:mod:`lab.swarm.partition`);
  its control port stays reachable from the host.
- **service_pids** is empty: the tasks' cgroups live in the nodes' engines, which the
  host's cgroup readers (lab/stack/cgroups.py) do not see as the Compose lab's.
Docker errors are translated here; nothing above sees docker-py.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

import docker.errors

from lab.errors import FaultError, RuntimeUnavailable
from lab.scenario.runtime.leftovers import (
    ClientsLiveOn,
    LeftoverReport,
    client_facts,
    restore_by_state,
)
from lab.scenario.runtime.protocol import Target
from lab.stack import health
from lab.stack.engine import Paths, read_env_file
from lab.swarm import partition
from lab.swarm import state as swarm_state
from lab.swarm.ready import wait_ready
from lab.swarm.state import SwarmNode
from lab.swarm.tasks import DOWN, Swarm, Task

KIND_LABEL = "com.grenache-lab.service"
CONTROL_LABEL = "com.grenache-lab.control"
PROXY_LABEL = "com.grenache-lab.proxy"
ANNOUNCE_LABEL = "com.grenache-lab.announce"
POLICY_LABEL = "com.grenache-lab.policy"
HEALTH_LABEL = "com.grenache-lab.health"
UP_FIRST = "run `lab up --engine swarm` first"
NETFAULT_IMAGE_ENV = "LAB_NETFAULT_IMAGE"
START_TIMEOUT_S = 60.0
"""A replacement task: scheduled, container created and started; ~2 s when idle."""


class SwarmRuntime:
    """The stack on the swarm of ``.cache/swarm/state.json``."""

    name = "swarm"

    def __init__(self, swarm: Swarm, paths: Paths | None = None) -> None:
        self.swarm = swarm
        self.paths = paths or Paths.find()
        self._cut: set[str] = set()  # services this runtime cut off the overlay
        self.stack = swarm.state.stack
        self._tasks: dict[str, Task] = {}
        self._targets: dict[str, Target] = {}
        self.refresh()
        if "toxiproxy" not in self._targets or not any(
            t.kind == "worker" for t in self._targets.values()
        ):
            raise RuntimeUnavailable(f"the swarm stack is not up ({UP_FIRST})")

    @classmethod
    def connect(cls, paths: Paths | None = None) -> SwarmRuntime:
        paths = paths or Paths.find()
        found = swarm_state.load(paths)
        if found is None:
            raise RuntimeUnavailable(f"no swarm is up ({UP_FIRST})")
        return cls(Swarm(found), paths)

    def refresh(self) -> None:
        """Every service's current task, and the targets they make."""
        self._tasks = self.swarm.tasks()
        self._targets = {n: self._target(t) for n, t in self._tasks.items()}

    def _target(self, task: Task) -> Target:
        labels = task.labels
        control = labels.get(CONTROL_LABEL)
        if control and task.node is not None:
            with contextlib.suppress(KeyError):  # a node the state does not know: the label
                control = f"{self.swarm.state.node(task.node).address}:{control.rpartition(':')[2]}"
        return Target(
            name=task.service,
            kind=str(labels.get(KIND_LABEL, "other")),
            control_url=f"http://{control}" if control else None,
            proxy=labels.get(PROXY_LABEL),
            peer=labels.get(ANNOUNCE_LABEL),
            policy=labels.get(POLICY_LABEL),
        )

    # -- the protocol -------------------------------------------------------------------

    def targets(self) -> Mapping[str, Target]:
        return dict(self._targets)

    def toxiproxy_api(self) -> str:
        url = self._targets["toxiproxy"].control_url
        if url is None:
            raise RuntimeUnavailable("the toxiproxy service has no control label")
        return url

    def nodes(self) -> Sequence[SwarmNode]:
        return self.swarm.state.nodes

    def node_of(self, name: str) -> SwarmNode:
        """The node running ``name``'s task (the one its placement pins it to)."""
        task = self._task(name)
        if task.node is None:
            raise RuntimeUnavailable(f"{name} has no node yet (task {task.state})")
        try:
            return self.swarm.state.node(task.node)
        except KeyError as exc:
            raise RuntimeUnavailable(str(exc)) from exc

    def service_pids(self) -> Mapping[str, int]:
        """None: the tasks' processes live in the nodes' engines, not the host's cgroups."""
        return {}

    def _task(self, name: str, fresh: bool = False) -> Task:
        if fresh or name not in self._tasks:
            service = self.swarm.services().get(name)
            if service is None:
                raise RuntimeUnavailable(f"no swarm service {name!r} ({UP_FIRST})")
            self._tasks[name] = self.swarm.task_of(service, name)
        return self._tasks[name]

    def _container(self, name: str) -> Any:
        try:
            return self.swarm.container(self._task(name, fresh=True))
        except RuntimeUnavailable as exc:
            raise FaultError(str(exc)) from exc

    def exec_in(self, name: str, argv: Sequence[str]) -> tuple[int, str]:
        """Run ``argv`` in ``name``'s task container on its node: (exit code, output)."""
        c = self._container(name)
        try:
            result = c.exec_run(list(argv))
        except docker.errors.DockerException as exc:
            raise FaultError(f"docker exec in {name}: {_short(exc)}") from exc
        return int(result.exit_code or 0), bytes(result.output or b"").decode(errors="replace")

    def _do(self, name: str, what: str, **kw: Any) -> None:
        c = self._container(name)
        try:
            getattr(c, what)(**kw)
        except docker.errors.DockerException as exc:
            raise FaultError(
                f"docker {what} {name} on {self.node_of(name).name}: {_short(exc)}"
            ) from exc

    def kill(self, name: str) -> None:
        self._do(name, "kill")
        self._wait_task(name, lambda t: t.state in DOWN, "its task to end")

    def stop(self, name: str) -> None:
        self._do(name, "stop", timeout=5)
        self._wait_task(name, lambda t: t.state in DOWN, "its task to end")

    def pause(self, name: str) -> None:
        self._do(name, "pause")

    def unpause(self, name: str) -> None:
        self._do(name, "unpause")

    def start(self, name: str) -> None:
        """A new task for the service (``service update --force``), waited until running."""
        task = self._task(name, fresh=True)
        if task.running and self.state(name) == "running":
            return
        service = self.swarm.services().get(name)
        if service is None:
            raise FaultError(f"no swarm service {name!r} to start")
        try:
            service.force_update()
        except docker.errors.DockerException as exc:
            raise FaultError(f"docker service update --force {name}: {_short(exc)}") from exc
        self._wait_task(
            name, lambda t: t.running and t.task_id != task.task_id, "a new running task"
        )
        self.refresh()
        self._wait_serving(name)

    def _wait_serving(self, name: str, timeout: float = START_TIMEOUT_S) -> None:
        """Until the new task's process answers its health endpoint from the host.

        Why: a running task is a started container, and the Python service binds its
        ports ~0.8 s later; the kill's heal reopens the worker's proxy when ``start``
        returns, and every request through it met a reset in that gap (oracle included,
        which is told the heal: its availability fell toward its known bound).
        """
        target, path = self._targets.get(name), self._tasks[name].labels.get(HEALTH_LABEL)
        if target is None or target.control_url is None or not path:
            return
        where = target.control_url.removeprefix("http://") + path
        deadline = time.monotonic() + timeout
        while True:
            ok, why = health.probe(where, timeout=1.0)
            if ok:
                return
            if time.monotonic() >= deadline:
                raise FaultError(
                    f"{name}: its new task does not answer after {timeout:.0f}s: {why}"
                )
            time.sleep(0.05)

    def restart(self, name: str) -> None:
        self.stop(name)
        self.start(name)

    def _wait_task(self, name: str, done: Any, what: str, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while True:
            task = self._task(name, fresh=True)
            if done(task):
                return
            if time.monotonic() >= deadline:
                raise FaultError(
                    f"{name}: waited {timeout:.0f}s for {what}; its task is {task.state}"
                    + (f" ({task.error})" if task.error else "")
                )
            time.sleep(0.1)

    def _network(self) -> str:
        return f"{self.stack}_lab"

    def disconnect(self, name: str) -> None:
        """The task cut off the overlay in its own namespace (lab.swarm.partition: a task
        reconnected by ``network connect`` is no longer in its service's DNS)."""
        c = self._container(name)
        client = self._engine_of(name)
        subnet = partition.overlay_subnet(client, self._network())
        partition.cut(client, c, name, subnet, self._netfault_image())
        self._cut.add(name)

    def reconnect(self, name: str) -> None:
        c = self._container(name)
        partition.mend(self._engine_of(name), c, name, self._netfault_image())
        self._cut.discard(name)

    def _engine_of(self, name: str) -> Any:
        try:
            return self.swarm.engine(self.node_of(name))
        except RuntimeUnavailable as exc:
            raise FaultError(f"{name}: {exc}") from exc

    def _netfault_image(self) -> str:
        image = read_env_file(self.paths.state_env).get(NETFAULT_IMAGE_ENV)
        if not image:
            raise FaultError(
                f"{self.paths.state_env} names no {NETFAULT_IMAGE_ENV}: the swarm's grape "
                "partitions need the netfault helper image (`lab up --images-only` builds it)"
            )
        return image

    def state(self, name: str) -> str:
        task = self._task(name, fresh=True)
        if not task.running:
            return "stopped"
        c = self._container(name)
        status = str((c.attrs.get("State") or {}).get("Status", "unknown"))
        if status == "paused":
            return "paused"
        if status != "running":
            return "stopped"
        return "disconnected" if name in self._cut else "running"

    def check_health(self, timeout: float) -> None:
        try:
            wait_ready(self.swarm, sorted(self._tasks), timeout)
        except RuntimeUnavailable as exc:
            raise RuntimeUnavailable(f"the swarm stack is not healthy ({UP_FIRST}): {exc}") from exc
        self.refresh()

    def inflight_info(self) -> dict[str, Any]:
        """The clients too: a dead run's load outlives it in their tasks, as on Compose."""
        return {
            "runtime": self.name,
            "toxiproxy_api": self.toxiproxy_api(),
            "network": self._network(),
            "clients": client_facts(self._targets.values()),
        }

    def close(self) -> None:
        self.swarm.close()


class SwarmLeftovers(ClientsLiveOn):
    """A dead swarm run's services come back; its clients live on, so they are quieted."""

    def restore(self, names: Sequence[str], report: LeftoverReport) -> None:
        """Reconnect, unpause or start (a new task) each service by the state it was left in."""
        if not names:
            return
        try:
            rt = SwarmRuntime.connect()
        except RuntimeUnavailable as exc:
            report.errors.append(f"cannot reach the swarm stack to undo faults: {exc}")
            return
        try:  # a partition leaves no trace the runtime remembers: clean running ones too
            restore_by_state(
                rt, names, report, started="started {name} (a new task)", heal_running=True
            )
        finally:
            rt.close()


LEFTOVERS = SwarmLeftovers()
"""The Swarm runtime's hooks for :func:`lab.scenario.faults.janitor.cleanup_leftovers`."""


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
