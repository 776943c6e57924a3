"""``lab.grenache.http1`` against raw servers over real sockets: framing and reuse."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from lab.grenache.http1 import ConnectionPool, ProtocolViolation

HOST = "127.0.0.1"
REQUEST = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Raw:
    """A raw TCP server that counts connections and answers with ``reply(n)``."""

    def __init__(self, reply: Callable[[int], bytes], *, close: bool = False) -> None:
        self.reply = reply
        self.close = close
        self.connections = 0
        self.requests = 0
        self.gate: asyncio.Event | None = None
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                self.requests += 1
                n = self.requests
                if self.gate is not None:
                    await self.gate.wait()
                writer.write(self.reply(n))
                await writer.drain()
                if self.close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])


SERVERS: list[asyncio.Server] = []


@pytest.fixture
async def pool() -> AsyncIterator[ConnectionPool]:
    p = ConnectionPool()
    yield p
    p.close()
    while SERVERS:
        srv = SERVERS.pop()
        srv.close()
        await srv.wait_closed()


async def serve(raw: Raw) -> Raw:
    raw.server = await asyncio.start_server(raw.handle, HOST, 0)
    SERVERS.append(raw.server)
    return raw


def sized(n: int) -> bytes:
    body = f'["r{n}",null,{n}]'.encode()
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


async def test_sequential_requests_reuse_one_connection(pool: ConnectionPool) -> None:
    raw = await serve(Raw(sized))
    for i in (1, 2, 3):
        assert (await pool.send(HOST, raw.port, REQUEST))[:2] == (
            200,
            f'["r{i}",null,{i}]'.encode(),
        )
    assert raw.connections == 1


async def test_chunked_and_close_delimited_bodies(pool: ConnectionPool) -> None:
    reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    chunked = await serve(Raw(lambda _n: reply))
    assert (await pool.send(HOST, chunked.port, REQUEST))[:2] == (200, b"abcde")
    until_close = await serve(Raw(lambda _n: b"HTTP/1.0 200 OK\r\n\r\nwhole body", close=True))
    assert (await pool.send(HOST, until_close.port, REQUEST))[:2] == (200, b"whole body")


async def test_connection_close_is_not_reused(pool: ConnectionPool) -> None:
    reply = b"HTTP/1.1 503 Busy\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"
    raw = await serve(Raw(lambda _n: reply, close=True))
    assert (await pool.send(HOST, raw.port, REQUEST))[:2] == (503, b"x")
    assert (await pool.send(HOST, raw.port, REQUEST))[:2] == (503, b"x")
    assert raw.connections == 2


async def test_a_cancelled_request_never_hands_its_late_reply_to_the_next(
    pool: ConnectionPool,
) -> None:
    raw = Raw(sized)
    raw.gate = asyncio.Event()
    await serve(raw)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await pool.send(HOST, raw.port, REQUEST)
    raw.gate.set()  # the first reply goes out now, on a connection we closed
    assert (await pool.send(HOST, raw.port, REQUEST))[:2] == (200, b'["r2",null,2]')
    assert raw.connections == 2


async def test_garbage_and_a_close_before_the_reply_are_connection_errors(
    pool: ConnectionPool,
) -> None:
    garbage = await serve(Raw(lambda _n: b"SSH-2.0-OpenSSH\r\n\r\n"))
    with pytest.raises(ProtocolViolation):
        await pool.send(HOST, garbage.port, REQUEST)
    silent = await serve(Raw(lambda _n: b"", close=True))
    with pytest.raises(ConnectionError):
        await pool.send(HOST, silent.port, REQUEST)


async def test_the_per_host_limit_queues_requests(pool: ConnectionPool) -> None:
    one = ConnectionPool(limit_per_host=1)
    raw = await serve(Raw(sized))
    try:
        got = await asyncio.gather(*(one.send(HOST, raw.port, REQUEST) for _ in range(5)))
        assert sorted(reply.status for reply in got) == [200] * 5 and raw.connections == 1
    finally:
        one.close()
