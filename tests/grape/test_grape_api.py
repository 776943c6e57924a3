"""The grape's HTTP API against a real (lonely) DHT node: Grenache's error matrix and ours."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import BaseTestServer, TestClient

from lab.grape.api import GrapeApi, endpoint_of, recorded_host
from lab.grape.node import GrapeNode

NodeFactory = Callable[..., Awaitable[GrapeNode]]
HELLO_KEY = "6d33adc2b6b2c14c3036feefb7fedbca1a880527"


class GrapeTestServer(BaseTestServer):
    """The node's API on a free port, through the server the grape itself runs."""

    def __init__(self, node: GrapeNode) -> None:
        self.api = GrapeApi(node)
        super().__init__(host="127.0.0.1")

    async def _make_runner(self, **_kwargs: Any) -> web.ServerRunner:
        return web.ServerRunner(self.api.server())


@pytest.fixture
async def api(make_node: NodeFactory) -> AsyncIterator[TestClient[Any, Any]]:
    node = await make_node()
    async with TestClient[web.BaseRequest, None](GrapeTestServer(node)) as client:
        yield client


async def call(client: TestClient[Any, Any], path: str, data: Any) -> tuple[int, Any]:
    resp = await client.post(path, data=json.dumps({"rid": "r1", "data": data}))
    text = await resp.text()
    return resp.status, (json.loads(text) if text else None)


async def raw(
    client: TestClient[Any, Any], method: str, path: str, body: bytes, **kw: Any
) -> tuple[int, str]:
    resp = await client.request(method, path, data=body, **kw)
    return resp.status, await resp.text()


@pytest.mark.parametrize(
    ("path", "data", "want"),
    [
        ("/lookup", {}, "ERR_GRAPE_LOOKUP"),
        ("/lookup", "", "ERR_GRAPE_LOOKUP"),
        ("/lookup", None, "ERR_GRAPE_LOOKUP"),
        ("/lookup", 5, "ERR_GRAPE_LOOKUP"),
        ("/announce", ["x", "1"], "ERR_GRAPE_SERVICE_PORT"),
        ("/announce", ["x", 1.5], "ERR_GRAPE_SERVICE_PORT"),
        ("/announce", ["x", True], "ERR_GRAPE_SERVICE_PORT"),
        ("/announce", ["x", 0], "ERR_GRAPE_SERVICE_PORT"),
        ("/announce", ["x", 70000], "ERR_GRAPE_SERVICE_PORT"),
        ("/announce", [], "ERR_GRAPE_SERVICE_PORT"),
        ("/announce", "x", "ERR_GRAPE_ANNOUNCE"),
        ("/announce", {"name": "x"}, "ERR_GRAPE_ANNOUNCE"),
        ("/announce", [1, 1], "ERR_GRAPE_ANNOUNCE"),
        ("/announce", [None, 1], "ERR_GRAPE_ANNOUNCE"),
        ("/announce", ["", 1], "ERR_GRAPE_ANNOUNCE"),
        ("/announce", ["x", 1, {"host": "a b"}], "ERR_GRAPE_ANNOUNCE"),
        ("/announce", ["x", 1, {"host": 5}], "ERR_GRAPE_ANNOUNCE"),
        ("/put", 5, "ERR_GRAPE_PUT"),
        ("/put", None, "ERR_GRAPE_PUT"),
        ("/put", {"v": 1.5}, "ERR_GRAPE_PUT"),
        ("/put", {"v": None}, "ERR_GRAPE_PUT"),
        ("/put", {"v": "x", "k": "ab" * 32}, "ERR_GRAPE_PUT"),
        ("/put", "x" * 1000, "ERR_GRAPE_PUT_SIZE"),
        ("/get", "zz", "ERR_GRAPE_HASH_FORMAT"),
        ("/get", 5, "ERR_GRAPE_HASH_FORMAT"),
        ("/get", None, "ERR_GRAPE_HASH_FORMAT"),
        ("/get", {"hash": "00"}, "ERR_GRAPE_HASH_FORMAT"),
        ("/foo", 1, "ERR_REQ_NOTFOUND"),
        ("/", 1, "ERR_REQ_NOTFOUND"),
        ("/lookup?x=1", "x", "ERR_REQ_NOTFOUND"),
        ("/lookUp", "x", "ERR_REQ_NOTFOUND"),
        ("/look-up", "x", "ERR_REQ_NOTFOUND"),
        ("/peer-lookup", "x", "ERR_REQ_NOTFOUND"),
        ("/_lab/health", "x", "ERR_REQ_NOTFOUND"),
    ],
)
async def test_application_errors_are_200_json_strings(
    api: TestClient[Any, Any], path: str, data: Any, want: str
) -> None:
    assert await call(api, path, data) == (200, want)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "text"),
    [
        ("POST", "/lookup", b"", 500, "ERR_GRAPE_PAYLOAD_INVALID"),
        ("POST", "/lookup", b"garbage", 500, "ERR_GRAPE_PAYLOAD_INVALID"),
        ("POST", "/lookup", b"null", 500, "ERR_GRAPE_PAYLOAD_INVALID"),
        ("POST", "/lookup", b'{"data": NaN}', 500, "ERR_GRAPE_PAYLOAD_INVALID"),
        ("POST", "/lookup", b"\xff\xfe{}", 500, "ERR_GRAPE_PAYLOAD_INVALID"),
        ("POST", "/lookup", b"[" * 8000, 500, "ERR_GRAPE_PAYLOAD_INVALID"),
        ("GET", "/lookup", b"", 500, "ERR_GRAPE_PAYLOAD_INVALID"),
        ("POST", "/nothing", b"", 500, "ERR_GRAPE_PAYLOAD_INVALID"),
        ("POST", "/lookup", b" " * 8193, 413, "ERR_GRAPE_PAYLOAD_SIZE"),
        ("POST", "/foo", b"x" * 100_000, 413, "ERR_GRAPE_PAYLOAD_SIZE"),
    ],
)
async def test_transport_errors_are_plain_text(
    api: TestClient[Any, Any], method: str, path: str, body: bytes, status: int, text: str
) -> None:
    assert await raw(api, method, path, body) == (status, text)


async def test_the_size_limit_holds_for_chunked_bodies_too(api: TestClient[Any, Any]) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    assert await raw(api, "POST", "/lookup", chunks()) == (413, "ERR_GRAPE_PAYLOAD_SIZE")  # type: ignore[arg-type]
    body = json.dumps({"data": "x"}).encode() + b" " * (8192 - 13)
    assert len(body) == 8192
    assert await raw(api, "POST", "/lookup", body) == (200, "[]")


async def test_bodies_are_not_decompressed(api: TestClient[Any, Any]) -> None:
    body = gzip.compress(json.dumps({"data": "x"}).encode())
    for encoding in ("gzip", "br", "junk"):
        got = await raw(api, "POST", "/lookup", body, headers={"Content-Encoding": encoding})
        assert got == (500, "ERR_GRAPE_PAYLOAD_INVALID")


async def test_other_json_documents_carry_no_data(api: TestClient[Any, Any]) -> None:
    for body in (b"[1]", b"5", b'"data"', b"{}"):
        assert await raw(api, "POST", "/lookup", body) == (200, '"ERR_GRAPE_LOOKUP"')


async def test_any_content_type_is_accepted(api: TestClient[Any, Any]) -> None:
    body = json.dumps({"rid": "r", "data": "svc"}).encode()
    for ctype in ("text/plain;charset=UTF-8", "application/octet-stream", "application/json"):
        got = await raw(api, "POST", "/lookup", body, headers={"Content-Type": ctype})
        assert got == (200, "[]")


async def test_announce_then_lookup_alone(api: TestClient[Any, Any]) -> None:
    # No DHT peers: upstream answers "No nodes to query"; we store locally and count 1.
    assert await call(api, "/announce", ["rpc_test", 1337]) == (200, 1)
    assert await call(api, "/announce", ["rpc_test", 1338.0, {"host": "toxiproxy"}]) == (200, 1)
    status, peers = await call(api, "/lookup", "rpc_test")
    assert status == 200 and sorted(peers) == ["127.0.0.1:1337", "toxiproxy:1338"]
    for path in ("/Lookup", "/LOOKUP", "/lookup/", "/_lookup"):
        status, again = await call(api, path, "rpc_test")
        assert sorted(again) == sorted(peers)


async def test_a_loopback_caller_is_recorded_as_the_advertised_address(
    make_node: NodeFactory,
) -> None:
    node = await make_node(advertise="10.1.2.3")
    async with TestClient[web.BaseRequest, None](GrapeTestServer(node)) as client:
        assert await call(client, "/announce", ["svc", 4000]) == (200, 1)
        assert await call(client, "/lookup", "svc") == (200, ["10.1.2.3:4000"])


def test_recorded_host_rule() -> None:
    assert recorded_host("toxiproxy", "10.0.0.5", "10.0.0.1") == "toxiproxy"
    assert recorded_host(None, "10.0.0.5", "10.0.0.1") == "10.0.0.5"
    assert recorded_host(None, "127.0.0.1", "10.0.0.1") == "10.0.0.1"
    assert recorded_host(None, "127.0.0.5", "127.0.0.2") == "127.0.0.5"
    assert recorded_host(None, None, "10.0.0.1") == "10.0.0.1"


async def test_put_and_get(api: TestClient[Any, Any]) -> None:
    assert await call(api, "/put", "hello world") == (200, HELLO_KEY)
    assert await call(api, "/put", {"v": "hello world"}) == (200, HELLO_KEY)
    status, item = await call(api, "/get", HELLO_KEY)
    assert status == 200 and item["v"] == "hello world" and len(item["id"]) == 40
    assert (await call(api, "/get", {"hash": HELLO_KEY.upper()}))[1]["v"] == "hello world"
    assert await call(api, "/get", "00" * 20) == (200, None)  # unknown: an empty body
    status, key = await call(api, "/put", {"v": {"b": [1, "x"], "a": -2}})
    assert (await call(api, "/get", key))[1]["v"] == {"a": -2, "b": [1, "x"]}


async def test_health_and_metrics(api: TestClient[Any, Any]) -> None:
    await call(api, "/announce", ["svc", 1])
    await raw(api, "POST", "/lookup", b"garbage")
    resp = await api.get("/_lab/health")
    health = await resp.json()
    assert resp.status == 200
    assert health["status"] == "ok" and health["dht_peers"] == 0
    assert health["announcements"] == 1 and health["cluster"] == "test"
    resp = await api.get("/_lab/metrics")
    text = await resp.text()
    assert resp.status == 200 and resp.content_type == "text/plain"
    assert 'grape_http_requests_total{endpoint="announce",status="200"} 1.0' in text
    assert 'grape_http_requests_total{endpoint="invalid",status="500"} 1.0' in text
    assert "grape_dht_peers 0.0" in text
    assert "grape_announcements 1.0" in text
    assert "grape_http_request_seconds_bucket" in text


@pytest.mark.parametrize(
    ("path", "name"),
    [("/announce", "announce"), ("/Announce", "announce"), ("/GET", "get"), ("/-put-", "put"),
     ("/lookup'", "lookup"), ("/get/x", None), ("/gets", None), ("/%6cookup", None),
     ("/lookupé", None), ("", None)],
)  # fmt: skip
def test_endpoint_names_follow_upstream_camel_case(path: str, name: str | None) -> None:
    assert endpoint_of(path) == name
