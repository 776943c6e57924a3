"""One Docker engine per local swarm node, in that node's network namespace.

Each dockerd runs in a private mount and UTS namespace entered from the node's network
namespace, set up by a short shell script (:func:`engine_script`):

* hostname ``lab-nN``: Swarm names the node after it;
* a fresh sysfs, because /sys/class/net must show the node's links, not the host's; the
  cgroup tree is moved aside and back over it (``ip netns exec`` loses it, and dockerd
  needs it);
* a private tmpfs on /run (so /run/docker, /run/containerd and the engine's netns and
  shim sockets are the node's own) and a private directory over /etc/docker (own key.json,
  engine id, no host daemon.json);
* its own data root (on a real file system: overlay2 cannot sit on overlayfs), pidfile and
  socket (the default pidfile would overwrite the host engine's /var/run/docker.pid),
  ``--cgroup-parent glab-<tag>-nN`` (so teardown finds the containers), ``--dns`` the hub's
  address, where nothing listens on udp/53, so an unknown name fails at once instead of
  waiting ~10 s for host resolvers the node cannot reach, and
  ``DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1`` (tasks use the copied images, no registry).
"""

from __future__ import annotations

import os
import shlex
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lab.errors import RuntimeUnavailable
from lab.swarm import netns, pids

UNIX_PATH_MAX = 107
"""Longest path a unix socket address holds (108 bytes with the NUL)."""
BAD_DATA_FS = frozenset({"overlay", "aufs"})
"""File systems overlay2 cannot use as its backing store."""
DATA_TMPFS_SIZE = "8g"
"""Upper bound of a tmpfs data root (tmpfs takes only what it holds)."""
FALLBACK_DATA_BASE = Path("/var/lib/grenache-lab-swarm")
"""Data roots go under ``<this>/<tag>`` when the checkout sits on overlayfs."""


@dataclass(frozen=True)
class EngineFiles:
    """Where node ``index``'s engine keeps its files on the host."""

    index: int
    home: Path
    """``<swarm dir>/nN``: socket, pidfile, log, private /etc/docker."""
    data_root: Path
    data_tmpfs: bool = False
    """Mount a tmpfs on the data root inside the node's mount namespace: images load at
    memory speed and the whole store vanishes with the namespace (costs RAM per node)."""

    @property
    def name(self) -> str:
        return f"lab-n{self.index}"

    @property
    def socket(self) -> Path:
        return self.home / "docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pidfile(self) -> Path:
        return self.home / "docker.pid"

    @property
    def log(self) -> Path:
        return self.home / "dockerd.log"

    @property
    def etc_docker(self) -> Path:
        return self.home / "etc-docker"

    @property
    def cgroup(self) -> str:
        """``glab-<tag>-nN``: the cgroup parent of this node's containers."""
        return f"{pids.cgroup_prefix(self.home.parent)}n{self.index}"


def fs_type(mountinfo: str, path: Path) -> str:
    """The file system type holding ``path``, from /proc/self/mountinfo's text (pure)."""
    best, best_type = "", ""
    target = str(path)
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) < 5 or not right:
            continue
        point = fields[4].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, best_type = point, right.split()[0]
    return best_type


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path.resolve()


def data_base(swarm_dir: Path) -> Path:
    """Where the nodes' data roots go: the swarm directory when its file system can carry
    overlay2, else /var/lib/grenache-lab-swarm (a lab inside a container)."""
    mountinfo = Path("/proc/self/mountinfo").read_text()
    for base in (swarm_dir, FALLBACK_DATA_BASE / pids.tag(swarm_dir)):
        if fs_type(mountinfo, _existing(base)) not in BAD_DATA_FS:
            return base
    raise RuntimeUnavailable(
        f"neither {swarm_dir} nor {FALLBACK_DATA_BASE} is on a file system overlay2 can use "
        "(both are on overlayfs): mount a volume or a tmpfs at "
        f"{FALLBACK_DATA_BASE} and run again"
    )


def engine_files(swarm_dir: Path, base: Path, index: int, data_tmpfs: bool = False
                 ) -> EngineFiles:  # fmt: skip
    """Node ``index``'s files; RuntimeUnavailable when the socket path is too long."""
    files = EngineFiles(index, swarm_dir / f"n{index}", base / f"n{index}" / "data", data_tmpfs)
    if len(str(files.socket)) > UNIX_PATH_MAX:
        raise RuntimeUnavailable(
            f"socket path {files.socket} is longer than a unix socket allows "
            f"({UNIX_PATH_MAX} bytes): use a checkout with a shorter path"
        )
    return files


def engine_script(files: EngineFiles) -> str:
    """The shell script that prepares node ``files.index``'s mount namespace and becomes
    its dockerd (pure, for tests)."""
    q = shlex.quote
    cmd = [
        "dockerd",
        "--data-root", str(files.data_root),
        "--exec-root", "/run/docker",
        "--pidfile", str(files.pidfile),
        "-H", files.docker_host,
        "--cgroup-parent", f"/{files.cgroup}",
        "--dns", netns.HUB_ADDRESS,
    ]  # fmt: skip
    return "\n".join(
        [
            "set -eu",
            f"hostname {files.name}",
            "mount -t tmpfs -o mode=0755,size=256m glab-run /run",
            "mkdir -p /run/glab-cgroup /run/docker /run/containerd",
            "mount --rbind /sys/fs/cgroup /run/glab-cgroup",
            "mount -t sysfs glab-sysfs /sys",
            "mount --move /run/glab-cgroup /sys/fs/cgroup",
            "rmdir /run/glab-cgroup",
            f"mount --bind {q(str(files.etc_docker))} /etc/docker",
            *(
                [
                    f"mount -t tmpfs -o mode=0710,size={DATA_TMPFS_SIZE} glab-data "
                    f"{q(str(files.data_root))}"
                ]
                if files.data_tmpfs
                else []
            ),
            "exec " + " ".join(q(a) for a in cmd),
        ]
    )


def engine_env(swarm_dir: Path) -> dict[str, str]:
    """The engines' environment: the host's, minus Docker client settings, plus the marker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env[pids.MARKER] = str(swarm_dir)
    env["DOCKER_SERVICE_PREFER_OFFLINE_IMAGE"] = "1"
    return env


def start(files: EngineFiles, holder: int, env: Mapping[str, str]) -> int:
    """Start node ``files.index``'s dockerd in the namespace of ``holder``; its pid."""
    for d in (files.home, files.etc_docker, files.data_root):
        d.mkdir(parents=True, exist_ok=True)
    files.socket.unlink(missing_ok=True)
    argv = netns.in_netns(
        holder,
        "unshare", "--mount", "--uts", "--propagation", "private",
        "sh", "-c", engine_script(files),
    )  # fmt: skip
    try:
        return pids.spawn_detached(argv, env, files.log)
    except OSError as exc:
        raise RuntimeUnavailable(f"cannot start dockerd for {files.name}: {exc}") from exc


def ping(sock: Path, timeout: float = 1.0) -> bool:
    """True when the engine on ``sock`` answers ``GET /_ping`` with OK."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = s.recv(4096)
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.") and reply.rstrip().endswith(b"OK")


def wait_ready(files: EngineFiles, pid: int, timeout: float = 30.0) -> None:
    """Poll the engine until it answers; RuntimeUnavailable with its log's tail otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ping(files.socket):
            return
        if not pids.wait_gone([pid], 0):
            break
        time.sleep(0.1)
    tail = files.log.read_text(errors="replace").splitlines()[-5:] if files.log.exists() else []
    raise RuntimeUnavailable(
        f"dockerd of {files.name} did not answer on {files.socket} within {timeout:.0f}s "
        f"(log {files.log}): " + " | ".join(tail)
    )


def containerd_pid(dockerd: int) -> int | None:
    """The containerd that ``dockerd`` started (its child), if any."""
    try:
        children = Path(f"/proc/{dockerd}/task/{dockerd}/children").read_text().split()
    except OSError:
        return None
    for child in children:
        if pids.command_line(int(child)).startswith("containerd"):
            return int(child)
    return None
