"""The Compose runtime: the lab started by ``lab up``, driven through the Docker SDK.

Why labels: compose.yaml puts ``com.grenache-lab.*`` labels on every container (service
kind, index, host-reachable control address, Toxiproxy proxy, announced address), so the
engine finds its targets without parsing names or compose.yaml. Docker errors are
translated here (``RuntimeUnavailable`` when the lab is not there, ``FaultError`` when an
action fails), and nothing above sees docker-py.

Grape partitions disconnect the container from the lab network and reconnect it with the
aliases it had and, since compose.yaml fixes the lab's subnet, at the address it had
(workers must keep theirs: Toxiproxy's upstreams are addresses). Should another container
have taken it meanwhile, it gets any address, and the other grapes relearn the grape's
address from its own DHT traffic (Kademlia keys contacts by node id, which does not
change).
tests/scenario/test_compose_runtime.py checks the rejoin: lookups complete on every
grape and DHT values cross between the rejoined grape and the others both ways.
"""

from __future__ import annotations

import contextlib
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
from lab.stack.engine import Engine, service_name

KIND_LABEL = "com.grenache-lab.service"
CONTROL_LABEL = "com.grenache-lab.control"
PROXY_LABEL = "com.grenache-lab.proxy"
ANNOUNCE_LABEL = "com.grenache-lab.announce"
POLICY_LABEL = "com.grenache-lab.policy"
NETWORK_LABEL = "com.grenache-lab.network"
NAME_LABEL = "com.grenache-lab.name"
"""A client's name when it is not its service's: client-byo runs the learner's policy
under the name the scenario gave it (compose.yaml), and the run finds it by that name."""

UP_FIRST = "run `lab up` first"


def target_name(c: Any, services: set[str]) -> str:
    """The name a run knows the container by: its client name label, else its service.

    A label that names another service (a client-byo told it is ``client-random``) is
    ignored: validation refuses such a name, and two containers under one name would
    be worse than a run that cannot find its client.
    """
    labels: Mapping[str, str] = c.labels or {}
    name = service_name(c)
    alias = labels.get(NAME_LABEL)
    if labels.get(KIND_LABEL) == "client" and alias and (alias == name or alias not in services):
        return alias
    return name


def _target(c: Any, name: str) -> Target:
    labels: Mapping[str, str] = c.labels or {}
    control = labels.get(CONTROL_LABEL)
    return Target(
        name=name,
        kind=str(labels.get(KIND_LABEL, "other")),
        control_url=f"http://{control}" if control else None,
        proxy=labels.get(PROXY_LABEL),
        peer=labels.get(ANNOUNCE_LABEL),
        policy=labels.get(POLICY_LABEL),
    )


class ComposeRuntime:
    """The running Compose lab; :meth:`connect` fails with "run `lab up` first"."""

    name = "compose"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._containers: dict[str, Any] = {}
        self._targets: dict[str, Target] = {}
        self._aliases: dict[str, list[str]] = {}
        self._addresses: dict[str, str] = {}  # address before a disconnect, to reconnect at
        self.refresh()
        if "toxiproxy" not in self._targets or not any(
            t.kind == "worker" for t in self._targets.values()
        ):
            raise RuntimeUnavailable(f"the Compose lab is not up ({UP_FIRST})")
        self.network = self._network()

    @classmethod
    def connect(cls) -> ComposeRuntime:
        return cls(Engine.connect())

    def refresh(self) -> None:
        """Containers by the name a run knows them by (:func:`target_name`)."""
        found = self.engine.containers(all=True)
        services = {service_name(c) for c in found}
        self._containers = {target_name(c, services): c for c in found}
        self._targets = {n: _target(c, n) for n, c in self._containers.items()}

    def _network(self) -> Any:
        nets = [
            n for n in self.engine.networks() if (n.attrs.get("Labels") or {}).get(NETWORK_LABEL)
        ]
        if not nets:
            raise RuntimeUnavailable(f"the lab network is missing ({UP_FIRST})")
        return nets[0]

    # -- the protocol -------------------------------------------------------------------

    def targets(self) -> Mapping[str, Target]:
        return dict(self._targets)

    def toxiproxy_api(self) -> str:
        url = self._targets["toxiproxy"].control_url
        if url is None:
            raise RuntimeUnavailable("the toxiproxy container has no control label")
        return url

    def service_pids(self) -> Mapping[str, int]:
        """Each running container's init PID on the host (its cgroup is the container's)."""
        out: dict[str, int] = {}
        for name, c in self._containers.items():
            try:
                c.reload()
            except docker.errors.DockerException:
                continue  # gone: no figures for it
            pid = int((c.attrs.get("State") or {}).get("Pid") or 0)
            if pid > 0:
                out[name] = pid
        return out

    def _container(self, name: str) -> Any:
        c = self._containers.get(name)
        if c is None:
            raise RuntimeUnavailable(f"no container for service {name!r} ({UP_FIRST})")
        return c

    def _do(self, name: str, what: str, **kw: Any) -> None:
        c = self._container(name)
        try:
            getattr(c, what)(**kw)
            c.reload()
        except docker.errors.DockerException as exc:
            raise FaultError(f"docker {what} {name}: {_short(exc)}") from exc

    def kill(self, name: str) -> None:
        self._do(name, "kill")

    def stop(self, name: str) -> None:
        self._do(name, "stop", timeout=5)

    def start(self, name: str) -> None:
        self._do(name, "start")

    def pause(self, name: str) -> None:
        self._do(name, "pause")

    def unpause(self, name: str) -> None:
        self._do(name, "unpause")

    def restart(self, name: str) -> None:
        self._do(name, "restart", timeout=5)

    def disconnect(self, name: str) -> None:
        c = self._container(name)
        nets = (c.attrs.get("NetworkSettings") or {}).get("Networks") or {}
        entry = nets.get(self.network.name) or {}
        self._aliases[name] = [a for a in entry.get("Aliases") or [] if a] or [name]
        self._addresses[name] = str(entry.get("IPAddress") or "")
        try:
            self.network.disconnect(c)
            c.reload()
        except docker.errors.DockerException as exc:
            raise FaultError(f"docker network disconnect {name}: {_short(exc)}") from exc

    def reconnect(self, name: str) -> None:
        c = self._container(name)
        aliases = self._aliases.get(name, [name])
        address = self._addresses.get(name) or None
        try:
            try:  # the same address (the lab's subnet is fixed, so Docker can pin it)
                self.network.connect(c, aliases=aliases, ipv4_address=address)
            except docker.errors.APIError:
                if address is None:
                    raise
                self.network.connect(c, aliases=aliases)  # taken meanwhile: any address
            c.reload()
        except docker.errors.DockerException as exc:
            raise FaultError(f"docker network connect {name}: {_short(exc)}") from exc

    def state(self, name: str) -> str:
        c = self._container(name)
        try:
            c.reload()
        except docker.errors.DockerException as exc:
            raise FaultError(f"docker inspect {name}: {_short(exc)}") from exc
        status = str((c.attrs.get("State") or {}).get("Status", "unknown"))
        if status == "paused":
            return "paused"
        if status != "running":
            return "stopped"
        nets = (c.attrs.get("NetworkSettings") or {}).get("Networks") or {}
        return "running" if self.network.name in nets else "disconnected"

    def check_health(self, timeout: float) -> None:
        try:
            services = [service_name(c) for c in self._containers.values()]
            health.wait_healthy(self.engine, services, timeout, log=lambda _m: None)
        except RuntimeUnavailable as exc:
            raise RuntimeUnavailable(f"the Compose lab is not healthy ({UP_FIRST}): {exc}") from exc

    def inflight_info(self) -> dict[str, Any]:
        """Also the clients: a dead run's load and oracle list outlive it in their containers."""
        return {
            "runtime": self.name,
            "toxiproxy_api": self.toxiproxy_api(),
            "network": self.network.name,
            "clients": client_facts(self._targets.values()),
        }

    def close(self) -> None:
        self.engine.close()


class ComposeLeftovers(ClientsLiveOn):
    """A dead Compose run's containers come back; its clients live on, so they are quieted."""

    def restore(self, names: Sequence[str], report: LeftoverReport) -> None:
        """Reconnect, unpause or start each container by the state it was left in."""
        if not names:
            return
        try:
            rt = ComposeRuntime.connect()
        except RuntimeUnavailable as exc:
            report.errors.append(f"cannot reach the Compose lab to undo faults: {exc}")
            return
        try:
            restore_by_state(rt, names, report)
        finally:
            with contextlib.suppress(Exception):
                rt.close()


LEFTOVERS = ComposeLeftovers()
"""The Compose runtime's hooks for :func:`lab.scenario.faults.janitor.cleanup_leftovers`."""


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
