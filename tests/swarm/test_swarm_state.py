"""lab.swarm.state: the file round-trips, is written atomically, refuses foreign files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.errors import RuntimeUnavailable
from lab.stack.engine import Paths
from lab.swarm import state
from lab.swarm.state import SwarmNode, SwarmState


def _state() -> SwarmState:
    nodes = tuple(
        SwarmNode(f"lab-n{i}", f"unix:///x/n{i}/docker.sock", f"192.168.231.1{i}", i == 1)
        for i in (1, 2, 3)
    )
    return SwarmState(nodes=nodes, local=True, stack="lab", local_info={"holders": [1, 2]})


def test_round_trip(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    assert state.load(paths) is None
    state.save(paths, _state())
    assert state.load(paths) == _state()
    assert state.state_file(paths) == tmp_path / ".cache" / "swarm" / "state.json"
    assert [p.name for p in state.state_file(paths).parent.iterdir()] == ["state.json"]
    state.remove(paths)
    state.remove(paths)
    assert state.load(paths) is None


def test_manager_and_node() -> None:
    s = _state()
    assert s.manager().name == "lab-n1"
    assert s.node("lab-n3").address == "192.168.231.13"
    with pytest.raises(KeyError, match="lab-n1, lab-n2, lab-n3"):
        s.node("lab-n9")
    with pytest.raises(RuntimeUnavailable, match="no manager"):
        SwarmState(nodes=(), local=False).manager()


@pytest.mark.parametrize(
    "text",
    ["not json", "[]", json.dumps({"version": 99}), json.dumps({"version": 1, "nodes": [{}]})],
)
def test_refuses_foreign_files(tmp_path: Path, text: str) -> None:
    paths = Paths(tmp_path)
    state.state_file(paths).parent.mkdir(parents=True)
    state.state_file(paths).write_text(text)
    with pytest.raises(RuntimeUnavailable, match="lab down"):
        state.load(paths)
