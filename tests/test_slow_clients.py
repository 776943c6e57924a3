"""Every HTTP server of the lab cuts slow-header, slow-body and idle connections.

Before: the worker (RPC and control), the client's control API and the grape kept such
connections open for 40 s and more (aiohttp's default idle timeouts are 75 s and an
hour, and nothing bounded a request's body). Now a request head must be complete within
``HEADER_TIMEOUT_S`` of the connection opening, and its body within ``BODY_TIMEOUT_S``
more (408). Real processes, raw sockets, one byte a second: all twelve connections run
at once, so the test takes about one timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hostile_support import start_client, start_grape, start_worker

from lab.httplimits import BODY_TIMEOUT_S, HEADER_TIMEOUT_S

SLACK_S = 2.5  # a loaded 2-core machine: scheduling, plus the one-second trickle


@pytest.fixture
def servers(logdir: Path) -> Iterator[dict[str, tuple[str, int]]]:
    host = "127.0.4.4"
    grape, grape_url = start_grape(host, logdir)
    worker, control, rpc = start_worker(host, grape_url, logdir)
    client, client_url, _ = start_client(host, grape_url, logdir)
    try:

        def addr(url: str) -> tuple[str, int]:
            split = urlsplit(url)
            assert split.hostname and split.port
            return split.hostname, split.port

        yield {
            "grape": addr(grape_url),
            "worker-rpc": addr(rpc),
            "worker-control": addr(control),
            "client-control": addr(client_url),
        }
    finally:
        for proc in (client, worker, grape):
            proc.stop()


async def _held_for(
    addr: tuple[str, int], head: bytes, trickle: bytes, seconds: int
) -> tuple[float, bytes]:
    """Send ``head``, then a byte of ``trickle`` a second (none when empty), for at most
    ``seconds``; return (seconds until the server closed, what it sent)."""
    reader, writer = await asyncio.open_connection(*addr)
    started = time.monotonic()
    answer = b""
    chunk = b""
    try:
        writer.write(head)
        for i in range(seconds):
            try:
                chunk = await asyncio.wait_for(reader.read(4096), 1.0)
            except TimeoutError:
                writer.write(trickle[i : i + 1])
                continue
            answer += chunk
            if not chunk:
                break
        else:
            raise AssertionError(f"{addr}: still open after {seconds} s")
        while chunk:  # the rest of an answer, up to the close
            chunk = await asyncio.wait_for(reader.read(4096), 5.0)
            answer += chunk
    except ConnectionError:
        pass
    finally:
        writer.close()
    return time.monotonic() - started, answer


async def test_slow_and_idle_connections_are_cut_on_every_server(
    servers: dict[str, tuple[str, int]],
) -> None:
    limit = int(HEADER_TIMEOUT_S + BODY_TIMEOUT_S + 20)
    slow_header = (b"POST /x HTTP/1.1\r\nHost: a\r\n", b"X-Slow: " + b"a" * limit)
    body_route = {
        "grape": b"POST /lookup",
        "worker-rpc": b"POST /",
        "worker-control": b"PUT /behaviour",
        "client-control": b"POST /load/start",
    }

    def slow_body(name: str) -> tuple[bytes, bytes]:
        head = body_route[name] + b" HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n"
        return head, b" " * limit

    cases = {
        (name, mode): _held_for(addr, head, trickle, limit)
        for name, addr in servers.items()
        for mode, (head, trickle) in {
            "slow header": slow_header,
            "slow body": slow_body(name),
            "idle": (b"", b""),
        }.items()
    }
    results = dict(zip(cases, await asyncio.gather(*cases.values()), strict=True))
    for (name, mode), (held, answer) in results.items():
        bound = HEADER_TIMEOUT_S + (BODY_TIMEOUT_S if mode == "slow body" else 0) + SLACK_S
        assert held < bound, f"{name} held a {mode} connection {held:.1f} s"
        if mode == "slow body":
            assert answer.startswith(b"HTTP/1.1 408"), f"{name}: {answer[:120]!r}"
        else:
            assert answer == b"", f"{name} {mode}: {answer[:120]!r}"
