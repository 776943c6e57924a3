"""The checker's figures per client and per fault window, built from :mod:`.recovery`.

Why apart from the definitions: ``recovery`` holds the binding metric definitions as pure
functions of arrays and records; this module decides which requests each fault window
covers, when the steady state ends, and what one client's figures are (gossip lag and
lead included), which the steady-state check, the oracle control and summary.json read.
"""

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lab.history import FaultRecord, History, Outcome, RequestRecord
from lab.scenario.checks.recovery import (
    TIME_EPS_S,
    Measure,
    attempts_of,
    availability,
    detection,
    faulty_share,
    healthy_after_heal,
    healthy_peers,
    in_window,
    latencies_ms,
    quantile,
    recovery,
    settled_before,
)


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
    # why the noqa: Measure is a frozen dataclass (recovery.py), safe as a shared default
    gossip_lag: Measure = Measure(None, "not computed")  # noqa: RUF009
    gossip_lead: Measure = Measure(None, "not computed")  # noqa: RUF009


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
            hits_end = detected_at + TIME_EPS_S if detected_at is not None else w.t1
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
