"""The janitor only dispatches: each family's hook undoes its own faults of a dead run.

The marker below is written out literally as the code before the hooks wrote it (the
undo knowledge then sat in the janitor, keyed by strings), so a marker a killed run of
an older checkout left behind is still cleaned by this one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_support import echo_server
from worker_control import served_control

from lab.fake_lab_client import FakeLabClient
from lab.procs import free_port
from lab.scenario.faults.janitor import cleanup_leftovers
from lab.scenario.faults.marker import MARKER
from lab.toxiproxy_adapter import ToxiproxyAdapter
from lab.worker.control import WorkerState

HOST = "127.0.0.1"


def test_a_kind_this_version_does_not_know_is_named_and_the_marker_goes(tmp_path: Path) -> None:
    marker = {"run_id": "r", "pid": 0, "faults": [{"id": "f9", "kind": "meteor", "target": "x"}]}
    (tmp_path / MARKER).write_text(json.dumps(marker))
    report = cleanup_leftovers(tmp_path, lab=FakeLabClient())
    assert report.actions == ["left fault f9: no undo known for its kind 'meteor'"]
    assert not report.errors and not (tmp_path / MARKER).exists()


@pytest.fixture
def proxies(toxi: ToxiproxyAdapter) -> Iterator[None]:
    with echo_server() as upstream:
        for name in ("worker-1", "worker-2"):
            toxi.create_proxy(name, f"{HOST}:{free_port()}", upstream)
        try:
            yield
        finally:
            for name in ("worker-1", "worker-2"):
                toxi.delete_proxy(name)


@pytest.fixture
async def control() -> AsyncIterator[tuple[str, WorkerState]]:
    """worker-1's real control app on a free port."""
    async with served_control("worker-1") as served:
        yield served


def _old_marker(api: str, control_url: str) -> dict[str, Any]:
    """Every key as the janitor of before the hooks read it, for each family it knew."""
    return {
        "run_id": "20261201-old",
        "toxiproxy_api": api,
        "clients": [
            {"name": "client-oracle", "control_url": "http://oracle:1", "policy": "oracle"},
        ],
        "pid": 0,
        "written_wall": 1764590000.0,
        "faults": [
            {"id": "f1", "kind": "latency", "target": "worker-1", "proxy": "worker-1",
             "toxics": ["lab-f1-downstream"]},
            {"id": "f2", "kind": "down", "target": "worker-1", "proxy": "worker-1",
             "disabled": True},
            {"id": "f3", "kind": "kill", "target": "worker-2", "undo": "start",
             "proxy": "worker-2", "disabled": True},
            {"id": "f4", "kind": "slow", "target": "worker-1",
             "behaviour_url": f"{control_url}/behaviour", "restore": {"error_rate": 0.0}},
            {"id": "f5", "kind": "antagonist", "target": "worker-1",
             "antagonist_url": f"{control_url}/antagonist"},
            {"id": "f6", "kind": "ghost", "target": "grape-1"},
        ],
    }  # fmt: skip


@pytest.mark.toxiproxy
async def test_a_marker_written_before_the_hooks_is_still_cleaned(
    tmp_path: Path, toxi: ToxiproxyAdapter, proxies: None, control: tuple[str, WorkerState]
) -> None:
    url, state = control
    toxi.add_toxic("worker-1", "lab-f1-downstream", "latency", {"latency": 100})
    toxi.add_toxic("worker-2", "someone-elses", "latency", {"latency": 1})
    toxi.set_enabled("worker-1", False)
    toxi.set_enabled("worker-2", False)
    state.set_behaviour(state.behaviour.updated({"error_rate": 0.5}))
    state.antagonist.start(0.2, None)
    lab = FakeLabClient()
    oracle = lab.add("http://oracle:1", load={"rate": 10}, oracle=["10.0.0.1:1"])
    (tmp_path / MARKER).write_text(json.dumps(_old_marker(toxi.api, url)))

    report = await asyncio.to_thread(cleanup_leftovers, tmp_path, lab=lab)

    assert report.found and report.run_id == "20261201-old" and not report.errors
    # the order of before: the network paths, then the services' state, then the clients
    assert report.actions == [
        "removed toxic lab-f1-downstream from proxy worker-1",
        "re-enabled proxy worker-1",
        "re-enabled proxy worker-2",
        "restored behaviour of worker-1",
        "stopped the antagonist on worker-1",
        "stopped the load of client-oracle",
    ]
    assert toxi.proxy("worker-1").toxics == () and toxi.proxy("worker-1").enabled
    assert [t.name for t in toxi.toxics("worker-2")] == ["someone-elses"]
    assert toxi.proxy("worker-2").enabled
    assert state.behaviour.error_rate == 0.0 and not state.antagonist.running
    assert oracle.load is None and oracle.oracle == []
    assert not (tmp_path / MARKER).exists()
    toxi.remove_all_toxics("worker-2")
