"""Faults of whole Swarm nodes: ``node_partition`` and ``node_down`` (swarm runtime only).

A node fault acts on the node's own network namespace, not on a container's: a one-shot
netfault helper runs on *that node's* engine with ``network_mode: host``
(:mod:`lab.netfault.hostns`) and installs the fault's two chains
(:func:`lab.netfault.rules.partition_plan`: INPUT drops what comes from the cut addresses,
OUTPUT what goes to them). Everything between the node and those addresses stops: the
engines' Swarm gossip and raft (7946, 2377), the overlay's VXLAN (udp/4789) that carries
every task-to-task packet, anything else. Only the node's engine API is used, so this
works on a real multi-host swarm as on the local one.

- ``node_partition``: cut from the other nodes; the lab's host still reaches it (the run
  reads every client's control port on the nodes' addresses).
- ``node_down``: a hung host: every lab task on it paused, and the node cut from the
  other nodes *and* from the lab's host. Not modelled: the node's engine keeps running
  (the lab drives it over its socket), nothing reboots, containers keep their memory.

What Swarm does meanwhile (measured on the local swarm): the manager marks the node
``Down`` ~13 s into the cut and gives its tasks up (desired state ``shutdown``; with the
stack's ``restart_policy: none`` nothing replaces them); when the node is back (``Ready``
within ~1 s of the heal) its engine stops those tasks a few seconds later. So heal, after
removing the rules (and unpausing) and once the manager sees every node ``Ready``, gives
every service whose task was given up a new task on its node (``service update --force``,
as ``start`` after a kill) and waits until each runs: ``ended`` is when the services run
again. Every service, not only the node's: a cut of the manager's own node leaves the
*other* nodes Down in its view. A shorter cut (no node seen Down) leaves the tasks alone.

The proxies of the node's workers are closed while the fault holds, as a kill closes its
worker's: Toxiproxy dials a worker as each client connects, inside the proxy's accept
loop, and a dial into the cut hangs. Measured with them left open: every request through
``toxiproxy:21001`` still timed out 20 s after the heal (worker-1 running again, on a new
address), the proxy wedged by the dials queued during the cut. So clients see the node's
workers refuse connections (through Toxiproxy, which is how they reach any worker here),
and the proxies open again once the workers run after the heal.

For the checks, the faulty peers are the workers whose tasks run on the node (what
clients see for them, ``toxiproxy:2100i``), as for a kill of each: the oracle avoids them
while the fault holds.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar
from urllib.parse import urlparse

from lab.errors import FaultError, LabError, RuntimeUnavailable
from lab.netfault.helper import NETFAULT_REPO
from lab.netfault.hostns import NodeNetfault
from lab.netfault.rules import NetPlan, chains_of, partition_plan
from lab.scenario.faults.base import Fault, FaultContext
from lab.scenario.faults.leftovers import Janitor
from lab.scenario.faults.toxic import sweep_ours
from lab.scenario.plan.nodekinds import NODE_INDEX
from lab.scenario.runtime.protocol import Runtime, Target
from lab.scenario.runtime.swarm import SwarmRuntime
from lab.stack.engine import Paths, read_env_file
from lab.swarm.state import SwarmNode
from lab.swarm.tasks import Swarm

NODE_KIND = "node"
GIVEN_UP_NOT = frozenset({"", "new", "pending", "assigned", "accepted", "ready", "running"})
"""Desired states of a task the manager still wants to run (``""``: not said)."""
REVIVE_TIMEOUT_S = 60.0
"""A given-up task replaced: scheduled once the old one stops (~4 s after the heal, its
mode-host ports free), created and started; seen at 5-10 s on the local swarm."""
READY_TIMEOUT_S = 30.0
"""The node back as ``Ready`` in the manager's view after the rules are gone (~1 s)."""
DATA_PATH_TIMEOUT_S = 90.0
"""After the heal, how long the node's workers may stay unreachable the way Toxiproxy
dials them before the heal fails saying so (Swarm's overlay and DNS reconverge by gossip)."""
DIAL = (
    "import socket, sys\n"
    "try:\n"
    "    socket.create_connection((sys.argv[1], int(sys.argv[2])), 2).close()\n"
    "    print('ok')\n"
    "except OSError as exc:\n"
    "    print(type(exc).__name__, exc)\n"
)
"""A TCP connect to ``host port``, name resolved in the container: Toxiproxy's dial."""


# -- nodes and what runs on them -------------------------------------------------------


def swarm_of(runtime: Runtime) -> SwarmRuntime:
    """The swarm runtime, or a FaultError: no other runtime has nodes."""
    if not isinstance(runtime, SwarmRuntime):
        raise FaultError(f"node faults need the swarm runtime, not {runtime.name}")
    return runtime


def resolve_node(nodes: Sequence[SwarmNode], name: str) -> SwarmNode:
    """``node-i`` (the i-th node of the swarm's state) or a node's hostname."""
    m = NODE_INDEX.match(name)
    if m and 1 <= int(m.group(1)) <= len(nodes):
        return nodes[int(m.group(1)) - 1]
    for n in nodes:
        if n.name == name:
            return n
    known = ", ".join(f"node-{i} ({n.name})" for i, n in enumerate(nodes, 1))
    raise RuntimeUnavailable(f"the swarm has no node {name!r}; it has {known or 'none'}")


def node_target(runtime: Runtime, name: str) -> Target:
    """The target a node fault acts on; RuntimeUnavailable when the swarm has no such node."""
    rt = swarm_of(runtime)
    resolve_node(rt.nodes(), name)
    return Target(name=name, kind=NODE_KIND)


def services_on(rt: SwarmRuntime, node: SwarmNode) -> list[str]:
    """The lab's services whose current task runs on ``node``."""
    out = []
    for name in sorted(rt.targets()):
        with contextlib.suppress(RuntimeUnavailable):
            if rt.node_of(name).name == node.name:
                out.append(name)
    return out


def host_address(state_info: Mapping[str, Any], node: SwarmNode) -> str:
    """The lab host's address as ``node`` sees it: the local swarm's host veth, else the
    source address this machine's routing picks toward the node."""
    known = state_info.get("host_address")
    if known:
        return str(known)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((node.address, 9))  # no packet: a UDP connect only picks the route
        return str(s.getsockname()[0])


def netfault_image(paths: Paths | None = None) -> str:
    """The helper image every node has (``LAB_NETFAULT_IMAGE`` of ``.cache/stack.env``)."""
    try:
        env = read_env_file((paths or Paths.find()).state_env)
    except (LabError, OSError):
        env = {}
    return env.get("LAB_NETFAULT_IMAGE") or f"{NETFAULT_REPO}:latest"


def node_state(swarm: Swarm, node: SwarmNode) -> str:
    """The manager's view of ``node``: ``ready``, ``down``, ``unknown``, ..."""
    try:
        for n in swarm.manager().nodes.list():
            if (n.attrs.get("Description") or {}).get("Hostname") == node.name:
                return str((n.attrs.get("Status") or {}).get("State", "unknown"))
    except Exception as exc:  # docker-py's errors, said as the fault's
        raise FaultError(f"cannot read node {node.name} from the manager: {exc}") from exc
    return "missing"


def revive(rt: SwarmRuntime, names: Sequence[str], timeout: float = REVIVE_TIMEOUT_S) -> list[str]:
    """A new task for each of ``names`` whose task the manager gave up; those names.

    Given up: desired state no longer ``running`` (the node was seen Down). The new task
    lands on the same node (the stack pins every service); waited until it runs.
    """
    services = rt.swarm.services()
    old: dict[str, str] = {}
    for name in names:
        svc = services.get(name)
        if svc is None:
            continue
        task = rt.swarm.task_of(svc, name)
        if task.desired in GIVEN_UP_NOT:
            continue
        try:
            svc.force_update()
        except Exception as exc:  # docker-py's errors, said as the fault's
            raise FaultError(f"docker service update --force {name}: {exc}") from exc
        old[name] = task.task_id
    deadline = time.monotonic() + timeout
    waiting = dict(old)
    while waiting:
        for name, task_id in list(waiting.items()):
            task = rt.swarm.task_of(rt.swarm.services()[name], name)
            if task.running and task.task_id != task_id:
                del waiting[name]
        if waiting and time.monotonic() > deadline:
            raise FaultError(
                f"no new running task within {timeout:.0f}s for {', '.join(sorted(waiting))}"
            )
        if waiting:
            time.sleep(0.2)  # polling the manager for the new tasks, with a deadline
    if old:
        rt.refresh()
    return sorted(old)


# -- the faults ------------------------------------------------------------------------


class NodeFault(Fault):
    """Rules in a node's own namespace cutting it from ``cut_addresses()``."""

    target_kinds: ClassVar[tuple[str, ...]] = (NODE_KIND,)
    pauses: ClassVar[bool] = False

    def __init__(
        self, fault_id: str, target: Target, params: Mapping[str, Any], ctx: FaultContext
    ) -> None:
        super().__init__(fault_id, target, params, ctx)
        self.rt = swarm_of(ctx.runtime)
        self.node = resolve_node(self.rt.nodes(), target.name)
        self.services = services_on(self.rt, self.node)
        targets = self.rt.targets()
        workers = [targets[s] for s in self.services if targets[s].kind == "worker"]
        self.proxies = [w.proxy for w in workers if w.proxy]
        self.record = replace(
            self.record,
            peers=tuple(w.peer for w in workers if w.peer),
            params={
                **self.record.params,
                "node": self.node.name,
                "address": self.node.address,
                "services": list(self.services),
            },
        )
        try:
            client = self.rt.swarm.engine(self.node)
        except RuntimeUnavailable as exc:
            raise FaultError(str(exc)) from exc
        self.helper = NodeNetfault(client, netfault_image(self.rt.paths), self.node.name)
        self.plan: NetPlan | None = None
        self.state: dict[str, Any] = {}
        self.paused: list[str] = []

    def cut_addresses(self) -> list[str]:
        """The other nodes' addresses (every node the swarm's state knows)."""
        return [n.address for n in self.rt.nodes() if n.name != self.node.name]

    def _note(self, **params: Any) -> None:
        self.record = replace(self.record, params={**self.record.params, **params})

    def _apply(self) -> None:
        self._note(proxies_closed=list(self.proxies))
        for proxy in self.proxies:  # first, as a kill does: see the module's docstring
            self.ctx.toxiproxy.set_enabled(proxy, False)
        if self.pauses:
            for name in self.services:
                self.rt.pause(name)
                self.paused.append(name)
        peers = self.cut_addresses()
        if not peers:
            raise FaultError(f"nothing to cut {self.node.name} from (a one-node swarm)")
        self._note(cut=peers)
        self.plan = partition_plan(self.id, peers, "both")
        self.state = self.helper.run(self.plan.commands)

    def _started(self, t: float) -> float:
        return _helper_time(self, t)

    def _confirm_applied(self) -> None:
        assert self.plan is not None
        chains = self.state.get("chains") or {}
        jumps = " ".join(self.state.get("jumps") or [])
        for chain, count in self.plan.rules.items():
            if len(chains.get(chain) or []) != count:
                raise FaultError(
                    f"chain {chain} on node {self.node.name} has "
                    f"{len(chains.get(chain) or [])} rule(s), expected {count}"
                )
            if f"-j {chain}" not in jumps:
                raise FaultError(f"no jump to {chain} on node {self.node.name}")
        for name in self.paused:
            if self.rt.state(name) != "paused":
                raise FaultError(f"{name} on {self.node.name} is {self.rt.state(name)}, not paused")

    def _remove(self) -> None:
        self._note(manager_saw=node_state(self.rt.swarm, self.node))
        # unpaused while the node is still cut: once the manager reaches it again, the
        # node's engine stops the tasks it gave up, and a paused one would refuse both
        # (seen: "docker unpause: 500" at a heal that unpaused after removing the rules)
        for name in list(self.paused):
            if self.rt.state(name) == "paused":
                self.rt.unpause(name)
            self.paused.remove(name)
        self.state = self.helper.clean(chains_of(self.id))
        cut_ended = time.monotonic()
        self._wait_ready()
        self._note(revived=revive(self.rt, sorted(self.rt.targets())))
        self._wait_data_path(cut_ended)
        for proxy in self.proxies:  # the workers run again: their proxies may dial them
            self.ctx.toxiproxy.set_enabled(proxy, True)
        self._note(back_after_s=round(time.monotonic() - cut_ended, 2))

    def _wait_data_path(self, cut_ended: float) -> None:
        """Every worker of the node answers a connect from Toxiproxy's node, by name.

        The manager seeing the node Ready and its tasks running does not mean traffic
        flows: task addresses and names reach the other nodes by the engines' gossip, which
        a cut interrupts. In one of four suite runs, worker-1's new task on the healed node
        stayed unreachable from Toxiproxy's node for over a minute while every node was
        Ready; reopening its proxy then would time every client out. So the heal ends when
        a task on Toxiproxy's node (Toxiproxy's own image has no shell) connects to each
        upstream the way Toxiproxy dials it, and fails saying so after
        ``DATA_PATH_TIMEOUT_S``.
        """
        if not self.proxies:
            return
        home = self.rt.node_of("toxiproxy").name
        probers = [
            n for n, t in self.rt.targets().items()
            if t.kind in ("grape", "worker", "client") and self.rt.node_of(n).name == home
        ]  # fmt: skip
        if not probers:
            return  # nothing with a Python on Toxiproxy's node: the proxies will tell
        deadline = time.monotonic() + DATA_PATH_TIMEOUT_S
        for proxy in self.proxies:
            host, _, port = self.ctx.toxiproxy.proxy(proxy).upstream.rpartition(":")
            while (seen := self._dial(probers[0], host, port)) != "ok":
                if time.monotonic() > deadline:
                    raise FaultError(
                        f"{host}:{port} unreachable from {home} {DATA_PATH_TIMEOUT_S:.0f}s "
                        f"after node {self.node.name}'s heal: {seen[:120]}"
                    )
                time.sleep(0.5)  # polling the data path, with a deadline
        self._note(data_path_after_s=round(time.monotonic() - cut_ended, 2))

    def _dial(self, prober: str, host: str, port: str) -> str:
        """``ok``, or why ``prober``'s connect to ``host:port`` failed."""
        return self.rt.exec_in(prober, ["python3", "-c", DIAL, host, port])[1].strip()

    def _wait_ready(self) -> None:
        """Every node ``Ready`` in the manager's view: cutting the manager's own node
        leaves the *other* nodes Down for it, and their tasks given up too."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        for node in self.rt.nodes():
            while (seen := node_state(self.rt.swarm, node)) != "ready":
                if time.monotonic() > deadline:
                    raise FaultError(
                        f"node {node.name} is {seen} {READY_TIMEOUT_S:.0f}s after the heal"
                    )
                time.sleep(0.2)  # polling the manager's view, with a deadline

    def _confirm_removed(self) -> None:
        left = [c for c in chains_of(self.id) if c in (self.state.get("chains") or {})]
        if left:
            raise FaultError(f"chain(s) {', '.join(left)} still on node {self.node.name}")
        down = [n for n in self.services if self.rt.state(n) != "running"]
        if down:
            raise FaultError(f"not running again after the heal: {', '.join(down)}")

    def leftover(self) -> dict[str, Any]:
        return {
            **super().leftover(),
            "node": {
                "name": self.node.name,
                "chains": list(chains_of(self.id)),
                "services": list(self.services),
                "proxies": list(self.proxies),  # closed while the fault holds
            },
        }

    @classmethod
    def undo_leftovers(cls, found: Sequence[Mapping[str, Any]], janitor: Janitor) -> None:
        """Our chains off every node, paused tasks unpaused, given-up tasks replaced."""
        if janitor.info.get("runtime") != SwarmRuntime.name or not found:
            return
        chains = [str(c) for f in found for c in (f.get("node") or {}).get("chains") or []]
        proxies = [str(p) for f in found for p in (f.get("node") or {}).get("proxies") or []]
        services = [str(s) for f in found for s in (f.get("node") or {}).get("services") or []]
        try:
            rt = SwarmRuntime.connect()
        except LabError as exc:
            janitor.failed(f"cannot reach the swarm to undo node faults: {exc}")
            return
        try:
            image = netfault_image(rt.paths)
            for node in rt.nodes():
                try:
                    helper = NodeNetfault(rt.swarm.engine(node), image, node.name)
                    for name in helper.remove_helpers():
                        janitor.did(f"removed netfault helper {name} on {node.name}")
                    helper.clean(chains)
                    janitor.did(f"removed node fault chains on {node.name}")
                except LabError as exc:
                    janitor.failed(f"clean node faults on {node.name}: {exc}")
            for name in sorted(set(services)):
                with contextlib.suppress(LabError):
                    if rt.state(name) == "paused":
                        rt.unpause(name)
                        janitor.did(f"unpaused {name}")
            for name in revive(rt, sorted(rt.targets())):
                janitor.did(f"started {name} again (a new task: the manager had given it up)")
            if proxies:
                sweep_ours(janitor, proxies, needed=True)
        except LabError as exc:
            janitor.failed(f"undo node faults: {exc}")
        finally:
            rt.close()


class NodePartition(NodeFault):
    """The node cut from the other nodes; the lab's host still reaches it."""

    kind = "node_partition"


class NodeDown(NodeFault):
    """A hung host: its lab tasks paused, the node cut from the other nodes and the host."""

    kind = "node_down"
    pauses = True

    def __init__(
        self, fault_id: str, target: Target, params: Mapping[str, Any], ctx: FaultContext
    ) -> None:
        super().__init__(fault_id, target, params, ctx)
        api = urlparse(self.node.docker_host)
        if api.scheme != "unix":
            # cutting the host would cut the engine API that the heal itself goes through
            raise FaultError(
                f"node_down cuts {self.node.name} from the lab's host, which reaches its "
                f"engine at {self.node.docker_host}: the heal could not get through; "
                "use node_partition (the host stays reachable)"
            )

    def cut_addresses(self) -> list[str]:
        return [*super().cut_addresses(), host_address(self.rt.swarm.state.local_info, self.node)]

    def leftover(self) -> dict[str, Any]:
        out = super().leftover()
        out["node"]["paused"] = list(self.services)
        return out


def _helper_time(fault: NodeFault, t: float) -> float:
    """When the helper's agent exited (the rules in place), not when its container was
    removed (a few hundred ms later): detection is timed from the fault's start."""
    done = fault.helper.exited_at
    if fault.ctx.now is time.monotonic and done is not None and done <= t:
        return done
    return t


NODE_FAULT_KINDS: tuple[type[Fault], ...] = (NodePartition, NodeDown)
