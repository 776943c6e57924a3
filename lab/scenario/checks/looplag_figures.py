"""Each client's event-loop lag over a run, from its ``loop_lag`` and ``stall`` events.

The client reports its lag histogram (whole ms -> count) once a second and every stall
as it happens (:mod:`lab.looplag`); merging the periods gives the run's max and p99
exactly (a p99 of p99s would not be one). Why it is in the summary: a client that
stalled judged nothing during the stall, and its figures should be read with that in
mind; the baselines carry the same figures, so a stall seen by every client is the
host's, not the adaptive client's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from lab.history import ClientEvent
from lab.looplag import histogram_quantile


def loop_lag_figures(events: Iterable[ClientEvent], client: str) -> dict[str, Any]:
    """``{samples, max_ms, p99_ms, stalls, longest_stall_ms}``; nulls with a reason if none."""
    hist: Counter[int] = Counter()
    stalls: list[float] = []
    for e in events:
        if e.client != client:
            continue
        if e.kind == "loop_lag":
            for ms, n in dict(e.detail.get("hist", {})).items():
                hist[int(ms)] += int(n)
        elif e.kind == "stall":
            stalls.append(float(e.detail.get("length_ms", 0.0)))
    out: dict[str, Any] = {
        "samples": sum(hist.values()),
        "max_ms": float(max(hist)) if hist else None,
        "p99_ms": histogram_quantile(hist, 0.99),
        "stalls": len(stalls),
        "longest_stall_ms": max(stalls) if stalls else None,
    }
    if not hist:
        out["reason"] = "the client reported no loop lag (an older client, or a run under 1 s)"
    return out
