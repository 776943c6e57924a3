"""The agent in a Swarm node's own network namespace: ``network_mode: host`` on its engine.

Why the node's engine and not the host: a node fault must cut the node's own traffic (the
engine's Swarm gossip and raft on 7946/2377, the overlay's VXLAN on udp/4789), which lives
in the node's namespace, not in any container's; and on a real multi-host swarm the lab
reaches a node only through its engine's API. So the helper (the netfault image every node
has) runs there with the host's network, ``cap_drop: [ALL]`` plus ``NET_ADMIN`` only for
the second it runs, read-only, no Docker socket: the same one-shot as for a container's
namespace (:func:`lab.netfault.helper.run_oneshot`), the same chains and the same
idempotent ``clean``. Each helper carries :data:`NODE_LABEL` (the node's name) besides
:data:`~lab.netfault.helper.HELPER_LABEL`, so a sweep finds ours by label.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Any

import docker.errors

from lab.errors import FaultError
from lab.netfault.helper import HELPER_LABEL, run_oneshot

NODE_LABEL = "com.grenache-lab.netfault-node"
NO_DEVICE = "lab-no-such-dev"
"""``clean`` also removes our tbf qdisc from a device; a node fault sets none, and the
node's devices are not ours to touch: the agent is pointed at one that does not exist."""


class NodeNetfault:
    """Runs the agent in one node's namespace through that node's engine (``client``)."""

    def __init__(self, client: Any, image: str, node: str) -> None:
        self.client = client
        self.image = image
        self.node = node
        self.exited_at: float | None = None  # monotonic: when the last agent exited

    def agent(self, args: Sequence[str], timeout: float = 30.0) -> dict[str, Any]:
        state, self.exited_at = run_oneshot(
            self.client,
            self.image,
            args,
            labels={HELPER_LABEL: "oneshot", NODE_LABEL: self.node},
            network_mode="host",
            where=f"node {self.node}",
            timeout=timeout,
        )
        return state

    def run(self, commands: Sequence[Sequence[str]]) -> dict[str, Any]:
        """Run the plan's commands; what the namespace holds afterwards (``show``)."""
        return self.agent(["run", json.dumps({"commands": [list(c) for c in commands]})])

    def clean(self, chains: Sequence[str]) -> dict[str, Any]:
        """Remove exactly ``chains`` and their jumps (absent ones are no error)."""
        arg = {"chains": list(chains), "dev": NO_DEVICE, "qdisc": False}
        return self.agent(["clean", json.dumps(arg)])

    def show(self) -> dict[str, Any]:
        return self.agent(["show", json.dumps({"dev": NO_DEVICE})])

    def remove_helpers(self) -> list[str]:
        """Helpers of ours left on this node (a run killed mid-call); their names."""
        try:
            found = self.client.containers.list(
                all=True, filters={"label": NODE_LABEL}, ignore_removed=True
            )
        except docker.errors.DockerException as exc:
            raise FaultError(f"cannot list netfault helpers on {self.node}: {exc}") from exc
        gone = []
        for h in found:
            with contextlib.suppress(docker.errors.NotFound):
                h.remove(force=True)
                gone.append(str(h.name))
        return gone
