"""The hands-on commands on the session's swarm stack (tests/swarm/conftest.py): the
grapes and clients are found where Swarm placed them, and `lab call` runs in a client task
on its node (the workers are reachable only over the overlay)."""

from __future__ import annotations

import re

import pytest
from swarm_support import lab

from lab.stack.engine import Paths

pytestmark = [pytest.mark.swarm, pytest.mark.docker, pytest.mark.timeout(180)]

NODE = r"http://192\.168\.231\.\d+:\d+"
"""A local node's address and a port its task publishes there (lab/swarm/netns.py)."""


def test_lookup_call_and_peers_reach_the_stack_across_the_nodes(swarm_lab: Paths) -> None:
    r = lab("lookup", "rpc_test", "--runtime", "swarm", timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    heads = [ln for ln in r.stdout.splitlines() if ln.startswith("grape-")]
    assert [h.split()[0] for h in heads] == ["grape-1", "grape-2", "grape-3"]
    for h in heads:
        assert re.fullmatch(rf"grape-\d {NODE}: 3 peers for rpc_test", h), h
    assert len({h.split()[1] for h in heads}) == 3  # each grape answered on its own node
    peers = sorted(ln.strip() for ln in r.stdout.splitlines() if ln.startswith("  "))
    assert peers == sorted(3 * ["toxiproxy:21001", "toxiproxy:21002", "toxiproxy:21003"])

    c = lab("call", "--repeat", "3", "--runtime", "swarm", timeout=60)
    assert c.returncode == 0, c.stdout + c.stderr
    assert c.stdout.startswith("lookup rpc_test: 3 peers: toxiproxy:21001, toxiproxy:21002")
    done = [ln for ln in c.stdout.splitlines() if ln.startswith("request ")]
    assert len(done) == 3 and all(" ok after 1 attempt(s), " in d for d in done), c.stdout

    p = lab("peers", "client-random", "--runtime", "swarm", timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "client-random (random): peers" in p.stdout
    assert sum("toxiproxy:2100" in ln for ln in p.stdout.splitlines()) == 3

    missing = lab("peers", "client-nobody", "--runtime", "swarm", timeout=60)
    assert missing.returncode != 0
    assert "no client 'client-nobody' in the swarm stack; clients: client-adaptive" in (
        missing.stdout + missing.stderr
    )
