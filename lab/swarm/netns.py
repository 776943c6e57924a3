"""The local swarm's network: a hub namespace with a bridge, one namespace per node, and a
veth from the host into the hub.

Why namespaces held by processes (``unshare --net sleep infinity``) and not ``ip netns
add``: nothing is left in the root namespace's /run/netns to go stale, and the namespace
dies with its holder, taking every veth end inside it along. Why a hub: node traffic is
switched by a bridge in a namespace of its own, away from the host's iptables (Docker sets
the host's FORWARD policy to DROP). The host gets 192.168.231.253 on the hub so ``lab run``
reaches the ports the nodes publish on their own addresses.

Addresses (a /24 of the lab's own; the Compose lab uses 10.231.0.0/24, the swarm's overlays
10.232.0.0/16): node i is .1i (i = 1..9), the host .253, the hub's bridge .254; nothing
listens on the hub's udp/53, which makes it the engines' fast-failing DNS server.
Links and bridges are named ``glab-…`` so :func:`our_links` finds them.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from lab.errors import RuntimeUnavailable
from lab.swarm import pids

SUBNET = "192.168.231"
PREFIX_LEN = 24
HUB_ADDRESS = f"{SUBNET}.254"
HOST_ADDRESS = f"{SUBNET}.253"
BRIDGE = "glab-br0"
HOST_LINK = "glab-host"
"""The host's end of its veth into the hub (root namespace)."""
HOST_PEER = "glab-hostp"
"""Its other end, a port of the hub's bridge."""
LINK_PREFIX = "glab-"
MAX_NODES = 9


def node_address(index: int) -> str:
    """Node ``index``'s address (1 -> 192.168.231.11)."""
    if not 1 <= index <= MAX_NODES:
        raise ValueError(f"node index {index} outside 1..{MAX_NODES}")
    return f"{SUBNET}.{10 + index}"


def node_link(index: int) -> str:
    """The hub's end of node ``index``'s veth (the node's end is ``eth0``)."""
    return f"{LINK_PREFIX}vn{index}"


def _run(argv: Sequence[str], what: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeUnavailable(f"{what}: {' '.join(argv)}: {exc}") from exc
    if done.returncode != 0:
        raise RuntimeUnavailable(
            f"{what}: `{' '.join(argv)}` exited {done.returncode}: {done.stderr.strip()}"
        )
    return done.stdout


def in_netns(holder: int, *argv: str) -> list[str]:
    """``argv`` run in the network namespace of process ``holder``."""
    return ["nsenter", f"--net=/proc/{holder}/ns/net", *argv]


def _netns_id(pid: int | str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return ""


def spawn_holder(env: Mapping[str, str], timeout: float = 5.0) -> int:
    """A process holding a new network namespace; its pid once it has unshared."""
    try:
        pid = pids.spawn_detached(["unshare", "--net", "--", "sleep", "infinity"], env)
    except OSError as exc:
        raise RuntimeUnavailable(
            f"cannot start `unshare --net` ({exc}): install util-linux and run as root"
        ) from exc
    host = _netns_id("self")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ns = _netns_id(pid)
        if ns and ns != host:
            return pid
        if not pids.wait_gone([pid], 0):
            raise RuntimeUnavailable(
                "`unshare --net` exited at once: creating network namespaces needs root "
                "(CAP_SYS_ADMIN)"
            )
        time.sleep(0.01)
    pids.stop([pid], Path(env.get(pids.MARKER, "/")), 1.0)
    raise RuntimeUnavailable("`unshare --net` did not enter a new namespace in time")


def setup_hub(hub: int) -> None:
    """The hub's bridge, addressed .254, up."""
    for argv in (
        ["ip", "link", "set", "lo", "up"],
        ["ip", "link", "add", BRIDGE, "type", "bridge"],
        ["ip", "addr", "add", f"{HUB_ADDRESS}/{PREFIX_LEN}", "dev", BRIDGE],
        ["ip", "link", "set", BRIDGE, "up"],
    ):
        _run(in_netns(hub, *argv), "hub network")


def attach_node(hub: int, node: int, index: int) -> None:
    """Node ``index``'s veth: ``eth0`` with its address in the node, the other end on the
    hub's bridge."""
    link = node_link(index)
    _run(
        in_netns(
            hub,
            "ip",
            "link",
            "add",
            link,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            str(node),
        ),
        f"node {index} veth",
    )
    _run(in_netns(hub, "ip", "link", "set", link, "master", BRIDGE, "up"), f"node {index} veth")
    for argv in (
        ["ip", "link", "set", "lo", "up"],
        ["ip", "addr", "add", f"{node_address(index)}/{PREFIX_LEN}", "dev", "eth0"],
        ["ip", "link", "set", "eth0", "up"],
    ):
        _run(in_netns(node, *argv), f"node {index} network")


def check_host_link_free() -> None:
    """RuntimeUnavailable when the host veth exists: one local swarm per machine (the host
    side of the /24 is one address), and that one may be another checkout's."""
    if Path(f"/sys/class/net/{HOST_LINK}").exists():
        raise RuntimeUnavailable(
            f"link {HOST_LINK} exists: a local swarm is already up on this machine (maybe "
            "another checkout's); run `lab down` there first"
        )


def attach_host(hub: int) -> None:
    """The host's veth into the hub, addressed .253 on the host's side. On failure it
    removes what it made, and it never touches a link it did not create."""
    check_host_link_free()
    _run(["ip", "link", "add", HOST_LINK, "type", "veth", "peer", "name", HOST_PEER,
          "netns", str(hub)], "host veth")  # fmt: skip
    try:
        _run(in_netns(hub, "ip", "link", "set", HOST_PEER, "master", BRIDGE, "up"), "host veth")
        _run(["ip", "addr", "add", f"{HOST_ADDRESS}/{PREFIX_LEN}", "dev", HOST_LINK], "host veth")
        _run(["ip", "link", "set", HOST_LINK, "up"], "host veth")
    except RuntimeUnavailable:
        detach_host()
        raise


def detach_host() -> None:
    """Remove the host's veth (its hub end goes with it); no error when absent."""
    if Path(f"/sys/class/net/{HOST_LINK}").exists():
        subprocess.run(["ip", "link", "del", HOST_LINK], capture_output=True, check=False)


def our_links() -> list[str]:
    """``glab-`` links in the host's namespace (the host veth; bridges if ever misplaced)."""
    try:
        names = os.listdir("/sys/class/net")
    except OSError:
        return []
    return sorted(n for n in names if n.startswith(LINK_PREFIX))
