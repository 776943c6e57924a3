"""Our grape against the Node grape: the same requests, the same answers.

Each compatibility case of ``../shared/grenache-protocol.md`` that concerns the grape runs
twice, once on a pair of Node grapes (grenache-grape 1.0.0) and once on a pair of ours,
with the same assertions: the Node run proves the test states upstream's behaviour, the
other that we match it. A Node grape and one of ours never share a DHT (different DHT
protocols), so each pair is all-Node or all-ours and nothing is asserted across them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from interop_support import our_grapes
from node_harness import (
    PAYLOAD_LIMIT,
    Answer,
    NodeGrape,
    grape_post,
    http_raw,
    lookup,
    node_link,
    start_node_grapes,
    stop_all,
)

from lab.loadgen.local_cluster import LocalCluster
from lab.procs import free_port, wait_until

HELLO_KEY = "6d33adc2b6b2c14c3036feefb7fedbca1a880527"  # SHA1(bencode("hello world"))


@pytest.fixture(params=["node", "ours"])
def pair(request: pytest.FixtureRequest) -> list[str]:
    """The API URLs of a joined grape pair: the Node one, then ours."""
    if request.param == "node":
        grapes: list[NodeGrape] = request.getfixturevalue("node_pair")
        return [g.url for g in grapes]
    cluster: LocalCluster = request.getfixturevalue("our_pair")
    return cluster.grape_urls


def _name(tag: str) -> str:
    """A service name no other test of the session uses."""
    return f"interop_{tag}_{time.monotonic_ns()}"


# -- case 1: Node Link announce on one grape, lookup through the other ------------------


def test_node_link_announce_then_lookup_through_other_grape(pair: list[str]) -> None:
    service, port = _name("announce"), free_port("0.0.0.0")
    peer = f"127.0.0.1:{port}"  # Node DHT nodes and our grape both record the caller

    announced = node_link(pair[0], "announce", [service, port])
    assert announced["ok"] is True, announced
    stored = announced["data"]
    assert isinstance(stored, int) and not isinstance(stored, bool) and stored >= 1, announced

    wait_until(lambda: peer in lookup(pair[1], service), 5.0, what=f"{peer} via grape 2")
    found = node_link(pair[1], "lookup", service)
    assert found == {"ok": True, "data": [peer]}


def test_node_link_lookup_of_unknown_service_is_lookup_empty(pair: list[str]) -> None:
    assert grape_post(pair[1], "lookup", _name("nobody")).json() == []
    answer = node_link(pair[1], "lookup", _name("nobody"))
    assert answer == {"ok": False, "error": "ERR_GRAPE_LOOKUP_EMPTY"}


# -- case 3: put "hello world", get through the other grape ----------------------------


def test_put_hello_world_then_get_through_other_grape(pair: list[str]) -> None:
    assert grape_post(pair[0], "put", "hello world").json() == HELLO_KEY
    put = node_link(pair[0], "put", {"v": "hello world"})
    assert put == {"ok": True, "data": HELLO_KEY}

    got = grape_post(pair[1], "get", HELLO_KEY).json()
    assert isinstance(got, dict), got
    assert got["v"] == "hello world"
    assert isinstance(got["id"], str) and len(got["id"]) == 40  # the storing node's id
    via_link = node_link(pair[1], "get", {"hash": HELLO_KEY})
    assert via_link["ok"] is True and via_link["data"]["v"] == "hello world", via_link


def test_get_of_unknown_key_is_an_empty_body(pair: list[str]) -> None:
    answer = grape_post(pair[1], "get", "0" * 40)
    assert (answer.status, answer.body) == (200, b"")


# -- case 4: a short max age ------------------------------------------------------------

MAX_AGE_S = 2.0


@dataclass
class _ShortPair:
    urls: list[str]


@pytest.fixture(params=["node", "ours"])
def short_pair(request: pytest.FixtureRequest, logdir: Path) -> Iterator[_ShortPair]:
    """A grape pair whose announcements live about ``MAX_AGE_S`` seconds."""
    if request.param == "node":
        grapes = start_node_grapes(2, logdir, max_age_ms=int(MAX_AGE_S * 1000))
        yield _ShortPair([g.url for g in grapes])
        stop_all(g.process for g in grapes)
    else:
        cluster = our_grapes(logdir, 2, peer_max_age=f"{MAX_AGE_S:g}s")
        yield _ShortPair(cluster.grape_urls)
        cluster.stop()


def test_short_max_age_announcement_is_there_at_once_and_gone_after_the_age(
    short_pair: _ShortPair,
) -> None:
    first, second = short_pair.urls
    service, port = _name("age"), free_port("0.0.0.0")
    peer = f"127.0.0.1:{port}"
    announced_at = time.monotonic()
    assert isinstance(grape_post(first, "announce", [service, port]).json(), int)

    wait_until(lambda: peer in lookup(second, service), 1.0, what="the announcement at once")
    # Upstream keeps an announcement 0.67-1.33 x the max age; allow lookup caches a second.
    wait_until(
        lambda: peer not in lookup(second, service) and peer not in lookup(first, service),
        1.33 * MAX_AGE_S + 3.0,
        interval=0.1,
        what="the announcement to expire",
    )
    lived = time.monotonic() - announced_at
    assert lived >= 0.5 * MAX_AGE_S, f"gone after {lived:.2f}s, before its max age"


# -- case 2: the error matrix, side by side ---------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One request of the matrix; ``ours`` set when we deliberately answer otherwise."""

    label: str
    path: str
    body: bytes | None
    method: str = "POST"
    ours: tuple[int, str] | None = None
    why: str = ""


def _env(data: object) -> bytes:
    return json.dumps({"rid": "matrix", "data": data}).encode()


MATRIX = [
    Probe("lookup {}", "/lookup", _env({})),
    Probe("lookup empty name", "/lookup", _env("")),
    Probe("lookup number", "/lookup", _env(5)),
    Probe("lookup without data", "/lookup", b'{"rid":"x"}'),
    Probe("lookup body is an array", "/lookup", b"[1,2]"),
    Probe("lookup unknown name", "/lookup", _env("interop_matrix_nobody")),
    Probe("lookup query string", "/lookup?x=1", _env("svc")),
    Probe("Lookup capitalised path", "/Lookup", _env("interop_matrix_nobody")),
    Probe("announce ['x','1']", "/announce", _env(["x", "1"])),
    Probe("announce 'x'", "/announce", _env("x")),
    Probe("announce without data", "/announce", b'{"rid":"x"}'),
    Probe("announce port 1.5", "/announce", _env(["x", 1.5])),
    Probe("announce without port", "/announce", _env(["x"])),
    Probe("announce []", "/announce", _env([])),
    Probe("unknown endpoint /foo", "/foo", _env("x")),
    Probe("garbage body", "/lookup", b"garbage{"),
    Probe("empty body", "/lookup", b""),
    Probe("GET", "/lookup", None, method="GET"),
    Probe("PUT method", "/lookup", None, method="PUT"),
    Probe("oversized body", "/lookup", _env("a" * PAYLOAD_LIMIT)),
    Probe("put 'hello world'", "/put", _env("hello world")),
    Probe("get unknown key", "/get", _env("0" * 40)),
    # Deliberate differences: upstream leaks JavaScript exception texts as 500s or odd
    # strings; we answer with a Grenache-style error code (shared notes, "Grape HTTP API").
    Probe(
        "body is JSON null", "/lookup", b"null",
        ours=(500, "ERR_GRAPE_PAYLOAD_INVALID"),
        why="upstream: 500 'Cannot read properties of null'",
    ),
    Probe(
        "announce non-string name", "/announce", _env([1, 1]),
        ours=(200, '"ERR_GRAPE_ANNOUNCE"'), why="upstream: 500 with Buffer.from's TypeError",
    ),
    Probe(
        "announce port 0", "/announce", _env(["x", 0]),
        ours=(200, '"ERR_GRAPE_SERVICE_PORT"'),
        why="upstream announces its own DHT port instead; no worker listens there",
    ),
    Probe(
        "put v over 1000 bytes", "/put", _env({"v": "a" * 1100}),
        ours=(200, '"ERR_GRAPE_PUT_SIZE"'),
        why="upstream: the string 'v must be less than 1000 bytes in put()'",
    ),
    Probe(
        "put without v", "/put", _env(5),
        ours=(200, '"ERR_GRAPE_PUT"'), why="upstream: the string 'opts.v not given'",
    ),
    Probe(
        "put without data", "/put", b'{"rid":"x"}',
        ours=(200, '"ERR_GRAPE_PUT"'), why="upstream: 500 'Cannot read properties of undefined'",
    ),
    Probe(
        "get bad hex", "/get", _env("zz"),
        ours=(200, '"ERR_GRAPE_HASH_FORMAT"'),
        why="upstream reads 'zz' as an empty key and answers an empty body",
    ),
    Probe(
        "get without data", "/get", b'{"rid":"x"}',
        ours=(200, '"ERR_GRAPE_HASH_FORMAT"'), why="upstream: 500 with a TypeError text",
    ),
]  # fmt: skip


def _comparable(answer: Answer) -> tuple[int | None, object]:
    """Status and body; a JSON body as its value (spacing is not part of the contract)."""
    try:
        return answer.status, ("json", json.loads(answer.body)) if answer.body else ("", b"")
    except ValueError:
        return answer.status, ("text", answer.text)


@pytest.mark.parametrize("probe", MATRIX, ids=[p.label for p in MATRIX])
def test_error_matrix_side_by_side(
    probe: Probe, node_pair: list[NodeGrape], our_pair: LocalCluster
) -> None:
    upstream = http_raw(node_pair[0].url + probe.path, probe.body, method=probe.method)
    started = time.monotonic()
    ours = http_raw(our_pair.grape_urls[0] + probe.path, probe.body, method=probe.method)
    assert time.monotonic() - started < 1.0, "our grape took over a second to answer"
    assert upstream.status is not None, "the Node grape did not answer"

    if probe.ours is None:
        assert _comparable(ours) == _comparable(upstream), (ours, upstream)
        return
    want_status, want_body = probe.ours
    assert (ours.status, ours.text) == (want_status, want_body), (ours, probe.why)
    assert _comparable(upstream) != _comparable(ours), f"upstream now matches us: {upstream}"


@pytest.mark.parametrize("port", [70000, -1])
def test_out_of_range_port_kills_the_node_grape_but_not_ours(
    port: int, logdir: Path, our_pair: LocalCluster
) -> None:
    """Kept out of the matrix: upstream answers 500 with a RangeError text (or nothing),
    as its DHT announce throws the same error uncaught and the whole grape process exits."""
    body = _env(["interop_port_range", port])
    for url in our_pair.grape_urls:
        ours = http_raw(url + "/announce", body)
        assert (ours.status, ours.text) == (200, '"ERR_GRAPE_SERVICE_PORT"')
        assert grape_post(url, "lookup", "interop_port_range").json() == []

    grapes = start_node_grapes(2, logdir)
    try:
        try:  # the 500 races the crash: either may reach us first
            upstream = http_raw(grapes[0].url + "/announce", body)
            assert upstream.status == 500 and "out of range" in upstream.text, upstream
        except ConnectionError:
            pass
        wait_until(grapes[0].process.exited, 5.0, what="the Node grape to die")
        assert "ERR_OUT_OF_RANGE" in grapes[0].process.tail(40)
    finally:
        stop_all(g.process for g in grapes)
