"""What the swarm suite's tests share: the ``lab`` command on this checkout, and the
check that a local swarm can be built here.

The suite's one lab (tests/swarm/conftest.py): a local 3-node swarm with the stack on it,
built once.

Every marked test that needs the stack shares this session's lab (``lab up --engine swarm
--local-nodes 3`` on this checkout, as a user runs it), so the suite pays for one swarm
and one deploy; the last teardown is ``lab down``'s own, and the machine is checked to be
as it was (no engines, namespaces, links, mounts or data roots of ours). Skipped, saying
why, where a local swarm cannot be built: not root, no images, or a swarm already up
(one local swarm per machine: take ``flock /tmp/grenache-swarm.lock`` around the suite).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.errors import RuntimeUnavailable
from lab.scenario.runtime.swarm import SwarmRuntime
from lab.stack.engine import Paths
from lab.swarm import images, netns, state

ROOT = Path(__file__).resolve().parents[2]


def lab(*argv: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``lab ARGV`` on this checkout, as a user types it."""
    return subprocess.run(
        [sys.executable, "-m", "lab", *argv], cwd=ROOT, capture_output=True, text=True,
        timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


def checkout_for_swarm() -> Paths:
    """This checkout, when a local swarm can be built on it; else the test skips."""
    if os.geteuid() != 0:
        pytest.skip("a local swarm needs root")
    if Path(f"/sys/class/net/{netns.HOST_LINK}").exists():
        pytest.skip(f"{netns.HOST_LINK} exists: another local swarm is up on this machine")
    paths = Paths.find()
    if state.load(paths) is not None:
        pytest.skip(f"{state.state_file(paths)} exists: `lab down` the swarm first")
    try:
        images.lab_images(paths)
    except RuntimeUnavailable as exc:
        pytest.skip(str(exc))
    return paths


def placement(paths: Paths) -> dict[str, str]:
    """Each service's node."""
    rt = SwarmRuntime.connect(paths)
    try:
        return {name: rt.node_of(name).name for name in rt.targets()}
    finally:
        rt.close()
