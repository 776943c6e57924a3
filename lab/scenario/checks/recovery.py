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

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lab.history import NOT_SENT, Attempt, FaultRecord, History, Outcome, RequestRecord

SHARE_WINDOW_N = 50  # attempts per share window: 0.5 s at the lab's 100 req/s
CONFIDENCE_Z = 2.5758  # Wilson interval, 99 % two-sided (false contradictions: module doc)
DETECTION_SHARE = 0.05
HEALTHY_LOOKBACK_S = 5.0
RECOVERY_HOLD_S = 3.0  # how long share(P) must stay up to count as recovered
TIME_EPS_S = 1e-9  # instants closer than this are the same instant (float sums)

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
            if at + hold <= t_end + TIME_EPS_S:
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
    busy = _held_by_others(
        history,
        fault,
        lambda started, ended: started < t0 and (ended is None or ended > t0 - HEALTHY_LOOKBACK_S),
    )
    seen = _peers_used_before(history, t0)
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
    held = _held_by_others(
        history, fault, lambda started, ended: started <= t1 and (ended is None or ended > t1)
    )
    known = _peers_used_before(history, t0)
    if not known:
        known = {a.peer for r in history.requests for a in r.attempts}
    return max(1, len((known | set(fault.peers)) - (held - set(fault.peers))))


def _held_by_others(
    history: History, fault: FaultRecord, during: Callable[[float, float | None], bool]
) -> set[str]:
    """The peers of the run's other started faults whose (start, end) is ``during``."""
    held: set[str] = set()
    for f in history.faults:
        if f is not fault and f.started is not None and during(f.started, f.ended):
            held.update(f.peers)
    return held


def _peers_used_before(history: History, t0: float) -> set[str]:
    """The peers that took attempts in the ``HEALTHY_LOOKBACK_S`` before ``t0``."""
    return {
        a.peer
        for r in history.requests
        for a in r.attempts
        if t0 - HEALTHY_LOOKBACK_S <= a.start < t0
    }
