"""The Compose lab through its real network: discovery, RPC via Toxiproxy, toxics, teardown.

Requests are made from inside a worker container (``docker exec`` of a Python one-liner
speaking Grenache's HTTP RPC format), so they take the path every client takes: the
``lab`` network, Toxiproxy's listener, then the worker. ``test_down_*`` runs last and
takes the lab down (and up again if it was up before the session).

The lab comes up once per session (reused when already up) through ``tests/compose_lab.py``,
shared with the scenario engine's Compose tests; it skips loudly, with the reason, where no
Docker engine answers or a service the lab needs is not written yet.
"""

from __future__ import annotations

import json
import statistics
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from compose_lab import Lab, lab_session

from lab.stack import toxiapi
from lab.stack.engine import PROJECT, PROJECT_LABEL, service_name


@pytest.fixture(scope="session")
def compose_lab() -> Iterator[Lab]:
    yield from lab_session()


pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]

WORKERS = {f"worker-{i}": f"toxiproxy:2100{i}" for i in (1, 2, 3)}
GRAPE_APIS = [f"http://127.0.0.1:3000{i}" for i in (1, 2, 3)]

PROBE = r"""
import http.client, json, sys, time, uuid
peers, n = json.loads(sys.argv[1]), int(sys.argv[2])
out = {}
for peer in peers:
    host, port = peer.rsplit(":", 1)
    rows = []
    for i in range(n):
        rid = str(uuid.uuid4())
        t0 = time.monotonic()
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        conn.request("POST", "/", json.dumps([rid, "rpc_test", {"i": i}]), {"grc-compress": "none"})
        body = conn.getresponse().read()
        conn.close()
        rows.append([time.monotonic() - t0, json.loads(body)])
    out[peer] = rows
print(json.dumps(out))
"""


def _post(url: str, body: Any) -> Any:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=3) as resp:
        return json.loads(resp.read() or b"null")


def _lookup(api: str) -> set[str]:
    answer = _post(f"{api}/lookup", {"rid": str(uuid.uuid4()), "data": "rpc_test"})
    return set(answer) if isinstance(answer, list) else set()


def _probe(lab: Lab, peers: list[str], n: int) -> dict[str, list[tuple[float, Any]]]:
    """Run PROBE in worker-1's container: n sequential RPCs to each peer, with timings.

    The probe speaks Grenache's HTTP RPC wire format (``[rid, key, payload]`` in, ``[rid,
    error, result]`` out) with the standard library, one connection per request, so the
    timing of each request includes the path through Toxiproxy and nothing is pooled.
    """
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
        assert all(r[1] is None for r in replies), (addr, replies)
        assert all(r[2]["worker"] == worker for r in replies), (addr, replies)
        assert replies[0][2]["echo"] == {"i": 0}


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


@pytest.mark.parametrize("client", ["client-random", "client-adaptive"])
def test_an_rpc_through_a_client_reaches_each_worker(compose_lab: Lab, client: str) -> None:
    """A short load through the client's control API; its history names every worker."""
    index = {"client-random": 2, "client-adaptive": 1}[client]
    api = f"http://127.0.0.1:850{index}"
    cursor = _get(f"{api}/history?cursor={10**12}")["cursor"]
    _post(f"{api}/load/start", {"rate": 90, "duration_s": 2, "seed": 5, "timeout_s": 1.0})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        load = _get(f"{api}/load")
        if not load["running"] and load["in_flight"] == 0:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"{client}: load still running after 20 s: {load}")
    records = []
    while True:
        page = _get(f"{api}/history?cursor={cursor}&limit=1000")
        records += page["records"]
        if not page["records"]:
            break
        cursor = page["cursor"]
    assert len(records) >= 150, len(records)
    ok = [r for r in records if r["outcome"] == "ok"]
    assert len(ok) == len(records), [r["error"] for r in records if r["outcome"] != "ok"][:5]
    peers = {a["peer"] for r in ok for a in r["attempts"]}
    assert peers == set(WORKERS.values()), peers


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
    # Either the crashed-run cleanup (lab.scenario.faults.rollback) or down's own sweep removes
    # it, and says which toxic it removed.
    assert "removed" in done.stderr and (
        "lab-test-leftover" in done.stderr or "1 leftover toxic" in done.stderr
    ), done.stderr
    client = compose_lab.engine.client
    label = f"{PROJECT_LABEL}={PROJECT}"
    assert client.containers.list(all=True, filters={"label": label}) == []
    assert client.networks.list(filters={"label": label}) == []
    if compose_lab.was_up:  # give the developer their lab back
        again = compose_lab.up()
        assert again.returncode == 0, again.stderr
