"""``aggregate.html`` of a series (``lab run --repeat N``) and its terminal table.

The page shows, per metric, every run's value per policy as a point (a run that could
not judge is not drawn: the aggregate did not count it), the median as a bar and each
expectation's bound on that metric as a dashed line, so a reader sees the spread a
verdict on the median rests on. Below: the expectations judged on medians with the 95 %
interval, adaptive against each policy (Mann-Whitney U), and every run with a link to
its own report. Self-contained like a run's report: inline CSS and SVG, no script.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from lab.report.charts import OKABE_ITO
from lab.report.render import SUMMARY, ReportError, _write_atomic, environment
from lab.report.tables import fmt_metric, policy_sort_key
from lab.verdict import Verdict

PAGE = "aggregate.html"
WIDTH, HEIGHT, PAD_L, PAD_R, PAD_T, PAD_B = 560, 190, 70, 16, 12, 30
COLOURS = (
    OKABE_ITO["blue"], OKABE_ITO["orange"], OKABE_ITO["green"], OKABE_ITO["purple"],
    OKABE_ITO["sky_blue"], OKABE_ITO["vermillion"],
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float
    title: str


@dataclass(frozen=True, slots=True)
class Column:
    label: str
    colour: str
    x: float
    points: tuple[Point, ...]
    median_y: float | None
    median_text: str


@dataclass(frozen=True, slots=True)
class Line:
    y: float
    label: str


@dataclass(frozen=True, slots=True)
class StripChart:
    metric: str
    columns: tuple[Column, ...]
    bounds: tuple[Line, ...]
    ticks: tuple[Line, ...]
    width: int = WIDTH
    height: int = HEIGHT


def _finite(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def strip_chart(metric: str, figures: Mapping[str, Any], bounds: Sequence[float]) -> StripChart:
    """Every policy's per-run values of ``metric`` as points, with bounds as lines."""
    names = sorted((k for k in figures if metric in figures[k]), key=policy_sort_key)
    values = {k: [(j, float(v)) for j, v in enumerate(figures[k][metric]["values"], 1)
                  if _finite(v) is not None] for k in names}  # fmt: skip
    every = [v for vs in values.values() for _, v in vs] + list(bounds)
    lo, hi = (min(every), max(every)) if every else (0.0, 1.0)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5 if lo else -0.5, hi + 0.5 if hi else 0.5
    span = hi - lo
    lo, hi = lo - 0.08 * span, hi + 0.08 * span
    plot_h = HEIGHT - PAD_T - PAD_B

    def y_of(v: float) -> float:
        return PAD_T + plot_h * (1 - (v - lo) / (hi - lo))

    step = (WIDTH - PAD_L - PAD_R) / max(1, len(names))
    cols = []
    for i, k in enumerate(names):
        x = PAD_L + step * (i + 0.5)
        vs = values[k]
        pts = tuple(
            Point(x + (i_pt - (len(vs) - 1) / 2) * min(6.0, step / (len(vs) + 1)), y_of(v),
                  f"{k} run {run_no}: {fmt_metric(metric, v)}")
            for i_pt, (run_no, v) in enumerate(vs)
        )  # fmt: skip
        med = _finite(figures[k][metric].get("median"))
        cols.append(
            Column(k, COLOURS[i % len(COLOURS)], x, pts,
                   None if med is None else y_of(med), fmt_metric(metric, med))
        )  # fmt: skip
    ticks = tuple(Line(y_of(lo + (hi - lo) * f), fmt_metric(metric, lo + (hi - lo) * f))
                  for f in (0.1, 0.5, 0.9))  # fmt: skip
    lines = tuple(Line(y_of(b), f"bound {fmt_metric(metric, b)}") for b in bounds)
    return StripChart(metric, tuple(cols), lines, ticks)


def _bounds_by_metric(aggregate: Mapping[str, Any]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for e in aggregate.get("expectations") or []:
        b = _finite(e.get("bound_value"))
        if b is not None:
            out.setdefault(str(e.get("metric")), [])
            if b not in out[str(e.get("metric"))]:
                out[str(e.get("metric"))].append(b)
    return out


def _p(v: object) -> str:
    x = _finite(v)
    return "—" if x is None else f"{x:.3g}"


def render_aggregate(series: Path) -> Path:
    """Write ``series/aggregate.html`` from its ``summary.json``; returns the path."""
    try:
        aggregate = json.loads((series / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"{series / SUMMARY}: cannot read the aggregate: {exc}") from exc
    figures = aggregate.get("figures") or {}
    bounds = _bounds_by_metric(aggregate)
    metrics: list[str] = []
    for f in figures.values():
        for m in f:
            if m not in metrics:
                metrics.append(m)
    charts = [strip_chart(m, figures, bounds.get(m, [])) for m in metrics]
    html = (
        environment()
        .get_template("aggregate.html.j2")
        .render(a=aggregate, charts=charts, fmt=fmt_metric, p=_p)
    )
    out = series / PAGE
    _write_atomic(out, html)
    return out


VERDICT_COLOURS = {Verdict.PASS: "green", Verdict.FAIL: "red"}
"""The terminal's colour of a verdict; the others are yellow."""


def aggregate_table(aggregate: Mapping[str, Any]) -> Table:
    """The series in the terminal: each expectation's median, interval, runs failed."""
    verdict = Verdict.parse(aggregate.get("verdict"))
    counts = aggregate.get("counts") or {}
    table = Table(
        title=f"{aggregate.get('run_id')}: {verdict.upper()} "
        f"({counts.get('counted', 0)} of {counts.get('runs', 0)} runs counted)"
    )
    for col in ("client", "metric", "median", "95 % CI", "runs failed", "bound", "verdict"):
        table.add_column(col)
    rows = list(aggregate.get("steady_state") or []) + list(aggregate.get("expectations") or [])
    for e in rows:
        metric = str(e.get("metric", ""))
        if e.get("phase"):
            metric = f"steady {e['phase']}: {metric}"
        ci = e.get("ci95")
        ci_text = "—" if not ci else f"{fmt_metric(metric, ci[0])}-{fmt_metric(metric, ci[1])}"
        v = Verdict.parse(e.get("verdict"))
        table.add_row(
            str(e.get("client", "")),
            metric,
            fmt_metric(str(e.get("metric", "")), e.get("measured")),
            ci_text,
            f"{e.get('runs_failed', 0)} of {len(e.get('values') or [])}",
            str(e.get("bound", "")),
            Text(v.upper() if v is not Verdict.PASS else v.value, VERDICT_COLOURS.get(v, "yellow")),
        )
    return table
