"""A real 3-node Docker Swarm on this machine: built, exercised over its overlay, torn down
with nothing left. Needs root, util-linux, iproute2, dockerd and the lab's images
(``lab up --images-only``). Run with ``make test-swarm``; plain ``pytest`` deselects it."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.errors import RuntimeUnavailable
from lab.stack.engine import Paths
from lab.swarm import cluster, images, local, netns
from lab.swarm.state import SwarmState

pytestmark = [pytest.mark.swarm, pytest.mark.docker, pytest.mark.timeout(300)]

PROBE = r"""
import socket, subprocess, time, urllib.request
ips = sorted({a[4][0] for a in socket.getaddrinfo("tasks.probe", 8000, socket.AF_INET)})
for ip in ips:
    assert urllib.request.urlopen(f"http://{ip}:8000/", timeout=5).status == 200, ip
t = time.monotonic()
rc = subprocess.run(["getent", "hosts", "nosuchname"], capture_output=True).returncode
print(len(ips), rc, round(time.monotonic() - t, 3))
"""


@pytest.fixture
def lab_paths(tmp_path: Path) -> Paths:
    """A checkout of its own under tmp_path, naming the images the lab last built."""
    if os.geteuid() != 0:
        pytest.skip("a local swarm needs root")
    missing = [t for t in local.TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"missing {missing}")
    if Path(f"/sys/class/net/{netns.HOST_LINK}").exists():
        pytest.skip(f"{netns.HOST_LINK} exists: another local swarm is up on this machine")
    built = Paths.find().state_env
    try:
        images.lab_images(Paths.find())
    except RuntimeUnavailable as exc:
        pytest.skip(str(exc))
    paths = Paths(tmp_path)
    paths.cache.mkdir()
    shutil.copy(built, paths.state_env)
    return paths


@pytest.fixture
def swarm(lab_paths: Paths) -> Iterator[tuple[Paths, SwarmState]]:
    t0 = time.monotonic()
    built = local.create(lab_paths, 3, print)
    print(f"create: {time.monotonic() - t0:.1f}s")
    try:
        yield lab_paths, built
    finally:
        t1 = time.monotonic()
        left = local.destroy(lab_paths, built, print)
        print(f"destroy: {time.monotonic() - t1:.1f}s")
        assert left == []
        assert local.leftovers(lab_paths) == []


def _running_nodes(manager: str) -> list[str]:
    out = cluster.docker(
        manager, "service", "ps", "probe", "--filter", "desired-state=running",
        "--format", "{{.Node}} {{.CurrentState}}",
    )  # fmt: skip
    return [line.split()[0] for line in out.splitlines() if " Running " in f" {line} "]


def test_three_nodes_run_a_service_over_the_overlay(swarm: tuple[Paths, SwarmState]) -> None:
    paths, built = swarm
    manager = built.manager().docker_host
    assert [n.name for n in built.nodes] == ["lab-n1", "lab-n2", "lab-n3"]
    assert cluster.node_states(manager) == dict.fromkeys(["lab-n1", "lab-n2", "lab-n3"], "Ready")
    services = images.lab_images(paths)[0]
    for node in built.nodes:
        assert images.missing_on(node.docker_host, [services]) == [], node.name
    cluster.docker(manager, "network", "create", "-d", "overlay", "--attachable", "glab-probe")
    cluster.docker(
        manager, "service", "create", "-d", "--name", "probe", "--replicas", "3",
        "--endpoint-mode", "dnsrr", "--restart-condition", "none", "--network", "glab-probe",
        "--entrypoint", "python3", services, "-m", "http.server", "8000",
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while len(nodes := _running_nodes(manager)) < 3 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert len(nodes) == 3, nodes
    assert len(set(nodes)) >= 2, nodes
    node = built.node(nodes[0])
    task = cluster.docker(
        node.docker_host, "ps", "-q", "--filter", "label=com.docker.swarm.service.name=probe"
    ).split()[0]
    deadline = time.monotonic() + 20
    while True:  # the tasks' listeners and DNS entries settle a moment after Running
        try:
            out = cluster.docker(node.docker_host, "exec", task, "python3", "-c", PROBE)
            break
        except RuntimeUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    count, rc, seconds = out.split()
    assert (count, rc) == ("3", "2"), out
    assert float(seconds) < 0.5, f"an unknown name took {seconds}s to fail"


def test_a_failed_create_leaves_nothing(lab_paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(host: str, address: str) -> str:
        raise RuntimeUnavailable("swarm init refused (test)")

    monkeypatch.setattr(cluster, "init", refuse)
    with pytest.raises(RuntimeUnavailable, match="refused"):
        local.create(lab_paths, 2, print)
    assert local.leftovers(lab_paths) == []
    assert not Path(f"/sys/class/net/{netns.HOST_LINK}").exists()
