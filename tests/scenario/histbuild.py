"""Hand-built histories with known answers for the checker's tests.

Times are exact binary fractions (steps of 1/8 s) from ``T0``, so every expected figure
in the tests is exact, not approximately right.
"""

from __future__ import annotations

from collections.abc import Callable

from lab.history import Attempt, FaultRecord, History, Outcome, RequestRecord, RunMeta

T0 = 1000.0
A, B, C = "toxiproxy:21001", "toxiproxy:21002", "toxiproxy:21003"
STEP = 0.125


def meta(duration: float = 40.0, status: str = "completed") -> RunMeta:
    return RunMeta(
        run_id="r1",
        scenario="t",
        seed=7,
        started_wall=1_700_000_000.0,
        started_mono=T0,
        duration_s=duration,
        status=status,
    )


def request(
    client: str,
    policy: str,
    seq: int,
    t: float,
    peer: str,
    *,
    latency: float = 0.01,
    outcome: Outcome = Outcome.OK,
    retry_peer: str | None = None,
) -> RequestRecord:
    """A request issued at ``T0 + t``; with ``retry_peer`` a failed first try, then a retry."""
    issued = T0 + t
    if retry_peer is None:
        attempts = (Attempt(peer, issued, issued + latency, outcome),)
    else:
        mid = issued + latency / 2
        attempts = (
            Attempt(peer, issued, mid, Outcome.TIMEOUT),
            Attempt(retry_peer, mid, issued + latency, outcome),
        )
    return RequestRecord(client, policy, seq, issued, issued + latency, outcome, attempts)


def stream(
    client: str,
    policy: str,
    start: float,
    end: float,
    choose: Callable[[int, float], str],
    *,
    step: float = STEP,
    latency: Callable[[float, str], float] | None = None,
    outcome: Callable[[float, str], Outcome] | None = None,
) -> list[RequestRecord]:
    """Requests every ``step`` seconds in [start, end); ``choose(i, t)`` picks the peer."""
    out = []
    n = round((end - start) / step)
    for i in range(n):
        t = start + i * step
        peer = choose(i, t)
        lat = latency(t, peer) if latency else 0.01
        oc = outcome(t, peer) if outcome else Outcome.OK
        out.append(request(client, policy, i, t, peer, latency=lat, outcome=oc))
    return out


def round_robin(peers: tuple[str, ...]) -> Callable[[int, float], str]:
    return lambda i, t: peers[i % len(peers)]


def fault(
    fid: str = "f1",
    peer: str = B,
    start: float | None = 10.0,
    end: float | None = 20.0,
    kind: str = "partition",
    target: str = "worker-2",
) -> FaultRecord:
    return FaultRecord(
        id=fid,
        kind=kind,
        target=target,
        peers=(peer,) if peer else (),
        requested=T0 + (start or 0.0) - 0.01,
        started=None if start is None else T0 + start,
        ended=None if end is None else T0 + end,
    )


def history(
    requests: list[RequestRecord],
    faults: list[FaultRecord],
    duration: float = 40.0,
    status: str = "completed",
) -> History:
    return History(
        meta=meta(duration, status),
        requests=sorted(requests, key=lambda r: r.issued),
        faults=faults,
    )
