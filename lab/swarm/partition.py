"""A task cut off the stack's overlay by iptables in its own namespace (grape partitions).

Why not ``docker network disconnect`` as on Compose: the engine refuses to connect or
disconnect a Swarm task's container from a swarm-scoped network (moby #24158, #24988;
Swarm owns the task's endpoints). So the same helper image the Compose lab's network
faults use (``LAB_NETFAULT_IMAGE``, loaded into every node of a local swarm) runs once on
the task's node, in the task's network namespace, and drops every packet from and to the
overlay's subnet (lab.netfault.rules.partition_plan). The task's published control port
is reached through ``docker_gwbridge``, not the overlay, so the host still sees the grape
while the other grapes do not. Healing removes our chains (the agent's idempotent
``clean``), so a second heal or a janitor's heal of a task that was never cut is harmless.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Any

import docker.errors

from lab.errors import FaultError, RuntimeUnavailable
from lab.netfault.helper import HELPER_LABEL, TARGET_LABEL
from lab.netfault.rules import partition_plan

HELPER_TIMEOUT_S = 30.0


def fault_id(service: str) -> str:
    """The chains' owner: one partition per service at a time, found again by its name."""
    return f"swarm-partition-{service}"


def overlay_subnet(client: Any, network: str) -> str:
    """The overlay's subnet as the task's node sees it (``10.232.1.0/24``)."""
    try:
        configs = (client.networks.get(network).attrs.get("IPAM") or {}).get("Config") or []
    except docker.errors.DockerException as exc:
        raise FaultError(f"cannot inspect network {network}: {exc}") from exc
    for c in configs:
        if c.get("Subnet"):
            return str(c["Subnet"])
    raise FaultError(f"network {network} has no subnet to cut")


def cut(client: Any, container: Any, service: str, subnet: str, image: str) -> None:
    """Drop everything between ``container`` and ``subnet`` (both directions)."""
    plan = partition_plan(fault_id(service), [subnet], "both")
    payload = json.dumps({"commands": [list(c) for c in plan.commands]})
    _agent(client, container, service, image, ["run", payload])


def mend(client: Any, container: Any, service: str, image: str) -> None:
    """Our chains out of the namespace (nothing to do when none is there)."""
    chains = list(_chains(service))
    payload = json.dumps({"chains": chains, "dev": "eth0", "qdisc": False})
    _agent(client, container, service, image, ["clean", payload])


def _chains(service: str) -> Sequence[str]:
    return partition_plan(fault_id(service), ["0.0.0.0/32"], "both").chains


def _agent(client: Any, container: Any, service: str, image: str, args: list[str]) -> None:
    """One helper run in ``container``'s namespace, removed after; FaultError on failure."""
    try:
        helper = client.containers.run(
            image,
            args,
            detach=True,
            labels={HELPER_LABEL: "swarm-partition", TARGET_LABEL: service},
            network_mode=f"container:{container.id}",
            cap_drop=["ALL"],
            cap_add=["NET_ADMIN"],
            read_only=True,
            tmpfs={"/run": "size=1m", "/tmp": "size=4m"},
            security_opt=["no-new-privileges:true"],
            pids_limit=32,
            mem_limit="96m",
            user="0:0",
        )
    except docker.errors.ImageNotFound as exc:
        raise RuntimeUnavailable(
            f"the netfault helper image {image} is not on {service}'s node: a local swarm "
            "loads it (`lab up --images-only` builds it); load it on every node of yours"
        ) from exc
    except docker.errors.DockerException as exc:
        raise FaultError(f"partition helper on {service}: {exc}") from exc
    try:
        result = helper.wait(timeout=HELPER_TIMEOUT_S)
        err = bytes(helper.logs(stdout=False, stderr=True)).decode(errors="replace")
    except Exception as exc:  # docker's or requests' timeout: the helper is removed below
        raise FaultError(f"partition helper on {service}: {type(exc).__name__}: {exc}") from exc
    finally:
        with contextlib.suppress(docker.errors.DockerException):
            helper.remove(force=True)
    if int(result.get("StatusCode", 1)) != 0:
        raise FaultError(f"partition {args[0]} on {service}: {err.strip()[:300]}")
