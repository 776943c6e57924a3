"""Our Link against the Node grape: lookup, announce, put/get and its error strings.

A worker or client of ours must be able to use a plain upstream grape. The Node grape
answers application errors as 200 with a JSON string and size errors as 413 plain text;
our Link must turn each into a :class:`GrapeError` naming the code, and a lookup with no
peers into :class:`LookupEmpty`, as grenache-nodejs-link does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from node_harness import NodeGrape, lookup, start_node_grapes, stop_all

from lab.errors import GrapeError, LookupEmpty
from lab.grenache.link import Link
from lab.procs import free_port

HELLO_KEY = "6d33adc2b6b2c14c3036feefb7fedbca1a880527"


def _name(tag: str) -> str:
    return f"interop_link_{tag}_{time.monotonic_ns()}"


async def test_our_link_announces_on_one_node_grape_and_looks_up_through_the_other(
    node_pair: list[NodeGrape],
) -> None:
    service, port = _name("announce"), free_port("0.0.0.0")
    async with Link([node_pair[0].url]) as announcer:
        stored = await announcer.announce(service, port)
    assert stored >= 1
    async with Link([node_pair[1].url]) as reader:
        assert await reader.lookup(service) == [f"127.0.0.1:{port}"]


async def test_our_link_announce_loop_against_a_node_grape(node_pair: list[NodeGrape]) -> None:
    service, port = _name("loop"), free_port("0.0.0.0")
    results: list[bool] = []
    async with Link([node_pair[0].url]) as link:
        link.start_announcing(
            service, port, interval=60.0, on_result=lambda _n, ok: results.append(ok)
        )
        async with Link([node_pair[1].url]) as reader:
            deadline = time.monotonic() + 5.0
            while f"127.0.0.1:{port}" not in lookup(node_pair[1].url, service):
                assert time.monotonic() < deadline, "the announce loop's first announce"
                await asyncio.sleep(0.05)  # a poll with a deadline
            assert await reader.lookup(service) == [f"127.0.0.1:{port}"]
        await link.stop_announcing(service)
    assert results == [True]


async def test_our_link_lookup_of_unknown_service_is_lookup_empty(
    node_pair: list[NodeGrape],
) -> None:
    async with Link([node_pair[1].url]) as link:
        with pytest.raises(LookupEmpty):
            await link.lookup(_name("nobody"))


async def test_our_link_turns_node_grape_error_strings_into_grape_errors(
    node_pair: list[NodeGrape],
) -> None:
    async with Link([node_pair[0].url], attempts=1) as link:
        with pytest.raises(GrapeError) as lookup_err:
            await link.lookup("")
        assert lookup_err.value.code == "ERR_GRAPE_LOOKUP"
        assert lookup_err.value.grape == node_pair[0].url
        with pytest.raises(GrapeError) as size_err:
            await link.lookup("a" * 9000)  # 413 ERR_GRAPE_PAYLOAD_SIZE, plain text
        assert size_err.value.code == "ERR_GRAPE_PAYLOAD_SIZE"
        with pytest.raises(GrapeError) as put_err:
            await link.put("a" * 1100)
        assert "1000 bytes" in put_err.value.code  # upstream's raw text, kept as the code


async def test_our_link_put_and_get_through_node_grapes(node_pair: list[NodeGrape]) -> None:
    async with Link([node_pair[0].url]) as writer:
        assert await writer.put("hello world") == HELLO_KEY
    async with Link([node_pair[1].url]) as reader:
        item = await reader.get(HELLO_KEY)
        assert isinstance(item, dict) and item["v"] == "hello world"
        assert await reader.get("0" * 40) is None


async def test_our_link_fails_over_from_a_dead_grape_to_a_node_grape(
    node_pair: list[NodeGrape],
) -> None:
    service, port = _name("failover"), free_port("0.0.0.0")
    dead = f"http://127.0.0.1:{free_port('127.0.0.1')}"
    async with Link([dead, node_pair[0].url], attempts=2) as link:
        assert await link.announce(service, port) >= 1
        assert await link.lookup(service) == [f"127.0.0.1:{port}"]


@pytest.fixture
def lone_node_grape(logdir: Path) -> Iterator[NodeGrape]:
    grapes = start_node_grapes(1, logdir)
    yield grapes[0]
    stop_all(g.process for g in grapes)


async def test_our_link_reports_a_lone_node_grapes_announce_refusal(
    lone_node_grape: NodeGrape,
) -> None:
    """A Node grape without DHT peers cannot store an announcement and says so."""
    async with Link([lone_node_grape.url], attempts=1) as link:
        with pytest.raises(GrapeError) as err:
            await link.announce(_name("alone"), 1)
    assert err.value.code == "No nodes to query"
