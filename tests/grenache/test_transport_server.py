"""HttpTransport against RpcServer and against misbehaving raw servers, over real sockets."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from lab.errors import RpcProtocolError, RpcReplyError, RpcTimeout, RpcTransportError
from lab.grenache.server import Outcome, RpcServer
from lab.grenache.transport import HttpTransport
from lab.grenache.wire import Request
from lab.procs import free_port

HOST = "127.0.0.1"


class Echo:
    """A handler whose behaviour a test switches; records what it saw."""

    def __init__(self) -> None:
        self.seen: list[Request] = []
        self.gate: asyncio.Event | None = None
        self.fail: Exception | None = None
        self.arrived = asyncio.Event()

    async def __call__(self, req: Request) -> Any:
        self.seen.append(req)
        self.arrived.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return {"echo": req.payload}


@pytest.fixture
async def echo() -> Echo:
    return Echo()


@pytest.fixture
async def observed() -> list[tuple[Outcome, str | None]]:
    return []


@pytest.fixture
async def server(
    echo: Echo, observed: list[tuple[Outcome, str | None]]
) -> AsyncIterator[RpcServer]:
    srv = RpcServer(
        echo, host=HOST, port=0, max_body=4096, observer=lambda o, k, _s: observed.append((o, k))
    )
    async with srv:
        yield srv


@pytest.fixture
async def transport() -> AsyncIterator[HttpTransport]:
    async with HttpTransport() as t:
        yield t


def peer_of(srv: RpcServer) -> str:
    return f"{HOST}:{srv.port}"


async def test_echo_plain_and_gzip(server: RpcServer, transport: HttpTransport, echo: Echo) -> None:
    assert await transport.request(peer_of(server), "svc", [1, "a"], timeout=2) == {
        "echo": [1, "a"]
    }
    got = await transport.request(peer_of(server), "svc", {"z": None}, timeout=2, compress=True)
    assert got == {"echo": {"z": None}}
    assert [(r.key, r.compressed) for r in echo.seen] == [("svc", False), ("svc", True)]


async def test_no_access_log_line_per_request(
    server: RpcServer, transport: HttpTransport, caplog: pytest.LogCaptureFixture
) -> None:
    """A line per RPC would cost the worker's loop and Docker's log pipe on every request."""
    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        await transport.request(peer_of(server), "svc", [1], timeout=2)
    assert [r for r in caplog.records if r.name.startswith("aiohttp.access")] == []


async def test_handler_error_string_is_kept(
    server: RpcServer, transport: HttpTransport, echo: Echo
) -> None:
    echo.fail = RuntimeError("ERR_WORKER_INJECTED: chosen by the error rate")
    with pytest.raises(RpcReplyError) as info:
        await transport.request(peer_of(server), "svc", 1, timeout=2)
    assert str(info.value) == "ERR_WORKER_INJECTED: chosen by the error rate"
    echo.fail = ValueError("boom")
    with pytest.raises(RpcReplyError, match=r"^ERR_HANDLER: ValueError: boom$"):
        await transport.request(peer_of(server), "svc", 1, timeout=2, compress=True)


async def test_deadline_is_a_timeout(
    server: RpcServer, transport: HttpTransport, echo: Echo
) -> None:
    echo.gate = asyncio.Event()
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(RpcTimeout, match="ERR_TIMEOUT"):
        await transport.request(peer_of(server), "svc", 1, timeout=0.2)
    assert 0.15 < loop.time() - start < 1.0
    echo.gate.set()
    with pytest.raises(RpcTimeout):
        await transport.request(peer_of(server), "svc", 1, timeout=0)


async def test_refused_is_transport_error(transport: HttpTransport) -> None:
    with pytest.raises(RpcTransportError, match="ERR_REQUEST_GENERIC"):
        await transport.request(f"{HOST}:{free_port(HOST)}", "svc", 1, timeout=2)


async def test_bad_peer_address_is_named(transport: HttpTransport) -> None:
    with pytest.raises(RpcTransportError, match="not a peer address: 'nope'"):
        await transport.request("nope", "svc", 1, timeout=2)


RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def raw_server(handle: RawHandler) -> asyncio.Server:
    return await asyncio.start_server(handle, HOST, 0)


async def _read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)


def _answer(status: str, body: bytes) -> RawHandler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n".encode()
            + b"Connection: close\r\n\r\n"
            + body
        )
        await writer.drain()
        writer.close()

    return handle


async def _reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    writer.transport.abort()


@pytest.mark.parametrize(
    ("handle", "error", "match"),
    [
        (_reset, RpcTransportError, "ERR_REQUEST_GENERIC"),
        (_answer("500 Internal Server Error", b"oops"), RpcTransportError, "HTTP 500: oops"),
        (_answer("200 OK", b"not json"), RpcProtocolError, "ERR_REPLY_EMPTY"),
        (_answer("200 OK", b""), RpcProtocolError, "ERR_REPLY_EMPTY"),
        (_answer("200 OK", b'["r", "ERR_X", null]'), RpcReplyError, "^ERR_X$"),
    ],
    ids=["reset", "http-500", "garbage-reply", "empty-reply", "error-reply"],
)
async def test_misbehaving_servers_map_to_rpc_errors(
    transport: HttpTransport, handle: RawHandler, error: type[Exception], match: str
) -> None:
    srv = await raw_server(handle)
    try:
        port = srv.sockets[0].getsockname()[1]
        with pytest.raises(error, match=match):
            await transport.request(f"{HOST}:{port}", "svc", 1, timeout=2)
    finally:
        srv.close()
        await srv.wait_closed()


# -- the server against raw HTTP -----------------------------------------------------------


async def _post(
    srv: RpcServer, body: bytes, headers: dict[str, str] | None = None, method: str = "POST"
) -> tuple[int, bytes, Any]:
    url = f"http://{HOST}:{srv.port}/"
    async with (
        aiohttp.ClientSession(auto_decompress=False) as s,
        s.request(method, url, data=body, headers=headers) as r,
    ):
        return r.status, await r.read(), r.headers


async def test_garbage_gets_400_envelope(server: RpcServer, observed: list[Any]) -> None:
    status, body, _ = await _post(server, b"\x00garbage")
    assert status == 400 and json.loads(body) == [None, "ERR_REQUEST_PARSE", None]
    assert observed == [(Outcome.BAD_REQUEST, None)]


async def test_bad_gr_header(server: RpcServer) -> None:
    status, body, _ = await _post(server, b'["r","k",1]', {"_gr": "{"})
    assert status == 400 and json.loads(body) == [None, "ERR_HEADER_PARSE_GR", None]


async def test_gr_header_and_any_content_type(server: RpcServer, echo: Echo) -> None:
    headers = {"_gr": '["rid-h", "key-h"]', "Content-Type": "text/plain;charset=UTF-8"}
    status, body, _ = await _post(server, b'["rid-b", "key-b", 3]', headers)
    assert status == 200 and json.loads(body) == ["rid-h", None, {"echo": 3}]
    assert echo.seen[-1].key == "key-h"


async def test_gzip_reply_without_content_encoding(server: RpcServer) -> None:
    status, body, headers = await _post(
        server, gzip.compress(b'["r1","k",{"a":1}]'), {"grc-compress": "gzip"}
    )
    assert status == 200 and "Content-Encoding" not in headers
    assert json.loads(gzip.decompress(body)) == ["r1", None, {"echo": {"a": 1}}]


async def test_wrong_method_and_oversized_body(server: RpcServer, observed: list[Any]) -> None:
    status, body, _ = await _post(server, b"", method="GET")
    assert status == 405 and json.loads(body)[1] == "ERR_REQUEST_METHOD"
    status, body, _ = await _post(server, b"[" + b"1," * 4000 + b"1]")
    assert status == 413 and "ERR_REQUEST_TOO_LARGE" in json.loads(body)[1]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    async with (
        aiohttp.ClientSession() as s,
        s.post(f"http://{HOST}:{server.port}/", data=chunks()) as r,
    ):
        assert r.status == 413
    assert [o for o, _k in observed] == [Outcome.BAD_REQUEST, Outcome.TOO_LARGE, Outcome.TOO_LARGE]


async def test_aclose_drains_in_flight_and_stops_accepting(transport: HttpTransport) -> None:
    echo = Echo()
    echo.gate = asyncio.Event()
    srv = await RpcServer(echo, host=HOST, port=0, drain_timeout=5).start()
    peer = peer_of(srv)
    pending = asyncio.create_task(transport.request(peer, "svc", "late", timeout=5))
    await asyncio.wait_for(echo.arrived.wait(), 2)
    closing = asyncio.create_task(srv.aclose())
    await asyncio.sleep(0.05)
    assert not closing.done()  # waiting for the in-flight request
    with pytest.raises(RpcTransportError):
        await transport.request(peer, "svc", "new", timeout=1)
    echo.gate.set()
    assert await pending == {"echo": "late"}
    await asyncio.wait_for(closing, 2)


async def test_aclose_gives_up_after_drain_timeout() -> None:
    echo = Echo()
    echo.gate = asyncio.Event()
    srv = await RpcServer(echo, host=HOST, port=0, drain_timeout=0.1).start()
    async with HttpTransport() as t:
        pending = asyncio.create_task(t.request(peer_of(srv), "svc", 1, timeout=5))
        await asyncio.wait_for(echo.arrived.wait(), 2)
        await asyncio.wait_for(srv.aclose(), 3)
        with pytest.raises((RpcTransportError, RpcTimeout)):
            await pending


async def test_bodies_in_flight_are_bounded() -> None:
    """Forty 1 MiB RPCs held by a slow handler: 16 MiB of bodies at most, the rest 429."""
    echo = Echo()
    echo.gate = asyncio.Event()
    srv = await RpcServer(echo, host=HOST, port=0, max_body_in_flight=16 * 2**20).start()
    body = json.dumps(["rid", "svc", "x" * (2**20 - 100)]).encode()
    try:
        async with aiohttp.ClientSession() as s:

            async def one() -> int:
                async with s.post(f"http://{HOST}:{srv.port}/", data=body) as r:
                    await r.read()
                    return r.status

            calls = [asyncio.create_task(one()) for _ in range(40)]
            deadline = asyncio.get_running_loop().time() + 10
            while sum(c.done() for c in calls) < 40 - 16:  # the refused ones answer at once
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.01)
            assert len(echo.seen) <= 16
            echo.gate.set()
            statuses = await asyncio.gather(*calls)
    finally:
        await srv.aclose()
    assert statuses.count(200) == 16 and statuses.count(429) == 24
    async with aiohttp.ClientSession() as s:  # the budget is given back
        srv = await RpcServer(Echo(), host=HOST, port=0, max_body_in_flight=2**20).start()
        try:
            for _ in range(3):
                async with s.post(f"http://{HOST}:{srv.port}/", data=body) as r:
                    assert r.status == 200
        finally:
            await srv.aclose()
