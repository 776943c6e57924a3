"""The recovery-figure helpers measure what design.md defines."""

from __future__ import annotations

import pytest
from loadgen_figures import Sends, availability, detection_time, p99, recovery_time

from lab.history import Attempt, Outcome, RequestRecord


def _records(plan: list[tuple[float, str]]) -> list[RequestRecord]:
    return [
        RequestRecord("c", "adaptive", i, t, t + 0.001, Outcome.OK,
                      (Attempt(peer, t, t + 0.001, Outcome.OK),))
        for i, (t, peer) in enumerate(plan)
    ]  # fmt: skip


Plan = list[tuple[float, str]]


def _round_robin(t0: float, t1: float, peers: list[str], rate: float = 100) -> Plan:
    n = int((t1 - t0) * rate)
    return [(t0 + i / rate, peers[i % len(peers)]) for i in range(n)]


def test_detection_is_when_the_peer_stops_being_chosen() -> None:
    plan = _round_robin(0, 10, ["a", "b", "p"]) + _round_robin(10, 10.2, ["a", "b", "p"])
    plan += _round_robin(10.2, 15, ["a", "b"]) + _round_robin(15, 25, ["a", "b", "p"])
    sends = Sends.of(_records(plan), "p")
    # The last sends to p fall at 10.2 s; 5 % tolerance lets the window start a bit earlier.
    assert 0.1 <= (detection_time(sends, 10, 15) or -1) <= 0.2
    assert recovery_time(sends, 15, 25, 3) == pytest.approx(0.0, abs=0.02)


def test_a_peer_that_is_never_left_has_no_detection() -> None:
    sends = Sends.of(_records(_round_robin(0, 10, ["a", "p"])), "p")
    assert detection_time(sends, 2, 8) is None


def test_availability_and_p99() -> None:
    recs = _records(_round_robin(0, 1, ["a"]))
    assert availability(recs) == 1.0
    assert p99(recs) == pytest.approx(0.001)
