"""Validation of the Swarm node fault kinds: ``node_partition``, ``node_down``.

Kept apart from ``kinds.py`` (which only registers them) because their targets are not
services of the topology but Swarm nodes: ``node-1``..``node-N`` (node i is the i-th node
of the swarm's state, ``topology.nodes`` of them) or a node's hostname (``lab-n2``), which
only the running swarm knows and which is therefore resolved when the run prepares,
before any fault. They are applied by :mod:`lab.scenario.faults.nodes`, on the swarm
runtime only: a Compose lab or local processes have no nodes to cut.
"""

from __future__ import annotations

import re
from typing import Any

from lab.scenario.plan.yamlsource import Field, describe

NODE_KINDS = ("node_partition", "node_down")
NODE_INDEX = re.compile(r"^node-(\d{1,4})$")
"""``node-3``: the third node of the swarm (the order of ``.cache/swarm/state.json``)."""
HOSTNAME = re.compile(r"^(?=.{1,63}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")
"""One RFC 1123 label: what a Swarm node's hostname (``lab-n2``) is spelt with."""
SWARM = "swarm"
DEFAULT_NODES = 3
"""Nodes a swarm scenario assumes unless its topology says (``lab up --local-nodes 3``)."""
MAX_NODES = 64


def node_target(value: Any, at: Field, nodes: int, services: tuple[str, ...], kind: str) -> str:
    """A node kind's ``target``: ``node-i`` (1 <= i <= ``nodes``) or a hostname.

    ``nodes`` 0 means the scenario's runtime is not swarm: refused here, at the target's
    line, since no other runtime has nodes. A service name is refused with what to write
    instead (a node fault takes down what runs on the node, the services included).
    """
    if nodes <= 0:
        raise at.error(f"{kind} acts on a Swarm node: it needs runtime: swarm")
    names = ", ".join(f"node-{i}" for i in range(1, nodes + 1))
    if isinstance(value, str) and value in services:
        raise at.error(
            f"{kind} acts on a Swarm node ({names} or a node's hostname), not on the "
            f"service {value!r}"
        )
    if isinstance(value, str):
        m = NODE_INDEX.match(value)
        if m:
            i = int(m.group(1))
            if not 1 <= i <= nodes:
                raise at.error(
                    f"no node {value!r}: the topology has {nodes} nodes ({names}; "
                    f"topology.nodes sets how many)"
                )
            return value
        if HOSTNAME.match(value) and not value.startswith("node-"):
            return value  # a hostname: the swarm's state says at run time whether it exists
    raise at.error(f"expected a node ({names}) or a node's hostname, got {describe(value)}")


def parse_nodes(value: Any, at: Field, runtime: str) -> int:
    """``topology.nodes``: how many nodes the swarm has (swarm only), default 3."""
    if value is None:
        return DEFAULT_NODES if runtime == SWARM else 0
    if runtime != SWARM:
        raise at.error("nodes is a swarm topology's (runtime: swarm)")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_NODES:
        raise at.error(f"expected a whole number of nodes 1..{MAX_NODES}, got {describe(value)}")
    return value


def check_runtime(steps: tuple[Any, ...], runtime: str, label: str) -> None:
    """Refuse node kinds in a chaos step's ``kinds`` when the runtime is not swarm.

    A fault step's own target already said so (:func:`node_target`); a chaos step lists
    kinds apart from targets, so its line is named here.
    """
    if runtime == SWARM:
        return
    for i, step in enumerate(steps):
        kinds = [k for k, _ in getattr(step, "kinds", ())]
        bad = [k for k in kinds if k in NODE_KINDS]
        if bad:
            raise Field(label, int(step.line), f"timeline[{i}].kinds").error(
                f"{bad[0]} acts on a Swarm node: it needs runtime: swarm"
            )
