"""RPC across implementations: the Node PeerRPCClient against our worker, ours against Node.

Case 5 of the compatibility list (echo, error reply, compress on, null reply, ``map``
over 3 servers) both ways, and case 6 (malformed input to our worker gets a clear error
at once, never a hang). Discovery stays within one implementation on each side: the
Node client finds our workers through our grape (Node Link against our grape API), our
client finds Node servers through a Node grape (our Link against the Node grape API).
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from interop_support import NodeServerFactory, hosts
from node_harness import (
    NodeGrape,
    http_raw,
    lookup,
    node_client_args,
    run_node,
    run_node_async,
    start_node_server,
    stop_all,
)

from lab.errors import RpcReplyError
from lab.grenache import wire
from lab.grenache.client import PeerRpcClient
from lab.grenache.link import Link
from lab.grenache.server import RpcServer
from lab.grenache.transport import HttpTransport
from lab.loadgen.local_cluster import ClusterSpec, LocalCluster
from lab.procs import http_ok, wait_until

SERVICE = "interop_rpc"
PAYLOAD = {"n": 7, "text": "héllo", "list": [1, None, True]}


@pytest.fixture(scope="module")
def ours(module_logdir: Path) -> Iterator[LocalCluster]:
    """One of our grapes and three of our workers serving ``SERVICE``."""
    spec = ClusterSpec(grapes=1, workers=3, service=SERVICE, worker_announce_interval="0.5s")
    cluster = LocalCluster(spec, module_logdir, hosts=hosts()).start()
    yield cluster
    cluster.stop()


def node_client(cluster: LocalCluster, payload: Any = PAYLOAD, **kw: Any) -> dict[str, Any]:
    return run_node("client.js", *node_client_args(cluster.grape_urls[0], SERVICE, payload, **kw))


# -- Node PeerRPCClient -> our worker ---------------------------------------------------


def test_node_client_echo_from_our_worker(ours: LocalCluster) -> None:
    answer = node_client(ours)
    assert answer["ok"] is True, answer
    assert answer["data"]["echo"] == PAYLOAD
    assert answer["data"]["worker"] in {w.name for w in ours.workers}


def test_node_client_compressed_request_to_our_worker(ours: LocalCluster) -> None:
    big = {"pad": "z" * 5000, **PAYLOAD}  # worth gzipping; the reply comes back gzipped
    answer = node_client(ours, big, compress=True)
    assert answer["ok"] is True, answer
    assert answer["data"]["echo"] == big


def test_node_client_gets_our_workers_error_reply(ours: LocalCluster) -> None:
    for w in ours.workers:
        w.behaviour({"error_rate": 1.0})
    try:
        answer = node_client(ours)
    finally:
        for w in ours.workers:
            w.behaviour({"error_rate": 0.0})
    assert answer["ok"] is False, answer
    assert answer["error"].startswith("ERR_WORKER_INJECTED: worker-"), answer


def test_node_client_map_over_our_three_workers(ours: LocalCluster) -> None:
    answer = node_client(ours, op="map")
    assert answer["ok"] is True, answer
    replies = answer["data"]
    assert sorted(r["worker"] for r in replies) == ["worker-1", "worker-2", "worker-3"]
    assert all(r["echo"] == PAYLOAD for r in replies)


async def test_node_client_gets_a_null_reply_from_our_server(ours: LocalCluster) -> None:
    """Our worker always answers an object, so a bare RpcServer answers null here."""

    async def nothing(_req: wire.Request) -> None:
        return None

    service = f"interop_null_{time.monotonic_ns()}"
    async with RpcServer(nothing, host="127.0.0.1", port=0) as server:
        async with Link(ours.grape_urls) as link:
            assert await link.announce(service, server.port) >= 1
        for compress in (False, True):
            args = node_client_args(ours.grape_urls[0], service, "x", compress=compress)
            answer = await run_node_async("client.js", *args)
            assert answer == {"ok": True, "data": None}


# -- our PeerRpcClient / HttpTransport -> Node PeerRPCServer ----------------------------


@pytest.fixture(scope="module")
def node_side(node_pair: list[NodeGrape], module_logdir: Path) -> Iterator[dict[str, Any]]:
    """Node servers on Node grape 1: three echo, one error, one null (each its service)."""
    url = node_pair[0].url
    servers = [start_node_server(url, "node_echo", module_logdir, mode="echo") for _ in range(3)]
    servers.append(start_node_server(url, "node_error", module_logdir, mode="error"))
    servers.append(start_node_server(url, "node_null", module_logdir, mode="null"))
    try:
        want = {f"127.0.0.1:{s.port}" for s in servers[:3]}
        wait_until(
            lambda: want <= set(lookup(node_pair[1].url, "node_echo")),
            10.0,
            what="the three Node echo servers through Node grape 2",
        )
        yield {"grape": node_pair[1].url, "echo_peers": want, "servers": servers}
    finally:
        stop_all(s.process for s in servers)


async def test_our_client_echo_and_compress_against_node_servers(node_side: dict[str, Any]) -> None:
    async with Link([node_side["grape"]]) as link, HttpTransport() as transport:
        client = PeerRpcClient(link, transport)
        for compress in (False, True):
            reply = await client.request("node_echo", PAYLOAD, 5.0, compress=compress)
            assert reply == {"worker": "node", "echo": PAYLOAD}


async def test_our_client_gets_the_node_servers_error_reply(node_side: dict[str, Any]) -> None:
    async with Link([node_side["grape"]]) as link, HttpTransport() as transport:
        client = PeerRpcClient(link, transport)
        with pytest.raises(RpcReplyError, match=r"^ERR_NODE_WORKER_FAILED$"):
            await client.request("node_error", PAYLOAD, 5.0)


async def test_our_client_gets_the_node_servers_null_reply(node_side: dict[str, Any]) -> None:
    async with Link([node_side["grape"]]) as link, HttpTransport() as transport:
        client = PeerRpcClient(link, transport)
        assert await client.request("node_null", PAYLOAD, 5.0) is None
        assert await client.request("node_null", PAYLOAD, 5.0, compress=True) is None


async def test_our_client_map_over_three_node_servers(node_side: dict[str, Any]) -> None:
    async with Link([node_side["grape"]]) as link, HttpTransport() as transport:
        assert set(await link.lookup("node_echo")) == node_side["echo_peers"]
        replies = await PeerRpcClient(link, transport).map("node_echo", PAYLOAD, 5.0)
    assert replies == [{"worker": "node", "echo": PAYLOAD}] * 3


async def test_our_transport_talks_to_one_node_server_directly(node_side: dict[str, Any]) -> None:
    peer = sorted(node_side["echo_peers"])[0]
    async with HttpTransport() as transport:
        reply = await transport.request(peer, "node_echo", [1, 2], timeout=5.0, compress=True)
    assert reply == {"worker": "node", "echo": [1, 2]}


# -- case 6: malformed input to our worker ----------------------------------------------


def _worker_url(cluster: LocalCluster) -> str:
    w = cluster.workers[0]
    return f"http://{w.host}:{w.port}/"


_ENVELOPE = json.dumps(["r", "k", 1]).encode()
MALFORMED = [
    ("garbage body", b"\x00\xffnot json{", {}, "ERR_REQUEST_PARSE"),
    ("JSON but not an envelope", b'{"a": 1}', {}, "ERR_REQUEST_PARSE"),
    ("empty body", b"", {}, "ERR_REQUEST_PARSE"),
    ("gzip claimed, garbage sent", b"\x1f\x8b garbage", {"grc-compress": "gzip"}, None),
    ("bad _gr header", _ENVELOPE, {"_gr": "{not json"}, "ERR_HEADER_PARSE_GR"),
    ("_gr not an array", _ENVELOPE, {"_gr": '"x"'}, "ERR_HEADER_PARSE_GR"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "headers", "code"),
    [m[1:] for m in MALFORMED],
    ids=[m[0] for m in MALFORMED],
)
def test_malformed_input_to_our_worker_gets_a_clear_error_at_once(
    ours: LocalCluster, body: bytes, headers: dict[str, str], code: str | None
) -> None:
    started = time.monotonic()
    answer = http_raw(_worker_url(ours), body, headers=headers, timeout=2.0)
    assert answer.status is not None, "no answer: the worker hung"
    assert time.monotonic() - started < 1.0
    assert answer.status == 400, answer
    rid, error, data = answer.json()
    assert rid is None and data is None
    assert error.startswith(code or "ERR_REQUEST_PARSE"), answer
    assert http_ok(f"{ours.workers[0].control_url}/health")


def test_our_worker_still_serves_after_malformed_input(ours: LocalCluster) -> None:
    for _label, body, headers, _code in MALFORMED:
        http_raw(_worker_url(ours), body, headers=headers, timeout=2.0)
    good = json.dumps(["rid-1", SERVICE, {"ok": 1}]).encode()
    answer = http_raw(_worker_url(ours), good, headers={"Content-Type": "text/plain"})
    assert answer.status == 200
    assert answer.json() == ["rid-1", None, {"worker": "worker-1", "echo": {"ok": 1}}]
    zipped = http_raw(_worker_url(ours), gzip.compress(good), headers={"grc-compress": "gzip"})
    assert json.loads(gzip.decompress(zipped.body)) == answer.json()


def test_upstream_server_never_answers_garbage_where_ours_does(
    ours: LocalCluster, node_servers: NodeServerFactory
) -> None:
    """The documented upstream quirk we improve on: garbage gets no reply at all."""
    node = node_servers(ours.grape_urls[0], "interop_garbage")
    upstream = http_raw(f"http://127.0.0.1:{node.port}/", b"garbage{", timeout=0.5)
    assert upstream.status is None, f"upstream answered: {upstream}"
    ours_answer = http_raw(_worker_url(ours), b"garbage{", timeout=0.5)
    assert ours_answer.status == 400
