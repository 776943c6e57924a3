"""A multi-node Docker Swarm on this one machine: build it, tear it down, find its remains.

``create`` makes a hub namespace, one namespace and one dockerd per node
(:mod:`lab.swarm.netns`, :mod:`lab.swarm.engines`), a swarm with ``lab-n1`` as manager and
the others as workers (:mod:`lab.swarm.cluster`), and copies the lab's images into every
node (:mod:`lab.swarm.images`). Every step pushes its undo on a stack first, so a failure
halfway removes whatever was made before the error propagates. ``destroy`` tears down from
the state ``create`` returned and from what :mod:`lab.swarm.pids` still finds carrying this
checkout's marker, so it also cleans up after a ``lab up`` that was killed before it saved
the state. Only processes started for this checkout's swarm are ever signalled; the host's
own dockerd never carries the marker.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lab.errors import RuntimeUnavailable
from lab.stack.engine import Paths
from lab.swarm import cluster, engines, images, netns, nxdns, pids, state
from lab.swarm.state import SwarmNode, SwarmState

Log = Callable[[str], None]
TOOLS = {
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "ip": "iproute2",
    "dockerd": "docker.io",
    "containerd": "containerd",
    "docker": "the docker CLI",
}
ENGINE_GRACE = 3.0
"""How long a node's dockerd gets to shut down after SIGTERM before SIGKILL. Its containers
are gone by then and its data root is deleted next, so a clean shutdown saves nothing."""


def swarm_dir(paths: Paths) -> Path:
    """``.cache/swarm``: state, sockets, logs; data roots too unless on overlayfs."""
    return (paths.cache / "swarm").resolve()


def preflight(paths: Paths, n: int) -> None:
    """Refuse early, saying how to fix it, what would fail halfway."""
    if not 1 <= n <= netns.MAX_NODES:
        raise RuntimeUnavailable(f"--local-nodes {n}: a local swarm has 1..{netns.MAX_NODES}")
    if os.geteuid() != 0:
        raise RuntimeUnavailable(
            "a local swarm needs root (network namespaces, mounts, one dockerd per node): "
            "run as root"
        )
    absent = [f"`{t}` ({pkg})" for t, pkg in TOOLS.items() if shutil.which(t) is None]
    if absent:
        raise RuntimeUnavailable(f"a local swarm needs {', '.join(absent)}: install them")
    if state.state_file(paths).exists():
        raise RuntimeUnavailable(
            f"{state.state_file(paths)} exists (a swarm is up, or a stale one is recorded): "
            "run `lab down` first"
        )
    left = leftovers(paths)
    if left:
        raise RuntimeUnavailable(
            f"an earlier local swarm left {'; '.join(left)}: run `lab down` first"
        )
    netns.check_host_link_free()


def create(paths: Paths, n: int, log: Log, data_tmpfs: bool = False) -> SwarmState:
    """Build an ``n``-node local swarm and return its state (the caller saves it).

    ``data_tmpfs``: keep each engine's image store in memory (see EngineFiles)."""
    preflight(paths, n)
    image_names = images.lab_images(paths)
    home = swarm_dir(paths)
    base = engines.data_base(home)
    files = [engines.engine_files(home, base, i, data_tmpfs) for i in range(1, n + 1)]
    env = engines.engine_env(home)
    tar = home / "images.tar"
    holders: list[int] = []
    dockerds: list[int] = []
    t0 = time.monotonic()
    try:
        with contextlib.ExitStack() as undo:
            undo.callback(tar.unlink, missing_ok=True)
            undo.callback((home / "nxdns.log").unlink, missing_ok=True)
            undo.callback(_remove_dirs, files)
            undo.callback(_stop_namespaces, home, holders)
            undo.callback(_stop_engines, home, dockerds, files)
            save = images.start_save(image_names, tar)
            undo.callback(_end, save)
            hub = netns.spawn_holder(env)
            holders.append(hub)
            netns.setup_hub(hub)
            netns.attach_host(hub)
            undo.callback(netns.detach_host)  # only once it is ours: another swarm's stays
            home.mkdir(parents=True, exist_ok=True)
            dns = nxdns.start(hub, env, home / "nxdns.log")
            nxdns.wait_ready(dns)
            for f in files:
                holders.append(netns.spawn_holder(env))
                netns.attach_node(hub, holders[-1], f.index)
            for f, holder in zip(files, holders[1:], strict=True):
                dockerds.append(engines.start(f, holder, env))
            for f, pid in zip(files, dockerds, strict=True):
                engines.wait_ready(f, pid)
            t_engines = time.monotonic()
            log(f"swarm: {n} namespaces and engines up in {t_engines - t0:.1f}s")
            images.finish(save, f"docker save {' '.join(image_names)}")
            log(f"swarm: images saved from the host engine ({time.monotonic() - t0:.1f}s in)")
            loads = [images.start_load(f.docker_host, tar) for f in files]
            for p in loads:
                undo.callback(_end, p)
            token = cluster.init(files[0].docker_host, netns.node_address(1))
            for f in files[1:]:
                cluster.join(f.docker_host, netns.node_address(f.index), token,
                             netns.node_address(1))  # fmt: skip
            for f, p in zip(files, loads, strict=True):
                images.finish(p, f"docker load into {f.name}")
                missing = images.missing_on(f.docker_host, image_names)
                if missing:
                    raise RuntimeUnavailable(f"{f.name} lacks {missing} after docker load")
            log(f"swarm: images copied in {time.monotonic() - t_engines:.1f}s")
            cluster.wait_ready(files[0].docker_host, [f.name for f in files])
            built = SwarmState(
                nodes=tuple(
                    SwarmNode(f.name, f.docker_host, netns.node_address(f.index), f.index == 1)
                    for f in files
                ),
                local=True,
                local_info=_info(home, holders, dockerds, files, dns),
            )
            tar.unlink(missing_ok=True)
            undo.pop_all()
    except BaseException:
        left = leftovers(paths)
        if left:
            log(f"swarm: after a failed create, still present: {'; '.join(left)}")
        raise
    log(f"swarm: {n} nodes Ready in {time.monotonic() - t0:.1f}s")
    return built


def _info(home: Path, holders: list[int], dockerds: list[int], files: list[engines.EngineFiles],
          dns: int) -> dict[str, Any]:  # fmt: skip
    """What teardown and status need, as JSON data for :class:`SwarmState`."""
    return {
        "swarm_dir": str(home),
        "hub_pid": holders[0],
        "dns_pid": dns,
        "host_link": netns.HOST_LINK,
        "host_address": netns.HOST_ADDRESS,
        "bridge": netns.BRIDGE,
        "nodes": [
            {
                "name": f.name,
                "holder_pid": holder,
                "dockerd_pid": pid,
                "containerd_pid": engines.containerd_pid(pid),
                "home": str(f.home),
                "data_root": str(f.data_root),
                "cgroup": f.cgroup,
                "veth": netns.node_link(f.index),
            }
            for f, holder, pid in zip(files, holders[1:], dockerds, strict=True)
        ],
    }


def _end(proc: subprocess.Popen[bytes]) -> None:
    """Kill a helper (docker save/load) this process started, if still running."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


def _stop_engines(home: Path, dockerds: Sequence[int], files: Sequence[engines.EngineFiles]
                  ) -> list[str]:  # fmt: skip
    """Containers first (SIGKILL by cgroup: nothing in them needs a clean stop), then the
    engines (SIGTERM, then SIGKILL after a grace), then whatever else of ours remains
    (containerd, shims). Returns what survived."""
    left: list[str] = []
    names = {f.cgroup for f in files} | set(pids.our_cgroups(home))
    for name in sorted(names):
        left += [f"container pid {p} (cgroup {name})" for p in pids.kill_cgroup(home, name)]
    left += [f"dockerd pid {p}" for p in pids.stop(dockerds, home, ENGINE_GRACE)]
    holders = set(_holder_pids(home))
    rest = [p for p in pids.marked_pids(home) if p not in holders]
    left += [f"pid {p} ({pids.command_line(p)})" for p in pids.stop(rest, home, 3.0)]
    for name in sorted(names):  # containers a dying engine started late
        pids.kill_cgroup(home, name)
    return left


def _holder_pids(home: Path) -> list[int]:
    return [p for p in pids.marked_pids(home) if pids.command_line(p).startswith("sleep")]


def _stop_namespaces(home: Path, holders: Sequence[int]) -> list[str]:
    """Stop the namespace holders (recorded and found); their veths go with them."""
    found = sorted(set(holders) | set(_holder_pids(home)))
    left = [f"namespace holder pid {p}" for p in pids.stop(found, home, 2.0)]
    deadline = time.monotonic() + 3.0
    while netns.HOST_LINK in netns.our_links() and time.monotonic() < deadline and not left:
        time.sleep(0.05)
    return left


def _remove_dirs(files: Sequence[engines.EngineFiles]) -> list[str]:
    left: list[str] = []
    for f in files:
        for d in (f.data_root.parent, f.home):
            shutil.rmtree(d, ignore_errors=True)
            if d.exists():
                left.append(f"directory {d}")
    return left


def destroy(paths: Paths, swarm: SwarmState | None, log: Log) -> list[str]:
    """Tear down the local swarm of this checkout; what is left (empty: all gone).

    Works from ``swarm`` (as :func:`create` returned it) and from what is still found, so
    ``swarm`` may be None after a crash. Leaves the state file to the caller (``lab down``
    removes it when this returns an empty list)."""
    home = swarm_dir(paths)
    t0 = time.monotonic()
    info = swarm.local_info if swarm is not None and swarm.local else {}
    recorded = info.get("nodes", [])
    dockerds = [int(n["dockerd_pid"]) for n in recorded]
    dockerds += [p for p in pids.marked_pids(home) if pids.command_line(p).startswith("dockerd")]
    base = engines.data_base(home)
    found = sorted(d.name for d in home.glob("n[0-9]*") if d.is_dir())
    indices = sorted({int(name[1:]) for name in found} | set(range(1, len(recorded) + 1)))
    files = [engines.EngineFiles(i, home / f"n{i}", base / f"n{i}" / "data") for i in indices]
    problems = _stop_engines(home, sorted(set(dockerds)), files)
    holders = [int(n["holder_pid"]) for n in recorded]
    if "hub_pid" in info:
        holders.append(int(info["hub_pid"]))
    problems += _stop_namespaces(home, holders)
    _unmount_ours(home, base)
    problems += _remove_dirs(files)
    for name in ("images.tar", "nxdns.log"):
        (home / name).unlink(missing_ok=True)
    if problems:
        log(f"swarm: teardown could not remove {'; '.join(problems)}")
    left = leftovers(paths)
    log(f"swarm: torn down in {time.monotonic() - t0:.1f}s" + (f"; left: {left}" if left else ""))
    return left


def _unmount_ours(*dirs: Path) -> None:
    """Lazily unmount anything mounted under our directories in this mount namespace (the
    engines mount in their own, so this is only for a script that died halfway)."""
    for point in reversed(_our_mounts(*dirs)):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _our_mounts(*dirs: Path) -> list[str]:
    prefixes = [str(d).rstrip("/") + "/" for d in dirs]
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        point = fields[4].replace("\\040", " ") if len(fields) > 4 else ""
        if any(point.startswith(p) or point + "/" == p for p in prefixes):
            points.append(point)
    return points


def leftovers(paths: Paths) -> list[str]:
    """What of this checkout's local swarm is still present: processes (holders, engines,
    containerd, shims), containers' cgroups, the host veth while one of ours holds the hub,
    mounts and node directories. Empty when there is nothing to tear down."""
    home = swarm_dir(paths)
    out = [f"pid {p} ({pids.command_line(p)})" for p in sorted(pids.marked_pids(home))]
    for name in pids.our_cgroups(home):
        out.append(f"cgroup {name} ({len(pids.cgroup_pids(name))} processes)")
    if out and netns.HOST_LINK in netns.our_links():
        out.append(f"link {netns.HOST_LINK}")
    bases = {home, engines.FALLBACK_DATA_BASE / pids.tag(home)}
    out += [f"mount {m}" for m in _our_mounts(*bases)]
    for b in sorted(bases):
        out += [f"directory {d}" for d in sorted(b.glob("n[0-9]*")) if d.is_dir()]
    return out


def require_running(swarm: SwarmState) -> None:
    """RuntimeUnavailable telling the user to run `lab down` when a recorded local swarm's
    engines or namespaces are gone (a reboot, a kill)."""
    if not swarm.local:
        return
    home = Path(swarm.local_info.get("swarm_dir", ""))
    dead = [
        n["name"]
        for n in swarm.local_info.get("nodes", [])
        if not (pids.carries_marker(int(n["dockerd_pid"]), home)
                and pids.carries_marker(int(n["holder_pid"]), home))
    ]  # fmt: skip
    if dead or not swarm.local_info.get("nodes"):
        raise RuntimeUnavailable(
            f"the local swarm recorded in {home / 'state.json'} is gone "
            f"(not running: {', '.join(dead) or 'every node'}; a reboot or a kill?): "
            "run `lab down`, then `lab up --engine swarm --local-nodes N` again"
        )
