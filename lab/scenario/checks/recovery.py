"""The checker: recovery figures as pure functions of a run's history.

Definitions (``../shared/design.md``, "Recovery metrics"; binding). Let t0 be when a
fault is confirmed in place (``FaultRecord.started``), t1 when it is confirmed removed
(``FaultRecord.ended``; the run's end when it never was), P the faulty peer addresses
(``FaultRecord.peers``, as clients see them: ``toxiproxy:21002``), N the number of peers
that were healthy before the fault.

- share(P) is estimated over windows of ``SHARE_WINDOW_N`` (50) consecutive attempts,
  not over fixed 500 ms: a window sized by count holds the same evidence at any rate, so
  a 5 req/s client is judged on as many choices as a 100 req/s one. An attempt counts at
  its start. A window never reaches back across the instant the check is about (t0 for
  detection, t1 for recovery): attempts begun before the change cannot show a reaction
  to it. Each window's share is read at its midpoint (the mean of its first and last
  attempt's start), where a sliding mean is centred, and carries a Wilson score interval
  at ``CONFIDENCE_Z`` (99 %, two-sided).
- Binomial noise decides nothing: a window only *contradicts* a state when its interval
  lies wholly on the other side of the threshold. A uniform choice among three peers,
  50 attempts a window, has a point share below half its fair share in 0.5 % of windows
  (that noise gave the oracle recoveries of 0-2.8 s); its Wilson upper bound is below
  that line with probability 4e-8 per window (it needs <= 1 hit in 50).
- detection time: let a be the last window during [t0, t1) whose share is confidently
  >= 5 % (Wilson lower bound > 5 %), and j the first window after a whose point share is
  below 5 %. Detection is the start of the last attempt to P at or before j's midpoint,
  as seconds after t0 (0 when there is none after t0): the moment the policy stopped
  choosing P. ``None`` with a reason when the last window of the fault is still
  confidently >= 5 %, when no later window's share fell below 5 %, or with no traffic.
- availability: successful requests / requests issued in [t0, t1) (REJECTED and DROPPED
  count as failed: the user got no answer).
- latency: p50, p99, p99.9 (nearest rank: a value that was observed) of the requests
  issued in the window, REJECTED and DROPPED excluded (never sent: no latency to judge);
  "before" is the steady state after warmup and before the first fault; p99_ratio =
  p99 during / p99 before.
- recovery time: the first window j after the heal whose point share is >= half of 1/N
  and after which no window is confidently below it (Wilson upper bound < half of 1/N)
  within RECOVERY_HOLD_S (3 s, or half the time left before the next fault begins or the
  run ends; see recovery() for why not "until the end"); recovery is j's midpoint as
  seconds after t1, or, when j is the first window after the heal (the share was up
  from the start), the start of its first attempt to P: the moment the policy chose P
  again. For a step of the true share from 0 to fair at T the centred window
  crosses half of it at T: the estimate has no lag, and the hold no longer restarts on
  binomial dips.
- errors and retries: failed requests and retry attempts (hedges excluded).
- faulty share: attempts to P / all attempts started in [t0, t1); max_faulty_share is
  the largest over a client's faults (flapping and chaos runs judge it).
- gossip: one run cannot compare gossip on with gossip off, so two figures are reported.
  ``gossip_lag_s`` = this client's detection instant minus the earliest detection instant
  of any other client in the run (the adaptive issue's target: a quiet client stops
  choosing P within 1 s of the first detection). ``gossip_lead_s`` = the earliest
  detection instant of same-policy clients with gossip off minus this client's (positive:
  gossip helped), computable only when the run has such a client and this one has gossip
  on; otherwise ``None`` with the reason ("compare two runs").

A fault without peers (a grape fault) has availability and latency but no detection or
recovery. Every figure that cannot be computed is ``None`` with a reason, never a guess.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from lab.history import NOT_SENT, Attempt, FaultRecord, History, Outcome, RequestRecord

SHARE_WINDOW_N = 50  # attempts per share window: 0.5 s at the lab's 100 req/s
CONFIDENCE_Z = 2.5758  # Wilson interval, 99 % two-sided (false contradictions: module doc)
DETECTION_SHARE = 0.05
HEALTHY_LOOKBACK_S = 5.0
RECOVERY_HOLD_S = 3.0  # how long share(P) must stay up to count as recovered
_EPS = 1e-9

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Measure:
    """A figure, or ``None`` and why it could not be measured."""

    value: float | None
    reason: str | None = None


# -- primitives -------------------------------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank quantile of unsorted ``values``; ``None`` when empty."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q * len(s)) - 1))
    return s[k]


def attempts_of(requests: Iterable[RequestRecord]) -> list[Attempt]:
    """Every attempt of these requests, by start time."""
    return sorted((a for r in requests for a in r.attempts), key=lambda a: a.start)


def wilson(k: Floats, n: Floats, z: float = CONFIDENCE_Z) -> tuple[Floats, Floats]:
    """Wilson score interval (lower, upper) of the share k/n, elementwise."""
    p = k / n
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * np.sqrt(p * (1 - p) / n + z2n / (4 * n))
    return centre - half, centre + half


@dataclass(frozen=True, slots=True)
class ShareWindows:
    """share(P) over sliding windows of consecutive attempts (see the module docstring)."""

    times: Floats  # every attempt's start in the span, sorted
    hits: Bools  # whether it went to P
    mid: Floats  # each window's instant: midpoint of its first and last attempt
    share: Floats  # point share of each window
    low: Floats  # Wilson lower bound
    high: Floats  # Wilson upper bound


def share_windows(
    times: Floats, hits: Bools, lo: float, hi: float, size: int = SHARE_WINDOW_N
) -> ShareWindows | None:
    """Windows of ``size`` attempts started in [lo, hi); one shorter window when fewer.

    ``times`` must be sorted; ``None`` when no attempt started in the span.
    """
    a, b = np.searchsorted(times, [lo, hi], side="left")
    t, h = times[a:b], hits[a:b]
    if len(t) == 0:
        return None
    n = min(size, len(t))
    cum = np.concatenate(([0], np.cumsum(h, dtype=np.int64)))
    k = (cum[n:] - cum[:-n]).astype(np.float64)
    mid = (t[: len(t) - n + 1] + t[n - 1 :]) / 2
    lo_b, hi_b = wilson(k, np.full_like(k, n))
    return ShareWindows(t, h, mid, k / n, lo_b, hi_b)


def as_arrays(attempts: Sequence[Attempt], peers: Iterable[str]) -> tuple[Floats, Bools]:
    """Attempt starts (sorted) and whether each went to one of ``peers``."""
    pset = set(peers)
    ordered = sorted(attempts, key=lambda a: a.start)
    times = np.fromiter((a.start for a in ordered), dtype=np.float64, count=len(ordered))
    hits = np.fromiter((a.peer in pset for a in ordered), dtype=np.bool_, count=len(ordered))
    return times, hits


def detection(attempts: Sequence[Attempt], peers: Sequence[str], t0: float, t1: float) -> Measure:
    """Seconds after t0 at which the policy stopped choosing P (module docstring)."""
    if not peers:
        return Measure(None, "the fault names no peer")
    return detection_of(*as_arrays(attempts, peers), t0, t1, label=", ".join(peers))


def detection_of(times: Floats, hits: Bools, t0: float, t1: float, *, label: str = "P") -> Measure:
    """:func:`detection` on arrays: sorted attempt starts and whether each went to P."""
    w = share_windows(times, hits, t0, t1)
    if w is None:
        return Measure(None, "no attempts during the fault")
    confident = np.flatnonzero(w.low > DETECTION_SHARE)
    if len(confident) and confident[-1] == len(w.mid) - 1:
        return Measure(None, f"share of {label} was still >= 5 % when the fault ended")
    after = int(confident[-1]) + 1 if len(confident) else 0
    below = np.flatnonzero(w.share[after:] < DETECTION_SHARE)
    if not len(below):
        return Measure(None, f"share of {label} was still >= 5 % when the fault ended")
    j = after + int(below[0])
    upto = int(np.searchsorted(w.times, w.mid[j], side="right"))
    hit_idx = np.flatnonzero(w.hits[:upto])
    if not len(hit_idx):
        return Measure(0.0)
    return Measure(float(w.times[hit_idx[-1]]) - t0)


def recovery(
    attempts: Sequence[Attempt], peers: Sequence[str], t1: float, t_end: float, healthy: int
) -> Measure:
    """Seconds after t1 from which share(P) stays >= half of 1/N for ``RECOVERY_HOLD_S``.

    "Stays" is judged over a hold of 3 s (or half the time left before ``t_end`` when
    that is shorter, as between the steps of a flapping fault), not until the end of
    the run: a long tail multiplies the chances of a chance dip, and a figure must not
    grow with the length of the observation. Only a window confidently below the line
    breaks the hold (module docstring).
    """
    if not peers:
        return Measure(None, "the fault names no peer")
    return recovery_of(*as_arrays(attempts, peers), t1, t_end, healthy, label=", ".join(peers))


def recovery_of(
    times: Floats, hits: Bools, t1: float, t_end: float, healthy: int, *, label: str = "P"
) -> Measure:
    """:func:`recovery` on arrays: sorted attempt starts and whether each went to P."""
    if healthy < 1:
        return Measure(None, "no healthy peers known before the fault")
    if t_end <= t1:
        return Measure(None, "no time observed after the heal")
    need = 0.5 / healthy
    w = share_windows(times, hits, t1, t_end)
    if w is None:
        return Measure(None, "no attempts after the heal")
    hold = min(RECOVERY_HOLD_S, (t_end - t1) / 2)
    dips = np.flatnonzero(w.high < need)
    up = w.share >= need
    j = 0
    while True:
        ups = np.flatnonzero(up[j:])
        if not len(ups):
            break
        j += int(ups[0])
        at = float(w.mid[j]) if j else float(w.times[np.flatnonzero(w.hits)[0]])
        later = dips[dips > j]
        if not len(later) or w.mid[later[0]] > at + hold:
            if at + hold <= t_end + _EPS:
                return Measure(at - t1)
            break
        j = int(later[0]) + 1
    return Measure(
        None,
        f"share of {label} never stayed >= {need:.3f} "
        f"(half of 1/{healthy}) for {hold:.1f} s in the {t_end - t1:.1f} s after the heal",
    )


def in_window(requests: Iterable[RequestRecord], lo: float, hi: float) -> list[RequestRecord]:
    return [r for r in requests if lo <= r.issued < hi]


def settled_before(requests: Iterable[RequestRecord], lo: float, hi: float) -> list[RequestRecord]:
    """Requests issued in [lo, hi) that had also ended by ``hi``: the steady state.

    One still waiting at ``hi`` (the first fault's request) is the fault's victim: a
    request to the blackholed worker issued 50 ms before it, answered by its 1 s
    timeout, made random's p99 "before" 1002 ms in a run with a 1 s baseline.
    """
    return [r for r in requests if lo <= r.issued < hi and r.ended <= hi]


def availability(requests: Sequence[RequestRecord]) -> Measure:
    if not requests:
        return Measure(None, "no requests issued in the window")
    ok = sum(1 for r in requests if r.outcome is Outcome.OK)
    return Measure(ok / len(requests))


def latencies_ms(requests: Iterable[RequestRecord]) -> list[float]:
    return [r.latency * 1000.0 for r in requests if r.outcome not in NOT_SENT]


def faulty_share(
    attempts: Sequence[Attempt], peers: Sequence[str], t0: float, t1: float
) -> Measure:
    if not peers:
        return Measure(None, "the fault names no peer")
    during = [a for a in attempts if t0 <= a.start < t1]
    if not during:
        return Measure(None, "no attempts during the fault")
    pset = set(peers)
    return Measure(sum(1 for a in during if a.peer in pset) / len(during))


def healthy_peers(history: History, fault: FaultRecord, t0: float) -> int:
    """N: peers that took attempts in the 5 s before t0 and were not under another fault."""
    busy: set[str] = set()
    for f in history.faults:
        if f is fault or f.started is None:
            continue
        if f.started < t0 and (f.ended is None or f.ended > t0 - HEALTHY_LOOKBACK_S):
            busy.update(f.peers)
    seen = {
        a.peer
        for r in history.requests
        for a in r.attempts
        if t0 - HEALTHY_LOOKBACK_S <= a.start < t0
    }
    seen -= busy - set(fault.peers)
    if not seen:
        seen = {a.peer for r in history.requests for a in r.attempts}
    return len(seen | set(fault.peers))


def healthy_after_heal(history: History, fault: FaultRecord, t0: float, t1: float) -> int:
    """N at the heal: the peers known before the fault, less those another fault holds at t1.

    Fair share after a heal is among the peers up *then*: with every worker down and
    brought back one by one, the last one back shares with the two already up (1/3),
    though at the fault's start every other peer was down too (N = 1 there).
    """
    held: set[str] = set()
    for f in history.faults:
        if f is fault or f.started is None:
            continue
        if f.started <= t1 and (f.ended is None or f.ended > t1):
            held.update(f.peers)
    known = {
        a.peer
        for r in history.requests
        for a in r.attempts
        if t0 - HEALTHY_LOOKBACK_S <= a.start < t0
    }
    if not known:
        known = {a.peer for r in history.requests for a in r.attempts}
    return max(1, len((known | set(fault.peers)) - (held - set(fault.peers))))


# -- figures per client ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """A fault as the checks see it: confirmed [t0, t1) and where the observation ends."""

    fault: FaultRecord
    t0: float
    t1: float
    t_end: float  # next fault's start or the run's end: the recovery horizon
    healthy: int  # N at the fault's start (healthy_peers)
    healthy_after: int  # N at its heal, the fair share recovery is judged against


def run_end(history: History) -> float:
    m = history.meta
    if m.status != "aborted" and m.duration_s:
        return m.started_mono + float(m.duration_s)
    if m.ended_mono is not None:
        return m.ended_mono
    return max((r.ended for r in history.requests), default=m.started_mono)


def fault_windows(history: History) -> tuple[list[Window], list[tuple[FaultRecord, str]]]:
    """Windows of confirmed faults, and the faults skipped with the reason."""
    end = run_end(history)
    confirmed = sorted(
        (f for f in history.faults if f.started is not None), key=lambda f: f.started or 0.0
    )
    skipped = [(f, "never confirmed in place") for f in history.faults if f.started is None]
    out: list[Window] = []
    for f in confirmed:
        assert f.started is not None
        t0 = f.started
        t1 = f.ended if f.ended is not None else end
        later = [g.started for g in confirmed if g.started is not None and g.started > t1]
        t_end = min([end, *later])
        healthy = healthy_peers(history, f, t0)
        after = healthy_after_heal(history, f, t0, max(t0, t1))
        out.append(Window(f, t0, max(t0, t1), t_end, healthy, after))
    return out, skipped


def steady_until(history: History, windows: Sequence[Window]) -> float:
    """Where "before the first fault" ends: when the first fault was *requested*.

    A fault bites before it is confirmed: ``docker kill`` resets connections while its
    API call is still returning, 100-200 ms before the engine's read-back confirms it.
    Requests caught in that gap are the fault's, not the steady state's (on the Compose
    lab they failed the "before" availability of every policy without retries).
    """
    if not windows:
        return run_end(history)
    return min(min(w.t0, w.fault.requested) for w in windows)


@dataclass(frozen=True, slots=True)
class FaultFigures:
    fault_id: str
    kind: str
    target: str
    peers: tuple[str, ...]
    t0: float
    t1: float
    requests: int
    detection: Measure
    detected_at: float | None  # absolute instant (t0 + detection), for gossip figures
    availability: Measure
    p50_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    p99_ratio: float | None
    recovery: Measure
    faulty_share: Measure
    errors: int
    retries: int
    attempts_to_faulty_before_detection: int
    gossip_lag: Measure = Measure(None, "not computed")
    gossip_lead: Measure = Measure(None, "not computed")


@dataclass(frozen=True, slots=True)
class ClientFigures:
    client: str
    policy: str
    requests: int
    errors: int
    retries: int
    p50_ms_before: float | None
    p99_ms_before: float | None
    p999_ms_before: float | None
    p50_ms_during: float | None
    p99_ms_during: float | None
    p999_ms_during: float | None
    availability: Measure
    faults: tuple[FaultFigures, ...] = field(default_factory=tuple)
    latencies_before: int = 0  # how many answers the p*_before quantiles rest on
    latencies_during: int = 0

    def _worst(self, pick: str, *, largest: bool = True) -> Measure:
        """The worst of a per-fault measure over the faults that name a peer."""
        values: list[float] = []
        for f in self.faults:
            if not f.peers:
                continue
            m: Measure = getattr(f, pick)
            if m.value is None:
                return Measure(None, f"{f.fault_id}: {m.reason}")
            values.append(m.value)
        if not values:
            return Measure(None, "no fault in this run names a peer")
        return Measure(max(values) if largest else min(values))

    @property
    def detection(self) -> Measure:
        return self._worst("detection")

    @property
    def recovery(self) -> Measure:
        return self._worst("recovery")

    @property
    def max_faulty_share(self) -> Measure:
        return self._worst("faulty_share")

    @property
    def gossip_lag(self) -> Measure:
        return self._worst("gossip_lag")

    @property
    def gossip_lead(self) -> Measure:
        return self._worst("gossip_lead", largest=False)

    @property
    def p99_ratio(self) -> Measure:
        if self.p99_ms_during is None:
            return Measure(None, "no requests during the faults")
        if not self.p99_ms_before:
            return Measure(None, "no requests in the steady state before the first fault")
        return Measure(self.p99_ms_during / self.p99_ms_before)

    def metric(self, name: str) -> Measure:
        """A figure by its scenario name (``detection_s``, ``availability``, ...)."""
        simple: Mapping[str, float | int | None] = {
            "p50_ms": self.p50_ms_during,
            "p99_ms": self.p99_ms_during,
            "p999_ms": self.p999_ms_during,
            "errors": self.errors,
            "retries": self.retries,
        }
        if name in simple:
            v = simple[name]
            return Measure(None if v is None else float(v), None if v is not None else "no data")
        measures = {
            "detection_s": self.detection,
            "availability": self.availability,
            "p99_ratio": self.p99_ratio,
            "recovery_s": self.recovery,
            "max_faulty_share": self.max_faulty_share,
            "gossip_lag_s": self.gossip_lag,
            "gossip_lead_s": self.gossip_lead,
        }
        if name not in measures:
            raise KeyError(name)
        return measures[name]


def client_figures(
    history: History,
    *,
    warmup_s: float = 0.0,
    gossip: Mapping[str, bool] | None = None,
) -> dict[str, ClientFigures]:
    """Every client's figures, keyed by client name, in order of first appearance."""
    windows, _ = fault_windows(history)
    start = history.meta.started_mono
    first_t0 = steady_until(history, windows)
    by_client: dict[str, list[RequestRecord]] = {}
    policy_of: dict[str, str] = {}
    for r in history.requests:
        by_client.setdefault(r.client, []).append(r)
        policy_of.setdefault(r.client, r.policy)

    out: dict[str, ClientFigures] = {}
    for client, reqs in by_client.items():
        reqs.sort(key=lambda r: r.issued)
        attempts = attempts_of(reqs)
        before = settled_before(reqs, start + warmup_s, first_t0)
        lat_before = latencies_ms(before)
        during_all = [r for r in reqs if any(w.t0 <= r.issued < w.t1 for w in windows)]
        lat_during = latencies_ms(during_all)
        p99_before = quantile(lat_before, 0.99)
        faults = []
        for w in windows:
            f = w.fault
            reqs_w = in_window(reqs, w.t0, w.t1)
            lat_w = latencies_ms(reqs_w)
            det = detection(attempts, f.peers, w.t0, w.t1)
            detected_at = None if det.value is None else w.t0 + det.value
            p99_w = quantile(lat_w, 0.99)
            pset = set(f.peers)
            # the detection instant is the last attempt to P: it counts as "before"
            hits_end = detected_at + _EPS if detected_at is not None else w.t1
            faults.append(
                FaultFigures(
                    fault_id=f.id,
                    kind=f.kind,
                    target=f.target,
                    peers=f.peers,
                    t0=w.t0,
                    t1=w.t1,
                    requests=len(reqs_w),
                    detection=det,
                    detected_at=detected_at,
                    availability=availability(reqs_w),
                    p50_ms=quantile(lat_w, 0.50),
                    p99_ms=p99_w,
                    p999_ms=quantile(lat_w, 0.999),
                    p99_ratio=(p99_w / p99_before) if p99_w is not None and p99_before else None,
                    recovery=recovery(attempts, f.peers, w.t1, w.t_end, w.healthy_after),
                    faulty_share=faulty_share(attempts, f.peers, w.t0, w.t1),
                    errors=sum(1 for r in reqs_w if r.outcome is not Outcome.OK),
                    retries=sum(r.retries for r in reqs_w),
                    attempts_to_faulty_before_detection=sum(
                        1 for a in attempts if w.t0 <= a.start < hits_end and a.peer in pset
                    ),
                )
            )
        out[client] = ClientFigures(
            client=client,
            policy=policy_of[client],
            requests=len(reqs),
            errors=sum(1 for r in reqs if r.outcome is not Outcome.OK),
            retries=sum(r.retries for r in reqs),
            p50_ms_before=quantile(lat_before, 0.50),
            p99_ms_before=p99_before,
            p999_ms_before=quantile(lat_before, 0.999),
            p50_ms_during=quantile(lat_during, 0.50),
            p99_ms_during=quantile(lat_during, 0.99),
            p999_ms_during=quantile(lat_during, 0.999),
            latencies_before=len(lat_before),
            latencies_during=len(lat_during),
            availability=availability(during_all)
            if windows
            else Measure(None, "no fault was confirmed in place"),
            faults=tuple(faults),
        )
    return _with_gossip(out, gossip or {})


def _with_gossip(
    figures: dict[str, ClientFigures], gossip: Mapping[str, bool]
) -> dict[str, ClientFigures]:
    """Fill gossip_lag/gossip_lead per fault: they compare clients with each other."""
    out: dict[str, ClientFigures] = {}
    for name, cf in figures.items():
        new_faults = []
        for ff in cf.faults:
            others = [
                o_ff
                for o_name, o in figures.items()
                if o_name != name
                for o_ff in o.faults
                if o_ff.fault_id == ff.fault_id
            ]
            lag = _lag(ff, others)
            lead = _lead(name, cf.policy, ff, figures, gossip)
            new_faults.append(dataclasses.replace(ff, gossip_lag=lag, gossip_lead=lead))
        out[name] = dataclasses.replace(cf, faults=tuple(new_faults))
    return out


def _lag(ff: FaultFigures, others: Sequence[FaultFigures]) -> Measure:
    if not ff.peers:
        return Measure(None, "the fault names no peer")
    if ff.detected_at is None:
        return Measure(None, f"this client never detected it: {ff.detection.reason}")
    detected = [o.detected_at for o in others if o.detected_at is not None]
    if not detected:
        return Measure(None, "no other client detected it")
    return Measure(ff.detected_at - min(detected))


def _lead(
    name: str,
    policy: str,
    ff: FaultFigures,
    figures: Mapping[str, ClientFigures],
    gossip: Mapping[str, bool],
) -> Measure:
    if not ff.peers:
        return Measure(None, "the fault names no peer")
    if not gossip.get(name, True):
        return Measure(None, "gossip is off for this client")
    peers_off = [
        o_ff
        for o_name, o in figures.items()
        if o_name != name and o.policy == policy and gossip.get(o_name, True) is False
        for o_ff in o.faults
        if o_ff.fault_id == ff.fault_id
    ]
    if not peers_off:
        return Measure(None, "no same-policy client with gossip off in this run; compare two runs")
    if ff.detected_at is None:
        return Measure(None, f"this client never detected it: {ff.detection.reason}")
    off = [o.detected_at for o in peers_off if o.detected_at is not None]
    if not off:
        return Measure(None, "no gossip-off client detected it")
    return Measure(min(off) - ff.detected_at)
