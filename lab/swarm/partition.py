"""A task cut off the stack's overlay by iptables in its own namespace (grape partitions).

Why not ``docker network disconnect`` as on Compose: engine 20.10 accepts it on the
stack's (attachable) overlay, but the task's service name is gone from Swarm's DNS for
good after a ``network connect`` back, even with ``--alias worker-2`` (measured on the
local swarm: ``worker-2`` stopped resolving on every node until a new task replaced it;
Swarm, not the engine, owns a task's endpoints and service records). So the same helper
image the Compose lab's network faults use (``LAB_NETFAULT_IMAGE``, loaded into every
node of a local swarm) runs once on the task's node, in the task's network namespace,
and drops every packet from and to the overlay's subnet (lab.netfault.rules.
partition_plan). The task's published control port is reached through
``docker_gwbridge``, not the overlay, so the host still sees the grape while the other
grapes do not. Healing removes our chains (the agent's idempotent
``clean``), so a second heal or a janitor's heal of a task that was never cut is harmless.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import docker.errors

from lab.errors import FaultError
from lab.netfault.helper import HELPER_LABEL, TARGET_LABEL, run_oneshot
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
    run_oneshot(
        client,
        image,
        args,
        labels={HELPER_LABEL: "swarm-partition", TARGET_LABEL: service},
        network_mode=f"container:{container.id}",
        where=service,
        timeout=HELPER_TIMEOUT_S,
    )
