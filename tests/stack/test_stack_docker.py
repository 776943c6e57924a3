"""The Compose lab through its real network: discovery, RPC via Toxiproxy, toxics, teardown.

Requests are made from inside a worker container (``docker exec`` of a Python one-liner
using the lab's own Grenache transport), so they take the path every client takes: the
``lab`` network, Toxiproxy's listener, then the worker. ``test_down_*`` runs last and
takes the lab down (and up again if it was up before the session).
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import time
import urllib.request
import uuid
from typing import Any

import pytest

from lab.stack import toxiapi
from lab.stack.engine import PROJECT, PROJECT_LABEL, service_name

from .conftest import Lab

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]

WORKERS = {f"worker-{i}": f"toxiproxy:2100{i}" for i in (1, 2, 3)}
GRAPE_APIS = [f"http://127.0.0.1:3000{i}" for i in (1, 2, 3)]

PROBE = r"""
import asyncio, json, sys, time
from lab.grenache.transport import HttpTransport
peers, n = json.loads(sys.argv[1]), int(sys.argv[2])
async def main():
    t = HttpTransport()
    out = {}
    try:
        for p in peers:
            rows = []
            for i in range(n):
                t0 = time.monotonic()
                reply = await t.request(p, "rpc_test", {"i": i}, timeout=5.0)
                rows.append([time.monotonic() - t0, reply])
            out[p] = rows
    finally:
        await t.aclose()
    print(json.dumps(out))
asyncio.run(main())
"""


def _post(url: str, body: Any) -> Any:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=3) as resp:
        return json.loads(resp.read() or b"null")


def _lookup(api: str) -> set[str]:
    answer = _post(f"{api}/lookup", {"rid": str(uuid.uuid4()), "data": "rpc_test"})
    return set(answer) if isinstance(answer, list) else set()


def _probe(lab: Lab, peers: list[str], n: int) -> dict[str, list[tuple[float, Any]]]:
    """Run PROBE in worker-1's container: n sequential RPCs to each peer, with timings."""
    if importlib.util.find_spec("lab.grenache.transport") is None:
        pytest.skip("lab.grenache.transport (HttpTransport) is not written yet")
    worker = next(c for c in lab.engine.containers(all=False) if service_name(c) == "worker-1")
    code, out = worker.exec_run(["python", "-c", PROBE, json.dumps(peers), str(n)])
    text = out.decode(errors="replace")
    assert code == 0, f"probe failed in worker-1:\n{text[-2000:]}"
    return {p: [(float(dt), reply) for dt, reply in rows] for p, rows in json.loads(text).items()}


def test_every_grape_lists_all_three_workers_at_their_toxiproxy_addresses(
    compose_lab: Lab,
) -> None:
    expected = set(WORKERS.values())
    deadline = time.monotonic() + 20
    seen: dict[str, set[str]] = {}
    while time.monotonic() < deadline:
        seen = {api: _lookup(api) for api in GRAPE_APIS}
        if all(v == expected for v in seen.values()):
            return
        time.sleep(0.5)
    pytest.fail(f"lookups after 20 s: {seen}; expected {sorted(expected)} from every grape")


def test_an_rpc_through_toxiproxy_reaches_each_worker(compose_lab: Lab) -> None:
    result = _probe(compose_lab, list(WORKERS.values()), 3)
    for worker, addr in WORKERS.items():
        replies = [reply for _, reply in result[addr]]
        assert all(r.get("worker") == worker for r in replies), (addr, replies)
        assert replies[0].get("echo") == {"i": 0}


def test_a_latency_toxic_shows_in_that_workers_latency_only(compose_lab: Lab) -> None:
    name = f"lab-test-latency-{uuid.uuid4().hex[:6]}"
    toxic = {
        "name": name,
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": {"latency": 200, "jitter": 0},
    }
    _post(f"{toxiapi.DEFAULT_API}/proxies/worker-2/toxics", toxic)
    try:
        result = _probe(compose_lab, list(WORKERS.values()), 5)
    finally:
        req = urllib.request.Request(
            f"{toxiapi.DEFAULT_API}/proxies/worker-2/toxics/{name}", method="DELETE"
        )
        urllib.request.urlopen(req, timeout=3).close()
    median = {addr: statistics.median(dt for dt, _ in rows) for addr, rows in result.items()}
    assert median["toxiproxy:21002"] >= 0.19, median
    assert median["toxiproxy:21001"] < 0.1 and median["toxiproxy:21003"] < 0.1, median


def test_down_leaves_no_container_network_or_toxic(compose_lab: Lab) -> None:
    leftover = {"name": "lab-test-leftover", "type": "latency", "attributes": {"latency": 50}}
    _post(f"{toxiapi.DEFAULT_API}/proxies/worker-1/toxics", leftover)
    done = compose_lab.down()
    assert done.returncode == 0, done.stderr
    assert "removed 1 leftover toxic" in done.stderr
    client = compose_lab.engine.client
    label = f"{PROJECT_LABEL}={PROJECT}"
    assert client.containers.list(all=True, filters={"label": label}) == []
    assert client.networks.list(filters={"label": label}) == []
    if compose_lab.was_up:  # give the developer their lab back
        again = compose_lab.up()
        assert again.returncode == 0, again.stderr
