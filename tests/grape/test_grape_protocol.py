"""The DHT protocol between in-process nodes over real UDP sockets."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable

from kademlia.network import Server
from kademlia.node import Node

from lab.grape.node import GrapeNode, service_key

NodeFactory = Callable[..., Awaitable[GrapeNode]]


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_announce_on_one_node_is_found_through_another(make_node: NodeFactory) -> None:
    a = await make_node()
    b = await make_node(bootstrap=(a,))
    c = await make_node(bootstrap=(a,))
    await until(lambda: all(n.peer_count() >= 2 for n in (a, b, c)))
    assert await a.announce("rpc_test", "10.0.0.1:1337") == 3
    assert await c.lookup("rpc_test") == ["10.0.0.1:1337"]
    assert await b.announce("rpc_test", "10.0.0.2:1337") == 3
    assert sorted(await a.lookup("rpc_test")) == ["10.0.0.1:1337", "10.0.0.2:1337"]
    assert await a.lookup("other") == []


async def test_a_node_of_another_cluster_gets_no_answer_and_no_entry(
    make_node: NodeFactory,
) -> None:
    a = await make_node()
    stranger = await make_node(cluster_id="elsewhere")
    assert a.protocol is not None and stranger.protocol is not None
    addr = (a.settings.bind, a.settings.dht_port)
    ok, _ = await stranger.protocol.ping(addr, stranger.protocol.source_node.id)
    assert not ok
    assert a.peer_count() == 0 and stranger.peer_count() == 0
    assert a.protocol.dropped >= 2  # both attempts were ignored


async def test_a_plain_kademlia_node_cannot_join(make_node: NodeFactory) -> None:
    a = await make_node()
    plain = Server()
    await plain.listen(0, interface="127.0.0.1")
    try:
        plain.protocol._wait_timeout = 0.1
        assert await plain.bootstrap([(a.settings.bind, a.settings.dht_port)]) == []
        assert a.peer_count() == 0
    finally:
        plain.stop()


async def test_each_call_is_sent_twice_before_giving_up(make_node: NodeFactory) -> None:
    a = await make_node()
    assert a.protocol is not None
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    silent.setblocking(False)
    try:
        started = time.monotonic()
        ok, _ = await a.protocol.ping(silent.getsockname(), a.protocol.source_node.id)
        took = time.monotonic() - started
        assert not ok
        assert 0.18 <= took < 1.0  # two attempts of rpc_timeout=0.1, not kademlia's 5 s
        got = 0
        while True:
            try:
                silent.recv(2048)
                got += 1
            except BlockingIOError:
                break
        assert got == 2
    finally:
        silent.close()


def _drain(sock: socket.socket) -> int:
    got = 0
    while True:
        try:
            sock.recv(2048)
            got += 1
        except BlockingIOError:
            return got


async def test_ask_all_answers_per_node_and_retries_only_the_silent(
    make_node: NodeFactory,
) -> None:
    a = await make_node()
    b = await make_node(bootstrap=(a,))
    await until(lambda: a.peer_count() >= 1 and b.peer_count() >= 1)
    assert a.protocol is not None and b.protocol is not None
    key = service_key("rpc_test")
    b.records.announce(key, "10.0.0.9:1337")
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    silent.setblocking(False)
    ghost = Node(os.urandom(20), *silent.getsockname())
    a.protocol.router.add_contact(ghost)
    live = next(n for n in a.protocol.router.find_neighbors(ghost) if n.port == b.settings.dht_port)
    try:
        answers = await a.protocol.ask_all("lookup", [live, ghost], key, within=2.0)
        assert answers == [(True, ["10.0.0.9:1337"]), (False, None)]
        assert _drain(silent) == 2  # the silent node was asked twice; the live one once
        assert not a.protocol.router.is_new_node(live)
        assert a.protocol.router.is_new_node(ghost)  # silent twice: out of the table
    finally:
        silent.close()


async def test_ask_all_leaves_a_node_undecided_at_its_deadline_in_the_table(
    make_node: NodeFactory,
) -> None:
    a = await make_node()
    assert a.protocol is not None
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    silent.setblocking(False)
    ghost = Node(os.urandom(20), *silent.getsockname())
    a.protocol.router.add_contact(ghost)
    try:
        answers = await a.protocol.ask_all("lookup", [ghost], service_key("x"), within=0.02)
        assert answers == [(False, None)]
        assert _drain(silent) == 1
        assert not a.protocol.router.is_new_node(ghost)  # not judged silent: still there
    finally:
        silent.close()


async def test_garbage_datagrams_are_dropped_and_the_node_keeps_answering(
    make_node: NodeFactory,
) -> None:
    a = await make_node()
    b = await make_node()
    assert a.protocol is not None and b.protocol is not None
    addr = (a.settings.bind, a.settings.dht_port)
    junk = [os.urandom(n) for n in (0, 1, 21, 22, 100, 1400)]
    junk += [b"\x00" + os.urandom(20) + b"\xc1", b"\x00" + os.urandom(20) + b"\x92\xa4ping\x90"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for payload in junk:
            s.sendto(payload, addr)
    await until(lambda: a.protocol is not None and a.protocol.dropped >= 3)
    ok, reply = await b.protocol.ping(addr, b.protocol.source_node.id)
    assert ok and reply == a.protocol.source_node.id


async def test_a_stored_value_must_match_its_key(make_node: NodeFactory) -> None:
    a = await make_node()
    b = await make_node()
    assert b.protocol is not None
    addr = (a.settings.bind, a.settings.dht_port)
    me = b.protocol.source_node.id
    ok, stored = await b.protocol.store(addr, me, service_key("x"), b"11:hello world")
    assert ok and stored is False
    key = bytes.fromhex(await b.put("hello world"))
    ok, stored = await b.protocol.store(addr, me, key, b"11:hello world")
    assert ok and stored is True
    got = await a.get(key)
    assert got is not None and got["v"] == "hello world"
