"""Fixtures for the interop tests: Node grapes and servers beside our own services.

Every test here talks to the real Node.js Grenache from npm (``tests/interop/node``,
pinned). Without node or its ``node_modules`` every test is skipped with the reason
(``-ra`` prints it), never silently passed. Processes are stopped at teardown whatever
happened; logs stay in the test's tmp directory for a failure's post-mortem.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from interop_support import NodeServerFactory, our_grapes
from node_harness import (
    NodeGrape,
    NodeServer,
    missing_reason,
    start_node_grapes,
    start_node_server,
    stop_all,
)

from lab.loadgen.local_cluster import LocalCluster
from lab.procs import ServiceProcess

_MISSING = missing_reason()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.interop)
            if _MISSING is not None:
                item.add_marker(pytest.mark.skip(reason=f"interop: {_MISSING}"))


@pytest.fixture(scope="module")
def module_logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("interop-logs")


@pytest.fixture(scope="module")
def node_pair(module_logdir: Path) -> Iterator[list[NodeGrape]]:
    """Two Node grapes (peer max age 120 s) shared by a module's tests."""
    grapes = start_node_grapes(2, module_logdir)
    yield grapes
    stop_all(g.process for g in grapes)


@pytest.fixture(scope="module")
def our_pair(module_logdir: Path) -> Iterator[LocalCluster]:
    """Two of our grapes (peer max age 120 s) shared by a module's tests."""
    cluster = our_grapes(module_logdir, 2)
    yield cluster
    cluster.stop()


@pytest.fixture
def node_servers(logdir: Path) -> Iterator[NodeServerFactory]:
    """Start Node PeerRPCServers: ``factory(grape_url, service, mode="echo")``."""
    started: list[ServiceProcess] = []

    def start(grape: str, service: str, mode: str = "echo") -> NodeServer:
        server = start_node_server(grape, service, logdir, mode=mode)
        started.append(server.process)
        return server

    yield start
    stop_all(started)
