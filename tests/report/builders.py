"""Synthetic but realistic run directories for the report tests.

A run here looks like a real one: three client policies load three workers at 100 req/s
for 60 s; a partitioned worker makes the random client's requests time out after 1 s,
the adaptive client pays a short attempt timeout and a retry until its breaker opens
(then probes half-open and ramps back after the heal), the oracle never touches the
faulty worker. Gossip hints about the faulty worker arrive every 200 ms during a fault.
The summary's figures are computed from that history, so the tests can look for values
the report must show. Everything is seeded: the same call builds the same bytes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.history import (
    Attempt,
    ClientEvent,
    FaultRecord,
    History,
    JournalWriter,
    Outcome,
    RequestRecord,
    RunMeta,
)

TIMEOUT = "ERR_TIMEOUT"
T0 = 5000.0  # monotonic seconds at the run start
WALL0 = 1_795_000_000.0  # 2026-11-18 UTC, the wall clock at the run start
WORKERS = {f"worker-{i}": f"toxiproxy:2100{i}" for i in (1, 2, 3)}


@dataclass(frozen=True)
class FaultPlan:
    id: str
    kind: str
    target: str
    start: float  # relative seconds, confirmed start
    end: float | None  # relative seconds, confirmed end; None = never healed


@dataclass
class RunPlan:
    run_id: str = "20261118-120000-partition"
    scenario: str = "partition-one-worker"
    seed: int = 7
    duration: float = 60.0
    rate: float = 100.0
    policies: Sequence[str] = ("adaptive", "random", "oracle")
    faults: Sequence[FaultPlan] = (FaultPlan("f1", "partition", "worker-2", 15.0, 35.0),)
    wall0: float = WALL0
    abort_at: float | None = None  # relative seconds the run stopped at, if aborted
    abort_reason: str = ""
    detection_s: dict[str, float] = field(default_factory=lambda: {"adaptive": 0.6, "oracle": 0.0})


def _healthy_ms(rng: random.Random) -> float:
    return rng.lognormvariate(math.log(3.0), 0.35)


def _active(plan: RunPlan, peer_target: str, t: float) -> FaultPlan | None:
    for f in plan.faults:
        end = f.end if f.end is not None else math.inf
        if f.target == peer_target and f.start <= t < end:
            return f
    return None


def build_history(plan: RunPlan) -> History:
    rng = random.Random(plan.seed)
    stop = plan.abort_at if plan.abort_at is not None else plan.duration
    meta = RunMeta(
        run_id=plan.run_id,
        scenario=plan.scenario,
        seed=plan.seed,
        started_wall=plan.wall0,
        started_mono=T0,
        duration_s=plan.duration,
        status="aborted" if plan.abort_at is not None else "completed",
        abort_reason=plan.abort_reason or None,
        ended_mono=T0 + stop,
        versions={"lab": "0.1.0", "toxiproxy": "2.9.0", "python": "3.11.2"},
        command=f"lab run scenarios/partition.yaml --seed {plan.seed} --run-id {plan.run_id}",
    )
    history = History(meta=meta)
    targets = list(WORKERS)
    peer = WORKERS
    for f in plan.faults:
        history.faults.append(
            FaultRecord(
                id=f.id,
                kind=f.kind,
                target=f.target,
                peers=(peer[f.target],),
                requested=T0 + f.start - 0.05,
                started=T0 + f.start,
                ended=None if f.end is None or f.end > stop else T0 + f.end,
                params={"toxic": "timeout", "direction": "both"},
            )
        )
    for policy in plan.policies:
        client = f"client-{policy}"
        detect = plan.detection_s.get(policy)
        n = int(stop * plan.rate)
        for seq in range(n):
            t = seq / plan.rate + rng.uniform(0, 0.5 / plan.rate)
            choices = list(targets)
            if policy == "oracle":
                choices = [w for w in targets if _active(plan, w, t) is None]
            elif policy == "adaptive" and detect is not None:
                # after detection the faulty worker gets nothing; after the heal it ramps
                # back up over 3 s (slow start)
                ok_choices = []
                for w in targets:
                    active = _active(plan, w, t)
                    if active is not None and t >= active.start + detect:
                        continue
                    healed = [
                        g.end
                        for g in plan.faults
                        if g.target == w and g.end is not None and g.end <= t < g.end + 3.0
                    ]
                    if healed and rng.random() > (t - healed[0]) / 3.0:
                        continue
                    ok_choices.append(w)
                choices = ok_choices or choices
            target = rng.choice(choices)
            issued = T0 + t
            attempts: list[Attempt] = []
            if _active(plan, target, t) is None:
                ms = _healthy_ms(rng)
                attempts.append(Attempt(peer[target], issued, issued + ms / 1000, Outcome.OK))
                outcome, ended, error = Outcome.OK, issued + ms / 1000, None
            elif policy == "adaptive":
                # a short per-attempt timeout, then a retry to a healthy worker
                a_end = issued + 0.2
                attempts.append(Attempt(peer[target], issued, a_end, Outcome.TIMEOUT, TIMEOUT))
                other = rng.choice([w for w in targets if _active(plan, w, t) is None])
                ms = _healthy_ms(rng)
                attempts.append(Attempt(peer[other], a_end, a_end + ms / 1000, Outcome.OK))
                outcome, ended, error = Outcome.OK, a_end + ms / 1000, None
            else:
                attempts.append(
                    Attempt(peer[target], issued, issued + 1.0, Outcome.TIMEOUT, TIMEOUT)
                )
                outcome, ended, error = Outcome.TIMEOUT, issued + 1.0, "ERR_TIMEOUT"
            history.requests.append(
                RequestRecord(client, policy, seq, issued, ended, outcome, tuple(attempts), error)
            )
        if policy == "adaptive" and detect is not None:
            for f in plan.faults:
                p = peer[f.target]
                opened = f.start + detect

                def ev(
                    t: float,
                    frm: str,
                    to: str,
                    why: str,
                    p: str = p,
                    client: str = client,
                    policy: str = policy,
                ) -> None:
                    if t < stop:
                        history.events.append(
                            ClientEvent(
                                client,
                                policy,
                                T0 + t,
                                "breaker",
                                p,
                                {"from": frm, "to": to, "reason": why},
                            )
                        )

                ev(opened, "closed", "open", "5 consecutive failures")
                end = f.end if f.end is not None else stop
                t = opened + 2.0
                while t < end:
                    ev(t, "open", "half_open", "open time elapsed")
                    ev(t + 0.2, "half_open", "open", "probe failed")
                    t += 4.0
                ev(end + 0.4, "open", "half_open", "open time elapsed")
                ev(end + 0.6, "half_open", "closed", "3 probes succeeded")
                h = f.start + 0.25
                while h < min(end, stop):
                    history.events.append(
                        ClientEvent(
                            client,
                            policy,
                            T0 + h,
                            "gossip_hint",
                            p,
                            {"from": "client-random", "suspect": True},
                        )
                    )
                    h += 0.2
    history.requests.sort(key=lambda r: r.issued)
    history.events.sort(key=lambda e: e.t)
    return history


RECOVERY_S = {"adaptive": 2.4, "random": 0.0, "oracle": 0.3}


def _availability(reqs: list[RequestRecord]) -> float | None:
    return sum(r.outcome is Outcome.OK for r in reqs) / len(reqs) if reqs else None


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[max(0, math.ceil(q * len(values)) - 1)]


def build_summary(history: History, plan: RunPlan, verdict: str = "pass") -> dict[str, Any]:
    """A summary.json with figures computed from the history, in the checker's shape."""
    policies: dict[str, Any] = {}
    windows = [(f.start, f.end if f.end is not None else plan.duration) for f in plan.faults]
    for policy in plan.policies:
        reqs = [r for r in history.requests if r.policy == policy]

        def during(r: RequestRecord) -> bool:
            t = r.issued - T0
            return any(a <= t < b for a, b in windows)

        dur = [r for r in reqs if during(r)]
        before = [r for r in reqs if r.issued - T0 < windows[0][0]] if windows else reqs
        avail = _availability(dur)
        p99_d = _pct([r.latency * 1000 for r in dur], 0.99)
        p99_b = _pct([r.latency * 1000 for r in before], 0.99)
        detect = plan.detection_s.get(policy)
        faults = []
        for f in plan.faults:
            fr = [r for r in reqs if f.start <= r.issued - T0 < (f.end or plan.duration)]
            faults.append(
                {
                    "fault_id": f.id,
                    "kind": f.kind,
                    "target": f.target,
                    "detection_s": detect,
                    "availability": _availability(fr),
                    "p50_ms": _pct([r.latency * 1000 for r in fr], 0.5),
                    "p99_ms": _pct([r.latency * 1000 for r in fr], 0.99),
                    "p999_ms": _pct([r.latency * 1000 for r in fr], 0.999),
                    "p99_ratio": None,
                    "recovery_s": RECOVERY_S.get(policy),
                    "errors": sum(r.outcome is not Outcome.OK for r in fr),
                    "retries": sum(r.retries for r in fr),
                }
            )
        policies[policy] = {
            "detection_s": detect,
            "availability": avail,
            "p99_ratio": (p99_d / p99_b) if p99_d and p99_b else None,
            "recovery_s": RECOVERY_S.get(policy),
            "p50_ms_during": _pct([r.latency * 1000 for r in dur], 0.5),
            "p99_ms_during": p99_d,
            "p999_ms_during": _pct([r.latency * 1000 for r in dur], 0.999),
            "p50_ms_before": _pct([r.latency * 1000 for r in before], 0.5),
            "p99_ms_before": p99_b,
            "p999_ms_before": _pct([r.latency * 1000 for r in before], 0.999),
            "requests": len(reqs),
            "errors": sum(r.outcome is not Outcome.OK for r in reqs),
            "retries": sum(r.retries for r in reqs),
            "gossip_lead_s": 0.35 if policy == "adaptive" else None,
            "faults": faults,
        }
    bound = "<= 1" if verdict != "fail" else "<= 0.2"
    det = plan.detection_s.get("adaptive")
    expectations = [
        {
            "policy": "adaptive",
            "metric": "detection_s",
            "bound": bound,
            "measured": det,
            "verdict": "fail" if verdict == "fail" else "pass",
            "detail": "share of worker-2 stayed below 5 % after this time",
        },
        {
            "policy": "adaptive",
            "metric": "availability",
            "bound": ">= 0.999",
            "measured": policies.get("adaptive", {}).get("availability"),
            "verdict": "pass",
            "detail": "",
        },
    ]
    aborted = plan.abort_at is not None
    return {
        "run_id": plan.run_id,
        "scenario": plan.scenario,
        "seed": plan.seed,
        "status": "aborted" if aborted else "completed",
        "abort_reason": plan.abort_reason or None,
        "verdict": "aborted" if aborted else verdict,
        "policies": policies,
        "steady_state": [
            {
                "policy": "adaptive",
                "phase": "before",
                "metric": "availability",
                "measured": 1.0,
                "bound": ">= 0.999",
                "verdict": "pass",
            },
            {
                "policy": "adaptive",
                "phase": "after",
                "metric": "p99_ms",
                "measured": 7.5,
                "bound": "<= 50",
                "verdict": "pass",
            },
        ],
        "expectations": [] if aborted else expectations,
    }


SCENARIO_YAML = """\
name: partition-one-worker
seed: 7
topology: {grapes: 3, workers: 3}
clients: [adaptive, random, oracle]
load: {rate: 100, service: rpc_test, payload_bytes: 64}
duration: 60s
steady_state: {availability: ">= 0.999", p99_ms: "<= 50"}   # before and after
timeline:
  - {at: 15s, fault: partition, target: worker-2}     # toxiproxy timeout toxic, both ways
  - {at: 35s, heal: worker-2}
expect:
  adaptive: {detection_s: "<= 1", availability: ">= 0.999", recovery_s: "<= 5"}
"""


def write_run(
    reports_dir: Path,
    plan: RunPlan,
    verdict: str = "pass",
    *,
    summary: bool = True,
    scenario: str | None = SCENARIO_YAML,
) -> Path:
    """Write journal.jsonl (+ summary.json, scenario.yaml) under reports_dir/<run_id>."""
    history = build_history(plan)
    run_dir = reports_dir / plan.run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "journal.jsonl").unlink(missing_ok=True)  # JournalWriter appends
    w = JournalWriter(run_dir / "journal.jsonl")
    try:
        start_meta = RunMeta(
            **{
                **_meta_dict(history.meta),
                "status": "running",
                "ended_mono": None,
                "abort_reason": None,
            }
        )
        w.write(start_meta)
        for f in history.faults:
            w.write(f)
        w.write_many(history.requests)
        w.write_many(history.events)
        w.write(history.meta)
    finally:
        w.close()
    if summary:
        (run_dir / "summary.json").write_text(
            json.dumps(build_summary(history, plan, verdict), indent=2), encoding="utf-8"
        )
    if scenario is not None:
        (run_dir / "scenario.yaml").write_text(scenario, encoding="utf-8")
    return run_dir


def _meta_dict(m: RunMeta) -> dict[str, Any]:
    return {f.name: getattr(m, f.name) for f in dataclasses.fields(m)}
