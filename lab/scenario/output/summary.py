"""``reports/<run-id>/summary.json``: the checker's figures and verdicts, as data.

``build_summary(history, scenario, aborted=None)`` is pure; ``write_summary`` puts it on
disk atomically. The report (``lab/report/tables.py``) and CI read this file, so its keys
are a contract (docs/contracts.md, "Journal and summary"). Times are seconds; latencies
milliseconds; shares and availability fractions in [0, 1]; a figure that could not be
measured is ``null`` with a ``<name>_reason`` beside it. Definitions: ``checks.py``.

Schema (version 1)::

    {
      "schema": 1,
      "run_id": str, "scenario": str (its name), "scenario_file": str, "seed": int,
      "status": "completed" | "aborted", "abort_reason": str | null,
      "verdict": "pass" | "fail" | "unknown" | "aborted",   # lab.verdict
      "verdict_reason": str | null,      # why unknown (the control's missed answers)
                                          # or aborted; null for pass and fail
      "duration_s": float, "versions": {name: version},
      "grouping": "policy" | "client",   # how "policies" is keyed: by policy when each
                                          # policy has one client, else by client name
      "policies": {
        <key>: {
          "client": str, "policy": str, "requests": int, "errors": int, "retries": int,
          "detection_s": float|null, "availability": float|null, "p99_ratio": float|null,
          "recovery_s": float|null, "max_faulty_share": float|null,
          "gossip_lag_s": float|null, "gossip_lead_s": float|null,
          "<figure>_reason": str,             # for each null figure above
          "loop_lag": {"samples", "max_ms", "p99_ms", "stalls", "longest_stall_ms",
                       "reason" (when nothing was reported)},   # looplag_figures.py
          "p50_ms_before", "p99_ms_before", "p999_ms_before",
          "p50_ms_during", "p99_ms_during", "p999_ms_during": float|null,
          "faults": [{
            "fault_id", "kind", "target", "peers": [str], "t0_s", "t1_s" (from the start),
            "requests", "detection_s", "availability", "p50_ms", "p99_ms", "p999_ms",
            "p99_ratio", "recovery_s", "faulty_share", "errors", "retries",
            "attempts_to_faulty_before_detection", "gossip_lag_s", "gossip_lead_s",
            "<figure>_reason"
          }]
        }
      },
      "faults": [{"id", "kind", "target", "peers", "started_s", "ended_s", "error",
                  "skipped": str|null}],
      "steady_state": [{"policy", "client", "phase": "before"|"after", "metric",
                        "measured", "bound": "<= 50", "verdict": "pass"|"fail",
                        "detail"}],
      "expectations": [{"policy", "key", "client", "metric", "op",
                        "bound": "<= 1" | "<= 1.5x random" (as written),
                        "bound_value" (a relative bound resolved; null: the ref had no
                        figure), "measured", "verdict": "pass"|"fail", "detail"}],
      "control": {"client": [str], "moved": bool, "causes": [str],
                  "checks": [{"client", "fault_id", "metric", "bound", "measured",
                              "verdict": "pass"|"fail", "detail"}]},
      "counts": {"expectations", "expectations_failed", "steady_state",
                 "steady_state_failed", "control_failed"},
      "repeat": {"index": int, "of": int, "aggregate": "../aggregate.html"}  # only
                                          # in a run of `lab run --repeat N`
      "noise": {                          # the lab's own floor (lab/scenario/checks/noise.py)
        "load": {"cpus", "samples", "mean_1m", "max_1m"},
        "cgroups": {service: {"cpu_s", "nr_periods", "nr_throttled", "throttled_ms",
                              "quota_cpus"}},   # during the load phase; Compose only
        "cgroups_reason": str,            # when there are none (local processes)
        "throttled_services": [str],
        "oracle": {"client", "before"|"after": {"requests", "p50_ms", "p99_ms",
                                                 "p999_ms"}},
        "slow_clusters": {"slow_ms", "gap_s", "count", "clusters": [{"start", "end",
                          "requests", "clients", "worst_ms"}], "intervals_s",
                          "median_interval_s", "interval_cv", "largest_gap_s"}
      }
    }

Other sections may be added beside these (a reader ignores keys it does not know); an
expectation's verdict is judged from the figures of this one run only, which is what lets
``lab.scenario.run.aggregate`` take medians of ``measured`` and ``bound_value`` over runs.

An aborted run keeps its figures (what was seen) but lists no verdicts: a partial
history would judge expectations on the wrong windows. A run whose control (the oracle)
missed a known answer keeps every verdict listed but its own verdict is ``unknown``
(``lab.scenario.checks.control``).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from lab import __version__
from lab.history import History, group_clients
from lab.scenario.checks.control import check_control, control_moved, judges_own_p99_ratio
from lab.scenario.checks.figures import ClientFigures, FaultFigures, client_figures, fault_windows
from lab.scenario.checks.looplag_figures import loop_lag_figures
from lab.scenario.checks.noise import noise_figures
from lab.scenario.checks.recovery import Measure
from lab.scenario.checks.steady import Judgement, check_steady_state, evaluate_expectations
from lab.scenario.plan.spec import Scenario
from lab.verdict import Verdict, combine

SCHEMA = 1


def _num(v: float | int | None) -> float | int | None:
    if v is None:
        return None
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _put(d: dict[str, Any], name: str, m: Measure) -> None:
    d[name] = _num(m.value)
    if m.value is None:
        d[f"{name}_reason"] = m.reason or "not measured"


def _fault_dict(ff: FaultFigures, t0: float) -> dict[str, Any]:
    d: dict[str, Any] = {
        "fault_id": ff.fault_id,
        "kind": ff.kind,
        "target": ff.target,
        "peers": list(ff.peers),
        "t0_s": ff.t0 - t0,
        "t1_s": ff.t1 - t0,
        "requests": ff.requests,
    }
    _put(d, "detection_s", ff.detection)
    _put(d, "availability", ff.availability)
    d["p50_ms"] = _num(ff.p50_ms)
    d["p99_ms"] = _num(ff.p99_ms)
    d["p999_ms"] = _num(ff.p999_ms)
    d["p99_ratio"] = _num(ff.p99_ratio)
    _put(d, "recovery_s", ff.recovery)
    _put(d, "faulty_share", ff.faulty_share)
    d["errors"] = ff.errors
    d["retries"] = ff.retries
    d["attempts_to_faulty_before_detection"] = ff.attempts_to_faulty_before_detection
    _put(d, "gossip_lag_s", ff.gossip_lag)
    _put(d, "gossip_lead_s", ff.gossip_lead)
    return d


def _client_dict(cf: ClientFigures, t0: float) -> dict[str, Any]:
    d: dict[str, Any] = {
        "client": cf.client,
        "policy": cf.policy,
        "requests": cf.requests,
        "errors": cf.errors,
        "retries": cf.retries,
    }
    _put(d, "detection_s", cf.detection)
    _put(d, "availability", cf.availability)
    _put(d, "p99_ratio", cf.p99_ratio)
    _put(d, "recovery_s", cf.recovery)
    _put(d, "max_faulty_share", cf.max_faulty_share)
    _put(d, "gossip_lag_s", cf.gossip_lag)
    _put(d, "gossip_lead_s", cf.gossip_lead)
    for name in ("p50_ms", "p99_ms", "p999_ms"):
        d[f"{name}_before"] = _num(getattr(cf, f"{name}_before"))
        d[f"{name}_during"] = _num(getattr(cf, f"{name}_during"))
    d["faults"] = [_fault_dict(ff, t0) for ff in cf.faults]
    return d


def _verdict_dict(v: Judgement, key_of: dict[str, str]) -> dict[str, Any]:
    return {
        "policy": key_of.get(v.client, v.client),
        "client": v.client,
        "metric": v.metric,
        "op": v.op,
        "bound": v.bound_text,
        "bound_value": _num(v.bound),  # null when a relative bound had no ref figure
        "measured": _num(v.measured),
        "verdict": v.verdict.value,
        "detail": v.reason,
    }


def build_summary(
    history: History, scenario: Scenario, *, aborted: str | None = None
) -> dict[str, Any]:
    """The summary dict (see the module docstring); ``aborted`` is the abort reason."""
    meta = history.meta
    is_aborted = aborted is not None or meta.status == "aborted"
    reason = aborted if aborted is not None else meta.abort_reason
    t0 = meta.started_mono
    gossip = {c.name: c.gossip for c in scenario.clients}
    figures = client_figures(history, warmup_s=scenario.warmup_s, gossip=gossip)
    grouping, key_of = group_clients(history, ((c.name, c.policy) for c in scenario.clients))

    windows, skipped = fault_windows(history)
    policies: dict[str, Any] = {}
    for client, cf in figures.items():
        policies[key_of.get(client, client)] = _client_dict(cf, t0)
        policies[key_of.get(client, client)]["loop_lag"] = loop_lag_figures(history.events, client)

    faults = [
        {
            "id": w.fault.id,
            "kind": w.fault.kind,
            "target": w.fault.target,
            "peers": list(w.fault.peers),
            "started_s": w.t0 - t0,
            "ended_s": None if w.fault.ended is None else w.fault.ended - t0,
            "error": w.fault.error,
            "skipped": None,
        }
        for w in windows
    ] + [
        {
            "id": f.id,
            "kind": f.kind,
            "target": f.target,
            "peers": list(f.peers),
            "started_s": None,
            "ended_s": None,
            "error": f.error,
            "skipped": why,
        }
        for f, why in skipped
    ]

    steady: list[dict[str, Any]] = []
    expectations: list[dict[str, Any]] = []
    judged: list[Verdict] = []
    causes: list[str] = []
    control: list[dict[str, object]] = []
    if not is_aborted:
        steady_j = check_steady_state(history, scenario)
        for v in steady_j:
            d = _verdict_dict(v, key_of)
            d["phase"] = v.phase
            steady.append(d)
        for v in evaluate_expectations(scenario, figures):
            d = _verdict_dict(v, key_of)
            d["key"] = v.key
            expectations.append(d)
        judged = [v.verdict for v in steady_j] + [Verdict.parse(e["verdict"]) for e in expectations]
        checks = check_control(
            figures, windows, steady_j, judges_p99_ratio=judges_own_p99_ratio(scenario.expect)
        )
        control = [c.to_json() for c in checks]
        causes = control_moved(checks)

    failed_exp = sum(1 for e in expectations if e["verdict"] == Verdict.FAIL)
    failed_steady = sum(1 for e in steady if e["verdict"] == Verdict.FAIL)
    verdict = Verdict.ABORTED if is_aborted else combine(judged, control_moved=bool(causes))
    verdict_reason = (
        reason if is_aborted else "; ".join(causes) if verdict is Verdict.UNKNOWN else None
    )
    oracles = [cf.client for cf in figures.values() if cf.policy == "oracle"]
    versions = {
        "grenache-lab": __version__,
        **{str(k): str(v) for k, v in meta.recorded_versions().items()},
    }
    return {
        "schema": SCHEMA,
        "run_id": meta.run_id,
        "scenario": scenario.name,
        "scenario_file": scenario.path,
        "seed": meta.seed,
        "status": "aborted" if is_aborted else "completed",
        "abort_reason": reason if is_aborted else None,
        "verdict": verdict.value,
        "verdict_reason": verdict_reason,
        "duration_s": float(meta.duration_s),
        "versions": versions,
        "grouping": grouping,
        "policies": policies,
        "faults": faults,
        "steady_state": steady,
        "expectations": expectations,
        "control": {
            "client": oracles,
            "moved": bool(causes),
            "causes": causes,
            "checks": control,
        },
        "counts": {
            "expectations": len(expectations),
            "expectations_failed": failed_exp,
            "steady_state": len(steady),
            "steady_state_failed": failed_steady,
            "control_failed": len(causes),
        },
        "noise": noise_figures(history, scenario),
    }


def exit_code(summary: dict[str, Any]) -> int:
    """``lab run``'s exit code: 0 pass, 1 fail, 2 aborted, 3 unknown (``Verdict.exit_code``)."""
    return Verdict.parse(summary.get("verdict")).exit_code


def write_summary(run_dir: Path, summary: dict[str, Any]) -> Path:
    """Write ``summary.json`` atomically (a reader never sees half a file)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "summary.json"
    tmp = run_dir / f".summary.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
