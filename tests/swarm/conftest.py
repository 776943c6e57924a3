"""The swarm suite's session lab (see swarm_support.py for why one lab for the suite)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from swarm_support import checkout_for_swarm, lab

from lab.stack.engine import Paths
from lab.swarm import local, netns, state


@pytest.fixture(scope="session")
def swarm_lab() -> Iterator[Paths]:
    """The stack up on a local 3-node swarm for the session; down, and nothing left, after."""
    paths = checkout_for_swarm()
    up = lab("up", "--engine", "swarm", "--local-nodes", "3", timeout=400)
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        print(up.stderr[-600:])
        yield paths
    finally:
        down = lab("down", timeout=180)
        assert down.returncode == 0, down.stdout[-2000:] + down.stderr[-2000:]
        assert state.load(paths) is None
        assert local.leftovers(paths) == []
        assert netns.our_links() == []
