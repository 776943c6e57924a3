"""The lab's stack on a real local 3-node swarm: up with a fourth worker, every client
sees all four across nodes, the Swarm runtime's kill/start, pause and grape partition,
then ``lab down``'s swarm half leaves nothing. Needs what tests/swarm/test_local_swarm.py
needs (root, dockerd, the lab's images). ``make test-swarm`` runs it; take
``flock /tmp/grenache-swarm.lock`` around it (one local swarm per machine)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lab.errors import RuntimeUnavailable
from lab.scenario.runtime.swarm import SwarmRuntime
from lab.stack.engine import Paths
from lab.swarm import command, images, local, netns
from lab.swarm.stack import Counts

pytestmark = [pytest.mark.swarm, pytest.mark.docker, pytest.mark.timeout(420)]


@pytest.fixture
def lab_paths(tmp_path: Path) -> Paths:
    """A checkout of its own: compose.yaml and what it mounts linked, the images named."""
    if os.geteuid() != 0:
        pytest.skip("a local swarm needs root")
    if Path(f"/sys/class/net/{netns.HOST_LINK}").exists():
        pytest.skip(f"{netns.HOST_LINK} exists: another local swarm is up on this machine")
    repo = Paths.find()
    try:
        images.lab_images(repo)
    except RuntimeUnavailable as exc:
        pytest.skip(str(exc))
    for name in ("compose.yaml", "images", "policies"):
        (tmp_path / name).symlink_to(repo.root / name)
    paths = Paths(tmp_path)
    paths.cache.mkdir()
    shutil.copy(repo.state_env, paths.state_env)
    return paths


def test_stack_runtime_and_down_on_a_local_swarm(lab_paths: Paths) -> None:
    try:
        report = command.up(
            lab_paths, local_nodes=3, counts=Counts(workers=4), timeout=180, log=print
        )
        print(
            f"swarm {report.swarm_s:.1f}s deploy {report.deploy_s:.1f}s ready {report.ready_s:.1f}s"
        )
        rt = SwarmRuntime.connect(lab_paths)
        try:
            workers = {n: t for n, t in rt.targets().items() if t.kind == "worker"}
            assert sorted(workers) == [f"worker-{i}" for i in range(1, 5)]
            assert len({rt.node_of(n).name for n in workers}) == 3  # spread over the nodes
            rt.kill("worker-4")
            assert rt.state("worker-4") == "stopped"
            rt.start("worker-4")
            assert rt.state("worker-4") == "running"
            rt.pause("worker-1")
            assert rt.state("worker-1") == "paused"
            rt.unpause("worker-1")
            rt.disconnect("grape-1")
            assert rt.state("grape-1") == "disconnected"
            rt.reconnect("grape-1")
            assert rt.state("grape-1") == "running"
            rt.check_health(60)  # every client sees all four workers again
        finally:
            rt.close()
    finally:
        left = command.down(lab_paths, print)
        assert left == []
        assert local.leftovers(lab_paths) == []
