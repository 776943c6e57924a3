"""The hands-on commands on the local runtime (issue 15): output shape, exit codes, and a
broken policy's file:line. Real grapes, workers, Toxiproxy and clients, started by each
command and stopped after it."""

from __future__ import annotations

import re

import pytest
from learn_support import ROOT, lab

pytestmark = [pytest.mark.toxiproxy, pytest.mark.slow]

ADDR = r"127\.0\.0\.\d+:\d+"
FAULTY = ROOT / "tests" / "balancer" / "policy_files" / "faulty.py"


def test_lookup_asks_every_grape_or_one() -> None:
    r = lab("lookup", "rpc_test", "--runtime", "local")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    heads = [ln for ln in lines if ln.startswith("grape-")]
    assert [h.split()[0] for h in heads] == ["grape-1", "grape-2", "grape-3"]
    for h in heads:
        assert re.fullmatch(rf"grape-\d http://{ADDR}: 3 peers for rpc_test", h), h
    peers = [ln for ln in lines if ln.startswith("  ")]
    assert len(peers) == 9 and all(re.fullmatch(rf"  {ADDR}", p) for p in peers)
    one = lab("lookup", "rpc_test", "--grape", "2", "--runtime", "local")
    assert one.returncode == 0 and one.stdout.startswith("grape-2 ")
    assert "grape-1" not in one.stdout


def test_call_prints_every_attempt_through_a_policy_from_a_file() -> None:
    r = lab("call", "--policy", "policies/template.py:TemplatePolicy", "--repeat", "3",
            "--runtime", "local")  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert re.fullmatch(rf"lookup rpc_test: 3 peers: {ADDR}, {ADDR}, {ADDR}", lines[0])
    attempts = [ln for ln in lines if ln.startswith("  attempt")]
    assert len(attempts) == 3
    for a in attempts:
        assert re.fullmatch(
            rf"  attempt \d\.1: peer {ADDR} at \+[\d.]+ ms took [\d.]+ ms -> ok", a
        ), a
    done = [ln for ln in lines if ln.startswith("request ")]
    assert len(done) == 3 and all(" ok after 1 attempt(s), " in d for d in done)
    assert '"echo":{"hello":"grenache"}' in done[0]


def test_call_with_a_raising_policy_exits_2_with_its_line() -> None:
    r = lab("call", "--policy", f"{FAULTY}:Raises", "--runtime", "local")
    assert r.returncode == 2
    assert "faulty.py:16: choose() raised: IndexError" in r.stderr
    assert "Traceback (most recent call last)" in r.stderr
    assert "peers[len(peers)]" in r.stderr


def test_peers_shows_one_row_per_peer_and_watch_ends_when_told() -> None:
    r = lab("peers", "client-adaptive", "--runtime", "local")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "client-adaptive (adaptive): peers" in out
    header = next(ln for ln in out.splitlines() if "latency ms" in ln)
    for col in ("peer", "in flight", "breaker", "weight", "hints", "ok", "failed"):
        assert col in header
    rows = [ln for ln in out.splitlines() if re.search(ADDR, ln)]
    assert len(rows) == 3 and all("closed" in row for row in rows)
    w = lab("peers", "client-random", "--watch", "--for", "1.5", "--interval", "0.5",
            "--runtime", "local")  # fmt: skip
    assert w.returncode == 0, w.stderr
    assert "client-random (random): peers" in w.stdout
