"""A run's timelines: its history binned per client group, the series the report draws.

Why binning: a 60 s run with three policies at 100 req/s is ~18,000 requests and
~20,000 attempts. Drawing each one would make a multi-megabyte page that tells less
than a rate per bin. Bins are 250 ms for a minute-long run (about 240 per axis), wider
for longer runs, so the page size depends on the run's length, not its request count.
Pure, like the rest of the view model (:mod:`lab.report.model`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from lab.history import (
    NOT_SENT,
    ClientEvent,
    FaultRecord,
    History,
    Outcome,
    RequestRecord,
    group_clients,
)
from lab.report.tables import policy_sort_key

BIN_WIDTHS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
MAX_BINS = 240
# share(P, t) is defined over a sliding 500 ms window (design.md, recovery metrics); the
# chart uses the same window so what it shows is what the checker measured.
SHARE_WINDOW_S = 0.5
BREAKER_SEVERITY = {"": 0, "closed": 1, "half_open": 2, "open": 3}


@dataclass(frozen=True, slots=True)
class Bins:
    """Equal-width time bins from the run start (seconds relative to ``started_mono``)."""

    width: float
    count: int

    @property
    def starts(self) -> list[float]:
        return [i * self.width for i in range(self.count)]

    def index(self, t_rel: float) -> int | None:
        if t_rel < 0:
            return None
        i = int(t_rel / self.width)
        return i if i < self.count else None


@dataclass(frozen=True, slots=True)
class PeerSeries:
    """One worker as one client group saw it, per bin."""

    peer: str
    label: str  # "worker-2 (toxiproxy:21002)" when a fault named it, else the address
    short: str  # "worker-2": what fits beside a strip
    share: tuple[float, ...]  # fraction of attempts sent to this peer, last 500 ms
    breaker: tuple[str, ...]  # worst breaker state held in the bin ("" = unknown)
    hints: tuple[int, ...]  # gossip hints about this peer received in the bin


@dataclass(frozen=True, slots=True)
class Timeline:
    """Everything the timeline chart of one policy (or client) draws."""

    key: str
    label: str
    policy: str
    clients: tuple[str, ...]
    issued_rate: tuple[float | None, ...]  # req/s
    failed_rate: tuple[float | None, ...]  # req/s that did not end ok
    availability: tuple[float | None, ...]  # 0..1, None for an empty bin
    p50_ms: tuple[float | None, ...]
    p99_ms: tuple[float | None, ...]
    peers: tuple[PeerSeries, ...]
    breaker_events: int
    hint_events: int
    requests: int
    figures: str = ""  # the summary's headline for this policy, shown by the chart title
    panic: tuple[bool, ...] = ()  # per bin: the adaptive client was in panic mode in it


# -- history -> series -----------------------------------------------------------------


def choose_bins(axis_end: float) -> Bins:
    """The narrowest bin width that keeps a series at or under ``MAX_BINS`` points."""
    for w in BIN_WIDTHS:
        if axis_end / w <= MAX_BINS:
            return Bins(w, max(1, math.ceil(axis_end / w - 1e-9)))
    w = BIN_WIDTHS[-1]
    return Bins(w, max(1, math.ceil(axis_end / w)))


def recorded_end(history: History) -> float:
    """Seconds from the run start to the last thing the journal holds."""
    m = history.meta
    t0 = m.started_mono
    last = t0
    if m.ended_mono is not None:
        last = max(last, m.ended_mono)
    for r in history.requests:
        last = max(last, r.ended)
    for f in history.faults:
        for t in (f.requested, f.started, f.ended):
            if t is not None:
                last = max(last, t)
    for e in history.events:
        last = max(last, e.t)
    return last - t0


def axis_end_of(history: History) -> float:
    """Completed runs show the planned duration; aborted ones up to where they stopped.

    A completed run's requests still in flight at the end finish after it, and the
    runner may write its end time after draining: neither belongs on the axis (a 60 s
    run would lose its 250 ms bins to a 60.9 s axis). An aborted run's axis ends at the
    runner's recorded end when it wrote one, else at the last record; bins after the
    stop would read as a fall in the request rate that never happened.
    """
    m = history.meta
    if m.status != "aborted" and m.duration_s and m.duration_s > 0:
        return float(m.duration_s)
    if m.ended_mono is not None and m.ended_mono > m.started_mono:
        return m.ended_mono - m.started_mono
    return max(recorded_end(history), 1.0)


def declared_clients(summary: Mapping[str, object]) -> list[tuple[str, str]]:
    """The (client, policy) pairs summary.json keyed its figures by: the report keys the
    same way (:func:`lab.history.group_clients`), so each timeline finds its figures."""
    policies = summary.get("policies")
    if not isinstance(policies, Mapping):
        return []
    return [
        (str(v["client"]), str(v["policy"]))
        for v in policies.values()
        if isinstance(v, Mapping) and "client" in v and "policy" in v
    ]


def peer_labels(faults: Iterable[FaultRecord]) -> dict[str, str]:
    """Peer address -> "worker-2 (toxiproxy:21002)" when a fault named its target."""
    out: dict[str, str] = {}
    for f in faults:
        for p in f.peers:
            out.setdefault(p, f"{f.target} ({p})")
    return out


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    k = max(0, min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[k]


def trailing_share(sent: Sequence[int], total: Sequence[int], window: int) -> tuple[float, ...]:
    """Fraction of attempts that went to a peer over the last ``window`` bins."""
    out: list[float] = []
    s_sum = t_sum = 0
    for i, (s, t) in enumerate(zip(sent, total, strict=True)):
        s_sum += s
        t_sum += t
        if i >= window:
            s_sum -= sent[i - window]
            t_sum -= total[i - window]
        out.append(s_sum / t_sum if t_sum else 0.0)
    return tuple(out)


def _breaker_bins(events: Sequence[ClientEvent], bins: Bins, t0: float) -> tuple[str, ...]:
    """Worst state held in each bin, so a short open spell is never averaged away.

    The state before the first transition is that transition's ``from`` (else closed).
    """
    ordered = sorted(events, key=lambda e: e.t)
    state = _norm_state(str(ordered[0].detail.get("from", "closed"))) if ordered else "closed"
    out: list[str] = []
    k = 0
    for i in range(bins.count):
        hi = (i + 1) * bins.width
        worst = state
        while k < len(ordered) and ordered[k].t - t0 < hi:
            state = _norm_state(str(ordered[k].detail.get("to", state)))
            if BREAKER_SEVERITY[state] > BREAKER_SEVERITY[worst]:
                worst = state
            k += 1
        out.append(worst)
    return tuple(out)


def _norm_state(s: str) -> str:
    s = s.lower().replace("-", "_").replace(" ", "_")
    return s if s in BREAKER_SEVERITY else "closed"


def build_timelines(
    history: History,
    bins: Bins,
    axis_end: float | None = None,
    declared: Sequence[tuple[str, str]] = (),
) -> tuple[Timeline, ...]:
    t0 = history.meta.started_mono
    if axis_end is None:
        axis_end = bins.width * bins.count
    grouping, key_of = group_clients(history, declared)
    labels = peer_labels(history.faults)
    n = bins.count

    issued: dict[str, list[int]] = defaultdict(lambda: [0] * n)
    failed: dict[str, list[int]] = defaultdict(lambda: [0] * n)
    lat: dict[str, list[list[float]]] = defaultdict(lambda: [[] for _ in range(n)])
    att: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0] * n))
    att_total: dict[str, list[int]] = defaultdict(lambda: [0] * n)
    policy_of: dict[str, str] = {}
    clients_of: dict[str, set[str]] = defaultdict(set)
    count: dict[str, int] = defaultdict(int)

    r: RequestRecord
    for r in history.requests:
        g = key_of.get(r.client, r.policy)
        policy_of.setdefault(g, r.policy)
        clients_of[g].add(r.client)
        count[g] += 1
        i = bins.index(r.issued - t0)
        if i is not None:
            issued[g][i] += 1
            if r.outcome is not Outcome.OK:
                failed[g][i] += 1
            if r.outcome not in NOT_SENT:
                lat[g][i].append((r.ended - r.issued) * 1000.0)
        for a in r.attempts:
            j = bins.index(a.start - t0)
            if j is not None:
                att[g][a.peer][j] += 1
                att_total[g][j] += 1

    breaker_ev: dict[str, dict[str, list[ClientEvent]]] = defaultdict(lambda: defaultdict(list))
    hints: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0] * n))
    hint_count: dict[str, int] = defaultdict(int)
    panic_ev: dict[str, list[ClientEvent]] = defaultdict(list)
    for e in history.events:
        g = key_of.get(e.client, e.policy)
        policy_of.setdefault(g, e.policy)
        clients_of[g].add(e.client)
        if e.kind == "panic":  # start/end as an "open"/"closed" breaker of all peers
            to = "open" if e.detail.get("state") == "start" else "closed"
            frm = "closed" if to == "open" else "open"
            panic_ev[g].append(replace(e, detail={"from": frm, "to": to}))
            continue
        peer = e.peer if e.peer is not None else e.detail.get("peer")
        if not isinstance(peer, str):
            continue
        if e.kind == "breaker":
            breaker_ev[g][peer].append(e)
        elif e.kind == "gossip_hint":
            hint_count[g] += 1
            i = bins.index(e.t - t0)
            if i is not None:
                hints[g][peer][i] += 1

    all_peers: set[str] = set(labels)
    for per in att.values():
        all_peers.update(per)
    for per_b in breaker_ev.values():
        all_peers.update(per_b)
    for per_h in hints.values():
        all_peers.update(per_h)
    peers_sorted = sorted(all_peers)  # by address: worker order stays put across runs

    share_bins = max(1, round(SHARE_WINDOW_S / bins.width))
    out = []
    for g in sorted(policy_of, key=lambda k: policy_sort_key(k, policy_of[k])):
        # the last bin may stick out past the axis end: divide by the part inside it
        spans = [min(bins.width, axis_end - start) for start in bins.starts]
        iss = issued[g]
        fl = failed[g]
        p50: list[float | None] = []
        p99: list[float | None] = []
        for vals in lat[g]:
            if vals:
                vals.sort()
                p50.append(_percentile(vals, 0.50))
                p99.append(_percentile(vals, 0.99))
            else:
                p50.append(None)
                p99.append(None)
        peers = []
        for p in peers_sorted:
            tot = att_total[g]
            sent = att[g].get(p, [0] * n) if g in att else [0] * n
            share = trailing_share(sent, tot, share_bins)
            evs = breaker_ev[g].get(p, []) if g in breaker_ev else []
            has_breakers = g in breaker_ev
            brk = _breaker_bins(evs, bins, t0) if has_breakers else ("",) * n
            h = tuple(hints[g][p]) if g in hints and p in hints[g] else (0,) * n
            short = labels[p].split(" (")[0] if p in labels else p
            peers.append(PeerSeries(p, labels.get(p, p), short, share, brk, h))
        policy = policy_of[g]
        cl = tuple(sorted(clients_of[g]))
        label = g if grouping == "policy" else f"{g} ({policy})"
        out.append(
            Timeline(
                key=g,
                label=label,
                policy=policy,
                clients=cl,
                issued_rate=tuple(
                    c / w if w > 0 else None for c, w in zip(iss, spans, strict=True)
                ),
                failed_rate=tuple(c / w if w > 0 else None for c, w in zip(fl, spans, strict=True)),
                availability=tuple(
                    (c - f) / c if c else None for c, f in zip(iss, fl, strict=True)
                ),
                p50_ms=tuple(p50),
                p99_ms=tuple(p99),
                peers=tuple(peers),
                breaker_events=sum(len(v) for v in breaker_ev.get(g, {}).values()),
                hint_events=hint_count.get(g, 0),
                requests=count.get(g, 0),
                panic=tuple(b == "open" for b in _breaker_bins(panic_ev[g], bins, t0))
                if panic_ev.get(g)
                else (),
            )
        )
    return tuple(out)
