"""Every fault kind the engine knows, and the factory that builds one from a step.

Its own module because it gathers the kinds of :mod:`lab.scenario.faults.nemesis`, of
:mod:`lab.scenario.faults.network` and of :mod:`lab.scenario.faults.nodes`, which all
subclass :class:`Fault`: the registry sits above them, so none imports another's kinds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lab.errors import FaultError
from lab.scenario.faults.base import Fault, FaultContext
from lab.scenario.faults.nemesis import FAULT_KINDS
from lab.scenario.faults.network import NETNS_FAULT_KINDS
from lab.scenario.faults.nodes import NODE_FAULT_KINDS, node_target
from lab.scenario.runtime.protocol import Runtime, Target, target

SERVICE_KINDS = ("worker", "grape", "client")
"""What a fault on a service may target (the node kinds target a Swarm node)."""


def all_fault_kinds() -> dict[str, type[Fault]]:
    """The container and Toxiproxy kinds, the network-namespace ones and the node ones."""
    return {
        **FAULT_KINDS,
        **{cls.kind: cls for cls in NETNS_FAULT_KINDS},
        **{cls.kind: cls for cls in NODE_FAULT_KINDS},
    }


def fault_target(runtime: Runtime, kind: str, name: str) -> Target:
    """What a step of ``kind`` names, as the runtime has it: a service, or a Swarm node for
    the node kinds; RuntimeUnavailable naming what exists when it has no such thing."""
    if any(cls.kind == kind for cls in NODE_FAULT_KINDS):
        return node_target(runtime, name)
    return target(runtime, name, SERVICE_KINDS)


def make_fault(
    fault_id: str, kind: str, target: Target, params: Mapping[str, Any], ctx: FaultContext
) -> Fault:
    """The fault of ``kind``; unknown kinds and bad params raise FaultError naming them."""
    kinds = all_fault_kinds()
    cls = kinds.get(kind)
    if cls is None:
        raise FaultError(
            f"fault {fault_id}: unknown kind {kind!r}; known: {', '.join(sorted(kinds))}"
        )
    try:
        return cls(fault_id, target, params, ctx)
    except FaultError as exc:
        if str(exc).startswith(f"fault {fault_id}"):
            raise
        raise FaultError(f"fault {fault_id} ({kind} on {target.name}): {exc}") from None
