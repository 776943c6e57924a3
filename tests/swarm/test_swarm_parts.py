"""The pure parts of the local swarm: addresses, the engine script, mount lookup, the
NXDOMAIN responder's packets, node states, and the refusals that name their fix."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from lab.errors import RuntimeUnavailable
from lab.stack.engine import Paths
from lab.swarm import cluster, engines, images, local, netns, nxdns, pids
from lab.swarm.state import SwarmNode, SwarmState


def test_addresses_and_names() -> None:
    assert netns.node_address(1) == "192.168.231.11"
    assert netns.node_address(9) == "192.168.231.19"
    assert netns.node_link(3) == "glab-vn3"
    with pytest.raises(ValueError):
        netns.node_address(10)
    assert pids.cgroup_prefix(Path("/a/.cache/swarm")).startswith("glab-")
    assert pids.tag(Path("/a")) != pids.tag(Path("/b"))


def test_engine_script_keeps_off_the_host_engine(tmp_path: Path) -> None:
    files = engines.engine_files(tmp_path / "swarm", tmp_path / "swarm", 2)
    script = engines.engine_script(files)
    assert "hostname lab-n2" in script
    assert f"--pidfile {files.pidfile}" in script
    assert "/var/run/docker.pid" not in script
    assert f"-H unix://{files.socket}" in script
    assert f"--dns {netns.HUB_ADDRESS}" in script
    assert f"--cgroup-parent /{files.cgroup}" in script
    assert script.index("mount -t sysfs") < script.index("mount --move")
    assert script.splitlines()[-1].startswith("exec dockerd ")
    assert "glab-data" not in script
    in_memory = engines.engine_files(tmp_path / "swarm", tmp_path / "swarm", 2, data_tmpfs=True)
    assert f"glab-data {in_memory.data_root}" in engines.engine_script(in_memory)


def test_engine_env_marks_and_drops_client_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://elsewhere:2375")
    env = engines.engine_env(Path("/x/swarm"))
    assert "DOCKER_HOST" not in env
    assert env[pids.MARKER] == "/x/swarm"
    assert env["DOCKER_SERVICE_PREFER_OFFLINE_IMAGE"] == "1"


def test_socket_path_too_long(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    with pytest.raises(RuntimeUnavailable, match="shorter path"):
        engines.engine_files(deep, deep, 1)


MOUNTINFO = """\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:25 / /work rw,relatime - overlay overlay rw,lowerdir=/l
31 30 0:26 / /work/data rw,relatime - ext4 /dev/vdb rw
32 22 0:27 / /my\\040dir rw - tmpfs tmpfs rw
"""


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/var/lib/x", "ext4"),
        ("/work/repo/.cache", "overlay"),
        ("/work/data/x", "ext4"),
        ("/workspace", "ext4"),
        ("/my dir/a", "tmpfs"),
    ],
)
def test_fs_type(path: str, kind: str) -> None:
    assert engines.fs_type(MOUNTINFO, Path(path)) == kind


def _query(name: bytes, ident: int = 0x4242, flags: int = 0x0100) -> bytes:
    labels = b"".join(bytes([len(p)]) + p for p in name.split(b"."))
    return struct.pack(">HHHHHH", ident, flags, 1, 0, 0, 0) + labels + b"\0" + b"\0\1\0\1"


def test_nxdomain_reply() -> None:
    query = _query(b"nosuch.example.com")
    reply = nxdns.nxdomain_reply(query)
    assert reply is not None
    ident, flags, qd, an, ns, ar = struct.unpack(">HHHHHH", reply[:12])
    assert (ident, qd, an, ns, ar) == (0x4242, 1, 0, 0, 0)
    assert flags & 0x8000 and flags & 0x0100 and flags & 0xF == 3
    assert reply[12:] == query[12:]


@pytest.mark.parametrize(
    "packet",
    [
        b"",
        b"\0" * 11,
        _query(b"x", flags=0x8100),  # a reply, not a query
        _query(b"x", flags=0x2900),  # opcode UPDATE
        _query(b"x")[:-2],  # truncated question
        struct.pack(">HHHHHH", 1, 0x100, 1, 0, 0, 0) + b"\xc0\x0c\0\1\0\1",  # pointer
    ],
)
def test_nxdomain_ignores_what_is_not_a_query(packet: bytes) -> None:
    assert nxdns.nxdomain_reply(packet) is None


def test_parse_node_states() -> None:
    text = "lab-n1 Ready\nlab-n2 Down\n\nlab-n3 Unknown\n"
    assert cluster.parse_node_states(text) == {
        "lab-n1": "Ready",
        "lab-n2": "Down",
        "lab-n3": "Unknown",
    }


def test_images_come_from_stack_env(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    with pytest.raises(RuntimeUnavailable, match="lab up --images-only"):
        images.lab_images(paths)
    paths.state_env.parent.mkdir(parents=True)
    paths.state_env.write_text("".join(f"{k}=img/{k.lower()}:1\n" for k in images.IMAGE_KEYS))
    assert images.lab_images(paths)[0] == "img/lab_services_image:1"


def test_preflight_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = Paths(tmp_path)
    with pytest.raises(RuntimeUnavailable, match=r"1\.\.9"):
        local.preflight(paths, 10)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(RuntimeUnavailable, match="needs root"):
        local.preflight(paths, 3)


def test_require_running_points_at_lab_down(tmp_path: Path) -> None:
    dead = 2**22 + 1  # above the default pid_max: never a live process
    swarm = SwarmState(
        nodes=(SwarmNode("lab-n1", "unix:///x", "192.168.231.11", True),),
        local=True,
        local_info={
            "swarm_dir": str(tmp_path),
            "nodes": [{"name": "lab-n1", "dockerd_pid": dead, "holder_pid": dead}],
        },
    )
    with pytest.raises(RuntimeUnavailable, match="run `lab down`"):
        local.require_running(swarm)
    local.require_running(SwarmState(nodes=swarm.nodes, local=False))


def test_no_leftovers_for_a_fresh_checkout(tmp_path: Path) -> None:
    assert local.leftovers(Paths(tmp_path)) == []


def test_marker_only_matches_its_own_directory(tmp_path: Path) -> None:
    assert not pids.carries_marker(os.getpid(), tmp_path)
    assert pids.marked_pids(tmp_path) == []
    with pytest.raises(ValueError):
        pids.kill_cgroup(tmp_path, "docker")
