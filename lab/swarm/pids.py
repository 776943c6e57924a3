"""Processes and cgroups of a local swarm: found by a marker, stopped only when ours.

Why a marker: the namespace holders and engines outlive the ``lab up`` that started them,
and a pid written down earlier may have been reused by then. Every process the local swarm
starts carries ``GRENACHE_LAB_SWARM=<its directory>`` in its environment (containerd and
the shims inherit it from dockerd), so teardown and :func:`marked_pids` act on a pid only
while it still carries that value; the host's own dockerd never does. Containers do not
inherit the environment, so they are found by their cgroup parent (``glab-<tag>-nN``, the
tag a hash of the swarm directory), a name only this checkout's local swarm gives.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

MARKER = "GRENACHE_LAB_SWARM"
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC = Path("/proc")


def tag(swarm_dir: Path) -> str:
    """Six hex digits naming ``swarm_dir`` in cgroup and directory names."""
    return hashlib.sha256(str(swarm_dir).encode()).hexdigest()[:6]


def cgroup_prefix(swarm_dir: Path) -> str:
    """``glab-<tag>-``: the start of the name of every cgroup of ``swarm_dir``'s swarm."""
    return f"glab-{tag(swarm_dir)}-"


def spawn_detached(argv: list[str], env: Mapping[str, str], log: Path | None = None) -> int:
    """Start ``argv`` in a session of its own, stdin from /dev/null, output to ``log`` (or
    /dev/null); its pid. Why not Popen: these processes are meant to outlive the call (and
    the ``lab up`` that made them), and a Popen object collected while its process runs
    warns; this process still reaps them when they exit before it (see :func:`wait_gone`)."""
    out = str(log) if log is not None else os.devnull
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    return os.posix_spawnp(argv[0], argv, dict(env), file_actions=actions, setsid=True)


def marker_entry(swarm_dir: Path) -> str:
    """The ``KEY=value`` environment entry of the processes started for ``swarm_dir``."""
    return f"{MARKER}={swarm_dir}"


def carries_marker(pid: int, swarm_dir: Path) -> bool:
    """True while ``pid`` is alive (not a zombie) and was started for ``swarm_dir``."""
    try:
        environ = (PROC / str(pid) / "environ").read_bytes()
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    if stat.rpartition(")")[2].split()[:1] == ["Z"]:
        return False
    return marker_entry(swarm_dir).encode() in environ.split(b"\0")


def marked_pids(swarm_dir: Path) -> list[int]:
    """Every live process started for ``swarm_dir`` (never this process)."""
    own = os.getpid()
    return [
        int(p.name)
        for p in PROC.iterdir()
        if p.name.isdigit() and int(p.name) != own and carries_marker(int(p.name), swarm_dir)
    ]


def command_line(pid: int) -> str:
    """``pid``'s command line, shortened, for messages."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:80]


def _alive(pid: int) -> bool:
    """True until ``pid`` has exited; reaps it when it is a child of this process."""
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _signal(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Poll until every pid has exited or ``timeout`` passed; the survivors."""
    left = list(pids)
    deadline = time.monotonic() + timeout
    while left:
        left = [p for p in left if _alive(p)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return left


def stop(pids: Iterable[int], swarm_dir: Path, grace: float) -> list[int]:
    """SIGTERM the pids that still carry the marker, SIGKILL after ``grace``; survivors."""
    ours = [p for p in pids if carries_marker(p, swarm_dir)]
    _signal(ours, signal.SIGTERM)
    left = wait_gone(ours, grace)
    _signal(left, signal.SIGKILL)
    return wait_gone(left, 5.0)


def cgroup_dirs(name: str) -> list[Path]:
    """Directories of cgroup ``name`` under every hierarchy (v1 controllers or v2), deepest
    first, so they can be removed in that order."""
    found: list[Path] = []
    tops = [CGROUP_ROOT / name, *(d / name for d in _hierarchies())]
    for top in tops:
        if top.is_dir():
            found += [Path(dirpath) for dirpath, _, _ in os.walk(top)]
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def _hierarchies() -> list[Path]:
    try:
        return [d for d in CGROUP_ROOT.iterdir() if d.is_dir() and not d.is_symlink()]
    except OSError:
        return []


def our_cgroups(swarm_dir: Path) -> list[str]:
    """Names of ``swarm_dir``'s swarm's cgroups present in any hierarchy."""
    prefix = cgroup_prefix(swarm_dir)
    names = {
        d.name
        for top in [CGROUP_ROOT, *_hierarchies()]
        if top.is_dir()
        for d in top.iterdir()
        if d.is_dir() and d.name.startswith(prefix)
    }
    return sorted(names)


def cgroup_pids(name: str) -> list[int]:
    """Processes in cgroup ``name`` or below it (the containers of one node)."""
    pids: set[int] = set()
    for d in cgroup_dirs(name):
        with contextlib.suppress(OSError):
            pids |= {int(x) for x in (d / "cgroup.procs").read_text().split()}
    return sorted(pids)


def kill_cgroup(swarm_dir: Path, name: str) -> list[int]:
    """SIGKILL every process in cgroup ``name`` and remove its directories; survivors.

    Only for a cgroup of ``swarm_dir``'s swarm: its processes are that swarm's containers."""
    if not name.startswith(cgroup_prefix(swarm_dir)):
        raise ValueError(f"not a local swarm cgroup: {name}")
    pids = cgroup_pids(name)
    _signal(pids, signal.SIGKILL)
    left = wait_gone(pids, 5.0)
    for d in cgroup_dirs(name):
        with contextlib.suppress(OSError):
            d.rmdir()
    return left
