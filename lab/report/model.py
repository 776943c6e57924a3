"""The report's view model: what a person reads, computed from a History and a summary.

Pure: no file access, no clock. ``render.py`` reads the run directory and hands the
parsed :class:`~lab.history.History`, the ``summary.json`` dict and the scenario text
here; the result is frozen data with every figure already formatted, so templates only
place strings (style.md: templates that compute are a smell).

The binned series live in :mod:`lab.report.timelines`; the summary's tables and every
formatting rule in :mod:`lab.report.tables`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lab.history import (
    History,
)
from lab.report.tables import (
    DASH,
    Table,
    dict_of,
    expectations_table,
    fmt_clock,
    fmt_rel,
    fmt_seconds,
    fmt_wall,
    latency_table,
    noise_table,
    per_fault_tables,
    policy_figures,
    policy_sort_key,
    recovery_table,
    run_verdict,
    steady_state_table,
)
from lab.report.timelines import (
    Bins,
    Timeline,
    axis_end_of,
    build_timelines,
    choose_bins,
    declared_clients,
    recorded_end,
)
from lab.verdict import Verdict

# -- view model ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FaultView:
    fault_id: str
    kind: str
    target: str
    peers: str
    label: str  # the short direct label drawn on the window, e.g. "f1 partition worker-2"
    requested_s: float
    start_s: float | None  # confirmed start, relative; None = never confirmed
    end_s: float | None  # confirmed end, relative; None = not healed within the record
    requested: str
    started: str
    ended: str
    started_wall: str
    ended_wall: str
    duration: str
    params: str
    error: str


@dataclass(frozen=True, slots=True)
class Header:
    run_id: str
    scenario: str
    seed: str
    status: str  # completed | aborted | running
    verdict: Verdict
    abort_reason: str
    started_wall: str
    duration: str
    versions: tuple[tuple[str, str], ...]
    command: str
    verdict_reason: str = ""  # why unknown: the control's missed answers
    aggregate_href: str = ""  # the series' page, for a run of `lab run --repeat`
    repeat_label: str = ""  # "run 2 of 5"


@dataclass(frozen=True, slots=True)
class ReportModel:
    header: Header
    notices: tuple[str, ...]
    axis_end: float
    bins: Bins
    faults: tuple[FaultView, ...]
    timelines: tuple[Timeline, ...]
    recovery: Table
    latency: Table
    per_fault: tuple[Table, ...]
    expectations: Table
    steady_state: Table
    scenario_text: str
    noise: Table | None = None


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One line of ``reports/index.html``."""

    run_id: str
    href: str
    started: float  # wall clock, for newest-first ordering
    date: str
    scenario: str
    verdict: str
    status: str
    headline: tuple[str, ...]  # "adaptive: detection 0.42 s, availability 99.95 %, ..."


def _policy_names(summary: Mapping[str, object], timelines: Sequence[Timeline]) -> list[str]:
    policies = dict_of(summary.get("policies"))
    names = list(policies)
    for tl in timelines:
        # the summary may key a policy by its client's name: that is the same row
        if tl.key not in policies and not any(c in policies for c in tl.clients):
            names.append(tl.key)
    by_key = {tl.key: tl.policy for tl in timelines}
    return sorted(names, key=lambda n: policy_sort_key(n, by_key.get(n)))


def build_faults(history: History) -> tuple[FaultView, ...]:
    m = history.meta
    t0 = m.started_mono

    def rel(t: float | None) -> float | None:
        return None if t is None else t - t0

    def wall(t: float | None) -> float | None:
        return None if t is None else m.started_wall + (t - t0)

    out = []
    for f in sorted(history.faults, key=lambda f: (f.started or f.requested, f.id)):
        s, e = rel(f.started), rel(f.ended)
        duration = DASH
        if s is not None and e is not None:
            duration = fmt_seconds(e - s)
        elif s is not None:
            duration = "not healed"
        params = ", ".join(f"{k}={v}" for k, v in sorted(f.params.items()))
        out.append(
            FaultView(
                fault_id=f.id,
                kind=f.kind,
                target=f.target,
                peers=", ".join(f.peers) or DASH,
                label=f"{f.id}: {f.kind} {f.target}",
                requested_s=f.requested - t0,
                start_s=s,
                end_s=e,
                requested=fmt_rel(f.requested - t0),
                started=fmt_rel(s) if s is not None else "not confirmed",
                ended=fmt_rel(e) if e is not None else ("not healed" if s is not None else DASH),
                started_wall=fmt_clock(wall(f.started)),
                ended_wall=fmt_clock(wall(f.ended)),
                duration=duration,
                params=params or DASH,
                error=f.error or "",
            )
        )
    return tuple(out)


def build_header(history: History, summary: Mapping[str, object], axis_end: float) -> Header:
    m = history.meta
    status, verdict = run_verdict(m.status, summary)
    repeat = dict_of(summary.get("repeat"))
    reason = str(summary.get("abort_reason") or m.abort_reason or "")
    # the runner's own end time when it wrote one; requests still in flight may end later
    rec = m.ended_mono - m.started_mono if m.ended_mono is not None else recorded_end(history)
    if status == "aborted":
        duration = f"{fmt_seconds(rec)} recorded of {fmt_seconds(float(m.duration_s))} planned"
    else:
        duration = fmt_seconds(max(rec, float(m.duration_s)) if rec > 0 else m.duration_s)
    return Header(
        run_id=str(summary.get("run_id") or m.run_id),
        scenario=str(summary.get("scenario") or m.scenario),
        seed=str(summary.get("seed", m.seed)),
        status=status,
        verdict=verdict,
        abort_reason=reason,
        started_wall=fmt_wall(m.started_wall) if m.started_wall else DASH,
        duration=duration,
        versions=tuple(sorted((str(k), str(v)) for k, v in m.recorded_versions().items())),
        command=m.command,
        verdict_reason=str(summary.get("verdict_reason") or "")
        if verdict is Verdict.UNKNOWN
        else "",
        aggregate_href=str(repeat.get("aggregate") or ""),
        repeat_label=f"run {repeat.get('index')} of {repeat.get('of')}" if repeat else "",
    )


def build_report(
    history: History,
    summary: Mapping[str, object] | None,
    scenario_text: str | None,
    notices: Sequence[str] = (),
) -> ReportModel:
    """The whole page's data. ``summary`` may be None (the checks never ran)."""
    s: Mapping[str, object] = summary or {}
    axis_end = axis_end_of(history)
    bins = choose_bins(axis_end)
    timelines = tuple(
        dataclasses.replace(
            tl,
            figures=next(
                (f for f in (policy_figures(s, k) for k in (tl.key, *tl.clients)) if f), ""
            ),
        )
        for tl in build_timelines(history, bins, axis_end, declared_clients(s))
    )
    faults = build_faults(history)
    names = _policy_names(s, timelines)
    extra = list(notices)
    if summary is None:
        extra.append("No summary.json: the checks did not run, so the tables below are empty.")
    if not history.requests:
        extra.append("The journal holds no requests.")
    return ReportModel(
        header=build_header(history, s, axis_end),
        notices=tuple(extra),
        axis_end=axis_end,
        bins=bins,
        faults=faults,
        timelines=timelines,
        recovery=recovery_table(s, names),
        latency=latency_table(s, names),
        per_fault=per_fault_tables(s, names, {f.fault_id: f.label for f in faults}),
        expectations=expectations_table(s),
        steady_state=steady_state_table(s),
        scenario_text=scenario_text or "",
        noise=noise_table(s),
    )
