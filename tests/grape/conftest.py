"""Fixtures of the grape tests: in-process DHT nodes on distinct loopback addresses."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from lab.grape.node import GrapeNode
from lab.grape.settings import GrapeSettings
from lab.procs import free_port

# A range of its own, so in-process nodes never meet the processes other tests start.
_hosts = itertools.cycle([f"127.0.1.{i}" for i in range(2, 250)])

NodeFactory = Callable[..., Awaitable[GrapeNode]]


@pytest.fixture
async def make_node() -> AsyncIterator[NodeFactory]:
    """Start GrapeNodes (real UDP sockets); all are stopped after the test."""
    started: list[GrapeNode] = []

    async def make(bootstrap: tuple[GrapeNode, ...] = (), **kw: Any) -> GrapeNode:
        host = next(_hosts)
        settings = GrapeSettings(
            bind=host,
            dht_port=free_port(host),
            api_port=free_port(host),
            bootstrap=tuple((n.settings.bind, n.settings.dht_port) for n in bootstrap),
            **{"cluster_id": "test", "rpc_timeout": 0.1, "peer_max_age": 30.0, **kw},
        )
        node = GrapeNode(settings)
        await node.start()
        started.append(node)
        return node

    yield make
    for node in started:
        await node.stop()
