"""Every fault kind the engine knows, and the factory that builds one from a step.

Its own module because it gathers the kinds of :mod:`lab.scenario.faults.nemesis` and of
:mod:`lab.scenario.faults.network`, and the network kinds subclass :class:`Fault`: the
registry sits above both, so neither imports the other's kinds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lab.errors import FaultError
from lab.scenario.faults.base import Fault, FaultContext
from lab.scenario.faults.nemesis import FAULT_KINDS
from lab.scenario.faults.network import NETNS_FAULT_KINDS
from lab.scenario.runtime.protocol import Target


def all_fault_kinds() -> dict[str, type[Fault]]:
    """The container and Toxiproxy kinds plus the network-namespace ones."""
    return {**FAULT_KINDS, **{cls.kind: cls for cls in NETNS_FAULT_KINDS}}


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
