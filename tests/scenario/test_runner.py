"""The runner end to end on the local runtime: real grapes, real workers behind a real
Toxiproxy, and stand-in client processes that speak the client control API.

Why stand-ins: these tests are about the runner's mechanics (timing of steps, journal,
oracle updates, rollback on every exit path, summary/report, exit codes). The stand-in is
a real HTTP server on its own thread that records one request every 10 ms, choosing the
workers' announced peers round-robin and skipping those the oracle says are faulty, so
the runner's clock, collector and checks see a plausible history. The full stack with
`lab client` processes is in test_runner_e2e.py.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from engine_support import toxiproxy_binary

from lab.history import Attempt, Outcome, RequestRecord, read_journal, request_to_json
from lab.scenario.faults.marker import MARKER
from lab.scenario.plan.spec import parse_scenario
from lab.scenario.run.runner import run_scenario
from lab.scenario.runtime.local import LocalRuntime
from lab.scenario.runtime.protocol import Target
from lab.toxiproxy_adapter import ToxiproxyAdapter

pytestmark = pytest.mark.toxiproxy


class StandInClient:
    """The client control API over a thread that records one request per tick."""

    def __init__(self, name: str, policy: str, peers: list[str]) -> None:
        self.name, self.policy, self.peers = name, policy, peers
        self.records: list[dict[str, Any]] = []
        self.faulty: list[str] = []
        self.gossip = True
        self.posts: list[str] = []
        self.lock = threading.Lock()
        self.loading = threading.Event()
        self._stop = threading.Event()
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _send(self, data: Any) -> None:
                body = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> Any:
                n = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(n) or b"{}")

            def do_GET(self) -> None:
                u = urlsplit(self.path)
                cursor = int(parse_qs(u.query).get("cursor", ["0"])[0])
                if u.path == "/clock":
                    self._send({"monotonic": time.monotonic()})
                elif u.path == "/history":
                    with outer.lock:
                        page = outer.records[cursor:]
                    self._send({"records": page, "cursor": cursor + len(page), "dropped": 0})
                elif u.path == "/events":
                    self._send({"events": [], "cursor": 0, "dropped": 0})
                else:
                    self._send({"status": "ok"})

            def do_PUT(self) -> None:
                data = self._body()
                if self.path == "/oracle":
                    outer.faulty = list(data["faulty"])
                elif self.path == "/gossip":
                    outer.gossip = bool(data["enabled"])
                self._send(data)

            def do_POST(self) -> None:
                self._body()
                if self.path == "/load/start":
                    outer.loading.set()
                elif self.path == "/load/stop":  # not /load/lease: that renews
                    outer.loading.clear()
                outer.posts.append(self.path)
                self._send({"ok": True})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.threads = [
            threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}),
            threading.Thread(target=self._load),
        ]
        for t in self.threads:
            t.start()

    def _load(self) -> None:
        seq = itertools.count()
        rr = itertools.cycle(self.peers)
        while not self._stop.wait(0.01):
            if not self.loading.is_set():
                continue
            peer = next(rr)
            if self.policy == "oracle":
                while peer in self.faulty:
                    peer = next(rr)
            now = time.monotonic()
            ok = peer not in self.faulty
            rec = RequestRecord(
                self.name, self.policy, next(seq), now, now + 0.001,
                Outcome.OK if ok else Outcome.TIMEOUT,
                (Attempt(peer, now, now + 0.001, Outcome.OK if ok else Outcome.TIMEOUT),),
            )  # fmt: skip
            with self.lock:
                self.records.append(request_to_json(rec))

    def close(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()
        for t in self.threads:
            t.join(5)


class StandInRuntime(LocalRuntime):
    """The local runtime plus stand-in clients."""

    stand_ins: list[StandInClient]

    def targets(self) -> Mapping[str, Target]:
        out = dict(super().targets())
        for c in self.stand_ins:
            out[c.name] = Target(c.name, "client", c.url, policy=c.policy)
        return out


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandInRuntime]:
    base = LocalRuntime.launch(
        grapes=1, workers=2, clients=[], logdir=tmp_path_factory.mktemp("local"),
        toxiproxy_binary=toxiproxy_binary(),
    )  # fmt: skip
    rt = StandInRuntime(base.cluster)
    peers = base.cluster.peers()
    rt.stand_ins = [
        StandInClient("client-random", "random", peers),
        StandInClient("client-oracle", "oracle", peers),
    ]
    yield rt
    for c in rt.stand_ins:
        c.close()
    rt.close()


def scenario(expect: str = 'random: {availability: ">= 0.3"}', duration: str = "2.5s") -> Any:
    text = f"""
name: runner-test
seed: 3
runtime: local
topology: {{grapes: 1, workers: 2}}
clients: [random, oracle]
load: {{rate: 100}}
duration: {duration}
warmup: 0.2s
settle: 0.2s
timeline:
  - {{at: 0.8s, fault: partition, target: worker-2}}
  - {{at: 1.6s, heal: worker-2}}
expect:
  {expect}
"""
    return parse_scenario(text, "runner-test.yaml")


async def test_a_run_injects_on_time_tells_the_oracle_and_writes_everything(
    runtime: StandInRuntime, tmp_path: Path
) -> None:
    result = await run_scenario(scenario(), runtime=runtime, reports_dir=tmp_path)
    assert result.abort_reason is None, result.abort_reason
    assert (result.status, result.verdict, result.exit_code) == ("completed", "pass", 0)
    history = read_journal(result.run_dir / "journal.jsonl")
    (fault,) = history.faults
    t0 = next(p for p in history.meta.phases if p["name"] == "load")["start"]
    assert fault.started is not None and fault.ended is not None
    assert 0.75 <= fault.started - t0 <= 1.0 and 1.55 <= fault.ended - t0 <= 1.8
    assert fault.peers == (runtime.targets()["worker-2"].peer,)
    # the oracle stand-in stopped choosing the faulty peer while it was faulty
    oracle = [r for r in history.requests if r.policy == "oracle"]
    inside = [r for r in oracle if fault.started + 0.05 < r.issued < fault.ended]
    assert inside and all(r.attempts[0].peer not in fault.peers for r in inside)
    clock = next(p for p in history.meta.phases if p["name"] == "clock-probe")
    assert clock["max_abs_offset_s"] < 0.005
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["verdict"] == "pass"
    assert (result.run_dir / "report.html").exists()
    assert "<testsuite" in next(result.run_dir.glob("*.xml")).read_text()
    assert not (tmp_path / MARKER).exists()
    assert ToxiproxyAdapter(runtime.toxiproxy_api()).toxics("worker-2") == []


async def test_an_impossible_expectation_exits_1(runtime: StandInRuntime, tmp_path: Path) -> None:
    result = await run_scenario(
        scenario('random: {detection_s: "<= 0.001"}'), runtime=runtime, reports_dir=tmp_path
    )
    assert (result.verdict, result.exit_code) == ("fail", 1), result.abort_reason


async def test_sigterm_mid_fault_aborts_rolls_back_and_reports(
    runtime: StandInRuntime, tmp_path: Path
) -> None:
    toxi = ToxiproxyAdapter(runtime.toxiproxy_api())
    timer = threading.Timer(1.2, os.kill, (os.getpid(), signal.SIGTERM))  # inside the fault
    timer.start()
    try:
        t0 = time.monotonic()
        result = await run_scenario(scenario(duration="30s"), runtime=runtime, reports_dir=tmp_path)
        took = time.monotonic() - t0
    finally:
        timer.cancel()
    assert result.exit_code == 2 and result.status == "aborted"
    assert result.abort_reason == "interrupted by SIGTERM"
    assert took < 10
    assert toxi.toxics("worker-2") == [] and not (tmp_path / MARKER).exists()
    assert [r.ok for r in result.rollback] == [True]
    history = read_journal(result.run_dir / "journal.jsonl")
    assert history.meta.status == "aborted" and history.requests
    assert json.loads((result.run_dir / "summary.json").read_text())["verdict"] == "aborted"
    assert "aborted" in (result.run_dir / "report.html").read_text().lower()
