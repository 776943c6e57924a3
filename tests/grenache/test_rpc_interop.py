"""Our Link, client and RPC server against the real Node.js Grenache (pinned npm packages).

Cases 1, 3 and 5 of the shared compatibility list from the RPC side: our Link through a
Node grape pair; Node PeerRPCClient -> our server (echo, compress, error, null); our
client -> Node PeerRPCServer (echo, compress, error, null, ``map`` over 3 servers).
The Node side comes from ``tests/interop/node_harness.py`` (one way to drive npm).
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "interop"))
from node_harness import (
    NodeGrape,
    missing_reason,
    node_client_args,
    run_node_async,
    start_node_grapes,
    start_node_server,
    stop_all,
)

from lab.errors import RpcReplyError
from lab.grenache.client import PeerRpcClient
from lab.grenache.link import Link
from lab.grenache.server import RpcServer
from lab.grenache.transport import HttpTransport
from lab.grenache.wire import Request
from lab.procs import ServiceProcess

_MISSING = missing_reason()
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(_MISSING is not None, reason=f"interop: {_MISSING}"),
]


@pytest.fixture(scope="module")
def node_grapes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[NodeGrape]]:
    grapes = start_node_grapes(2, tmp_path_factory.mktemp("node-grapes"))
    yield grapes
    stop_all(g.process for g in grapes)


@pytest.fixture
async def link(node_grapes: list[NodeGrape]) -> AsyncIterator[Link]:
    async with Link([g.url for g in node_grapes], cache_ttl=0.0) as lk:
        yield lk


async def test_link_announce_lookup_put_get_through_node_grapes(
    node_grapes: list[NodeGrape],
) -> None:
    a, b = node_grapes
    async with Link([a.url]) as via_a, Link([b.url]) as via_b:
        assert await via_a.announce("py_link_case", 4321) >= 1
        assert "127.0.0.1:4321" in await via_b.lookup("py_link_case")
        key = await via_a.put("hello world")
        assert key == "6d33adc2b6b2c14c3036feefb7fedbca1a880527"
        assert (await via_b.get(key))["v"] == "hello world"


async def _announced(link: Link, service: str, port: int) -> None:
    peer = f"127.0.0.1:{port}"
    for _ in range(100):
        if peer in await link._fetch(service):
            return
        await link.announce(service, port)
    raise AssertionError(f"{peer} never showed up for {service}")


class Modes:
    """Our server's handler: echo, error or null by payload."""

    async def __call__(self, req: Request) -> Any:
        if req.payload == "fail":
            raise RuntimeError("ERR_PY_WORKER_FAILED")
        if req.payload == "null":
            return None
        return {"worker": "py", "echo": req.payload}


@pytest.mark.parametrize(
    ("payload", "compress", "expected"),
    [
        ({"a": [1, "x"]}, False, {"ok": True, "data": {"worker": "py", "echo": {"a": [1, "x"]}}}),
        ("zip", True, {"ok": True, "data": {"worker": "py", "echo": "zip"}}),
        ("fail", False, {"ok": False, "error": "ERR_PY_WORKER_FAILED"}),
        ("null", False, {"ok": True, "data": None}),
    ],
)
async def test_node_client_to_our_server(
    node_grapes: list[NodeGrape], link: Link, payload: Any, compress: bool, expected: Any
) -> None:
    service = f"py_server_{random.randrange(1 << 30)}"
    async with RpcServer(Modes(), host="127.0.0.1", port=0) as server:
        await _announced(link, service, server.port)
        args = node_client_args(node_grapes[1].url, service, payload, compress=compress)
        assert await run_node_async("client.js", *args) == expected


@pytest.fixture
def node_servers(node_grapes: list[NodeGrape], tmp_path: Path) -> Iterator[dict[str, Any]]:
    started: list[ServiceProcess] = []
    grape = node_grapes[0].url
    servers = {}
    for mode in ("echo", "error", "null"):
        s = start_node_server(grape, f"node_{mode}", tmp_path, mode=mode)
        started.append(s.process)
        servers[mode] = s
    for i in range(2):
        s = start_node_server(grape, "node_map", tmp_path, name=f"node-map-{i}")
        started.append(s.process)
    servers["map"] = start_node_server(grape, "node_map", tmp_path, name="node-map-2")
    started.append(servers["map"].process)
    yield servers
    stop_all(started)


async def test_our_client_to_node_servers(node_servers: dict[str, Any], link: Link) -> None:
    async with HttpTransport() as transport:
        client = PeerRpcClient(link, transport, random.Random(1))
        assert await client.request("node_echo", {"q": 1}, 5) == {
            "worker": "node",
            "echo": {"q": 1},
        }
        got = await client.request("node_echo", "gz", 5, compress=True)
        assert got == {"worker": "node", "echo": "gz"}
        with pytest.raises(RpcReplyError, match=r"^ERR_NODE_WORKER_FAILED$"):
            await client.request("node_error", 1, 5)
        assert await client.request("node_null", 1, 5) is None
        for _ in range(100):  # all three map servers announced through the other grape
            if len(await link._fetch("node_map")) == 3:
                break
            await asyncio.sleep(0.05)
        assert len(await link._fetch("node_map")) == 3
        link.forget("node_map")
        results = await client.map("node_map", "m", 5)
        assert results == [{"worker": "node", "echo": "m"}] * 3
        with pytest.raises(RpcReplyError):
            await client.map("node_error", 1, 5)
