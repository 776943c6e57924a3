"""Figures as a reader sees them: formatting, and the summary's tables.

The summary (``summary.json``, written by ``lab/scenario/output/summary.py``) is JSON from
disk, so it is read here defensively: a missing key, a wrong type or a NaN becomes a
"—" cell, never an exception, because the runner renders a report after every run, also
one aborted before the checks ran. Formatting lives in one module so the tables, the
chart titles and the index print a figure the same way.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lab.balancer.registry import POLICY_NAMES
from lab.verdict import Verdict

# Policies in the order a reader compares them: the candidate, the baseline, the limit.
POLICY_ORDER: tuple[str, ...] = POLICY_NAMES
DASH = "\u2014"  # an em dash: "not measured"


# -- formatting (one place, so the tables, the charts and the index agree) ---------------


def _num(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    if math.isnan(v) or math.isinf(v):
        return None
    return float(v)


def fmt_seconds(v: object) -> str:
    x = _num(v)
    if x is None:
        return DASH
    if abs(x) < 10:
        return f"{x:.2f} s"
    return f"{x:.1f} s"


def fmt_ms(v: object) -> str:
    x = _num(v)
    if x is None:
        return DASH
    if x < 10:
        return f"{x:.2f} ms"
    if x < 100:
        return f"{x:.1f} ms"
    return f"{x:.0f} ms"


def fmt_fraction(v: object) -> str:
    """Availability as a percentage with the digits that matter near 100 %."""
    x = _num(v)
    if x is None:
        return DASH
    if x >= 1.0:
        return "100 %"
    pct = x * 100
    if pct >= 99:
        return f"{math.floor(pct * 1000) / 1000:.3f} %"
    return f"{pct:.1f} %"


def fmt_ratio(v: object) -> str:
    x = _num(v)
    if x is None:
        return DASH
    times = "\u00d7"  # the multiplication sign, spelled out for linters
    return f"{times}{x:.2f}" if x < 10 else f"{times}{x:.0f}"


def fmt_count(v: object) -> str:
    x = _num(v)
    if x is None:
        return DASH
    return f"{int(x):,}".replace(",", " ")


def fmt_metric(metric: str, v: object) -> str:
    """Format a value by its metric name's unit suffix (``_s``, ``_ms``, ratio, share)."""
    if isinstance(v, str):
        return v
    if metric.endswith("_ms"):
        return fmt_ms(v)
    if metric.endswith("_s"):
        return fmt_seconds(v)
    if "ratio" in metric:
        return fmt_ratio(v)
    if metric in {"availability", "share"} or metric.endswith("_rate"):
        return fmt_fraction(v)
    if metric in {"requests", "errors", "retries"}:
        return fmt_count(v)
    x = _num(v)
    if x is None:
        return DASH if v is None else str(v)
    return f"{x:g}"


def fmt_wall(t: float | None) -> str:
    if t is None:
        return DASH
    return dt.datetime.fromtimestamp(t, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def fmt_clock(t: float | None) -> str:
    """Time of day (UTC) to the millisecond: the fault log's wall-clock columns."""
    if t is None:
        return DASH
    return dt.datetime.fromtimestamp(t, tz=dt.UTC).strftime("%H:%M:%S.%f")[:-3]


def fmt_rel(t: float | None) -> str:
    return DASH if t is None else f"{t:.3f} s"


def policy_sort_key(name: str, policy: str | None = None) -> tuple[int, str]:
    p = policy or name
    for i, known in enumerate(POLICY_ORDER):
        if p == known or name == known:
            return (i, name)
    return (len(POLICY_ORDER), name)


@dataclass(frozen=True, slots=True)
class Cell:
    text: str
    css: str = ""


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    cells: tuple[Cell, ...]
    css: str = ""


@dataclass(frozen=True, slots=True)
class Table:
    caption: str
    headers: tuple[str, ...]
    rows: tuple[Row, ...]
    first: str = "policy"  # header of the row-name column
    empty: str = "nothing recorded"  # what an empty table says
    header_css: tuple[str, ...] = ()  # per header: "text" left-aligns a words column

    @property
    def head(self) -> tuple[Cell, ...]:
        """The header cells with their alignment class."""
        css = self.header_css or ("",) * len(self.headers)
        return tuple(Cell(h, c) for h, c in zip(self.headers, css, strict=True))

    @property
    def columns(self) -> int:
        """Header cells plus the row-name column (the colspan of an "empty" row)."""
        return len(self.headers) + 1


# -- summary access (a JSON dict from disk: read defensively) -------------------------------


def dict_of(v: object) -> dict[str, object]:
    return {str(k): x for k, x in v.items()} if isinstance(v, Mapping) else {}


def _list(v: object) -> list[object]:
    return list(v) if isinstance(v, list | tuple) else []


def _lookup(d: Mapping[str, object], *names: str) -> object:
    """First present key among ``names``; dotted names walk nested dicts."""
    for name in names:
        cur: object = d
        for part in name.split("."):
            cur = dict_of(cur).get(part) if isinstance(cur, Mapping) else None
            if cur is None:
                break
        if cur is not None:
            return cur
    return None


HEADLINE_COLUMNS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("detection", "detection_s", ("detection_s",)),
    ("availability", "availability", ("availability",)),
    ("p99 ratio", "p99_ratio", ("p99_ratio",)),
    ("recovery", "recovery_s", ("recovery_s",)),
    ("gossip lead", "gossip_lead_s", ("gossip_lead_s",)),
    ("requests", "requests", ("requests",)),
    ("errors", "errors", ("errors",)),
    ("retries", "retries", ("retries",)),
)
LATENCY_COLUMNS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("p50 before", "p50_ms", ("p50_ms_before", "before.p50_ms")),
    ("p50 during", "p50_ms", ("p50_ms_during", "during.p50_ms", "p50_ms")),
    ("p99 before", "p99_ms", ("p99_ms_before", "before.p99_ms")),
    ("p99 during", "p99_ms", ("p99_ms_during", "during.p99_ms", "p99_ms")),
    ("p99.9 before", "p999_ms", ("p999_ms_before", "before.p999_ms")),
    ("p99.9 during", "p999_ms", ("p999_ms_during", "during.p999_ms", "p999_ms")),
    ("p99 ratio", "p99_ratio", ("p99_ratio",)),
)
FAULT_COLUMNS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("detection", "detection_s", ("detection_s",)),
    ("availability", "availability", ("availability",)),
    ("p50", "p50_ms", ("p50_ms",)),
    ("p99", "p99_ms", ("p99_ms",)),
    ("p99.9", "p999_ms", ("p999_ms",)),
    ("p99 ratio", "p99_ratio", ("p99_ratio",)),
    ("recovery", "recovery_s", ("recovery_s",)),
    ("errors", "errors", ("errors",)),
    ("retries", "retries", ("retries",)),
)
INDEX_FIGURES: tuple[tuple[str, str], ...] = (
    ("detection", "detection_s"),
    ("availability", "availability"),
    ("recovery", "recovery_s"),
)


def _verdict_css(v: object) -> Verdict:
    return Verdict.parse(str(v).lower() if v is not None else None)


def run_verdict(history_status: str, summary: Mapping[str, object]) -> tuple[str, Verdict]:
    """(status, verdict): the summary's word when it has one, else what the journal says."""
    status = str(summary.get("status") or history_status or "unknown")
    verdict = summary.get("verdict")
    if verdict is None:
        return status, Verdict.ABORTED if status == "aborted" else Verdict.UNKNOWN
    return status, _verdict_css(verdict)


def _policy_table(
    summary: Mapping[str, object],
    names: Sequence[str],
    columns: Sequence[tuple[str, str, tuple[str, ...]]],
    caption: str,
) -> Table:
    policies = dict_of(summary.get("policies"))
    rows = []
    for name in names:
        d = dict_of(policies.get(name))
        cells = tuple(Cell(fmt_metric(metric, _lookup(d, *keys))) for _, metric, keys in columns)
        rows.append(Row(name, cells, css="candidate" if name == "adaptive" else ""))
    return Table(
        caption,
        tuple(h for h, _, _ in columns),
        tuple(rows),
        empty="no figures: the checks did not run",
    )


def recovery_table(summary: Mapping[str, object], names: Sequence[str]) -> Table:
    return _policy_table(
        summary, names, HEADLINE_COLUMNS, "Recovery per policy (all faults of the run)"
    )


def latency_table(summary: Mapping[str, object], names: Sequence[str]) -> Table:
    return _policy_table(
        summary,
        names,
        LATENCY_COLUMNS,
        "Latency per policy: requests issued before the first fault vs during the faults",
    )


def per_fault_tables(
    summary: Mapping[str, object], names: Sequence[str], fault_labels: Mapping[str, str]
) -> tuple[Table, ...]:
    """One table per fault with a row per policy, so policies sit next to each other.

    ``fault_labels`` maps fault id to its label in the journal's order ("f1: partition
    worker-2"); a fault only the summary knows is labelled from the summary.
    """
    policies = dict_of(summary.get("policies"))
    by_fault: dict[str, dict[str, dict[str, object]]] = defaultdict(dict)
    order: list[str] = list(fault_labels)
    meta: dict[str, dict[str, object]] = {}
    for name in names:
        for entry in _list(dict_of(policies.get(name)).get("faults")):
            d = dict_of(entry)
            fid = str(d.get("fault_id", "?"))
            by_fault[fid][name] = d
            meta.setdefault(fid, d)
            if fid not in order:
                order.append(fid)
    out = []
    for fid in order:
        if fid not in by_fault:
            continue
        m = meta[fid]
        what = fault_labels.get(fid) or f"{fid}: {m.get('kind', '')} {m.get('target', '')}"
        rows = []
        for name in names:
            d = by_fault[fid].get(name, {})
            cells = tuple(
                Cell(fmt_metric(metric, _lookup(d, *keys))) for _, metric, keys in FAULT_COLUMNS
            )
            rows.append(Row(name, cells, css="candidate" if name == "adaptive" else ""))
        out.append(
            Table(f"Fault {what.strip()}", tuple(h for h, _, _ in FAULT_COLUMNS), tuple(rows))
        )
    return tuple(out)


def expectations_table(summary: Mapping[str, object]) -> Table:
    rows = []
    for entry in _list(summary.get("expectations")):
        d = dict_of(entry)
        metric = str(d.get("metric", "?"))
        verdict = _verdict_css(d.get("verdict"))
        rows.append(
            Row(
                str(d.get("policy", "?")),
                (
                    Cell(metric, css="text"),
                    Cell(fmt_metric(metric, d.get("measured"))),
                    Cell(str(d.get("bound", DASH))),
                    Cell(verdict, css=f"verdict-{verdict}"),
                    Cell(str(d.get("detail") or ""), css="text"),
                ),
                css=f"exp-{verdict}",
            )
        )
    return Table(
        "Expectations from the scenario",
        ("metric", "measured", "bound", "verdict", "detail"),
        tuple(rows),
        empty="the scenario states no expectations, or the checks did not run",
        header_css=("text", "", "", "", "text"),
    )


def steady_state_table(summary: Mapping[str, object]) -> Table:
    """The steady-state checks, one row per client, phase and metric.

    ``bound_value``, ``op`` and ``client`` repeat what ``bound`` and ``policy`` already say
    (see lab/scenario/output/summary.py), so they stay out; ``detail`` shows only when some check
    has one.
    """
    entries = [dict_of(e) for e in _list(summary.get("steady_state"))]
    preferred = ("policy", "phase", "metric", "measured", "bound", "verdict", "detail")
    keys = [k for k in preferred if any(e.get(k) not in (None, "") for e in entries)]
    first = keys[0] if keys else "check"
    rows = []
    for e in entries:
        metric = str(e.get("metric", ""))
        cells = []
        for k in keys[1:]:
            v = e.get(k)
            if k == "verdict":
                css = _verdict_css(v)
                cells.append(Cell(css, css=f"verdict-{css}"))
            elif k == "measured":
                cells.append(Cell(fmt_metric(metric, v)))
            else:
                cells.append(Cell(DASH if v is None else str(v), css=_align(k)))
        rows.append(Row(str(e.get(first, "")), tuple(cells)))
    return Table(
        "Steady state (before and after the faults)",
        tuple(keys[1:]),
        tuple(rows),
        first=first,
        empty="no steady-state checks recorded",
        header_css=tuple(_align(k) for k in keys[1:]),
    )


def _align(key: str) -> str:
    """Words read best left-aligned, figures right-aligned (tabular numbers)."""
    return "" if key in {"measured", "bound", "verdict"} else "text"


def policy_figures(summary: Mapping[str, object], name: str) -> str:
    """ "detection 0.60 s, availability 100 %, recovery 2.40 s" for one policy, or ""."""
    d = dict_of(dict_of(summary.get("policies")).get(name))
    if not d:
        return ""
    return ", ".join(f"{label} {fmt_metric(m, d.get(m))}" for label, m in INDEX_FIGURES)


def index_headline(summary: Mapping[str, object]) -> tuple[str, ...]:
    policies = dict_of(summary.get("policies"))
    names = sorted(policies, key=policy_sort_key)
    return tuple(f"{name}: {policy_figures(summary, name)}" for name in names)


def _fig(v: object, unit: str = "", digits: int = 2) -> str:
    return DASH if not isinstance(v, int | float) else f"{v:.{digits}f}{unit}"


def _noise_lines(n: Mapping[str, object]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    load = dict_of(n.get("load"))
    if load:
        cpus = load.get("cpus") or "?"
        text = f"mean {_fig(load.get('mean_1m'))}, max {_fig(load.get('max_1m'))} on {cpus} CPUs"
        out.append(("host load (1 min)", text))
    oracle = dict_of(n.get("oracle"))
    for phase in ("before", "after"):
        o = dict_of(oracle.get(phase))
        if o:
            q = ", ".join(
                f"{label} {_fig(o.get(key), ' ms')}"
                for label, key in (("p50", "p50_ms"), ("p99", "p99_ms"), ("p99.9", "p999_ms"))
            )
            out.append((f"oracle steady state ({phase})", f"{q} ({o.get('requests')} requests)"))
    c = dict_of(n.get("slow_clusters"))
    if c:
        out.append((
            f"slow clusters (> {_fig(c.get('slow_ms'), ' ms', 0)})",
            f"{c.get('count', 0)}; median interval {_fig(c.get('median_interval_s'), ' s')}, "
            f"cv {_fig(c.get('interval_cv'))}, largest gap {_fig(c.get('largest_gap_s'), ' s')}",
        ))  # fmt: skip
    for name, g in sorted(dict_of(n.get("cgroups")).items()):
        d = dict_of(g)
        quota = _fig(d.get("quota_cpus"), " CPUs") if d.get("quota_cpus") else "none"
        out.append((
            f"cgroup {name}",
            f"CPU {_fig(d.get('cpu_s'), ' s')}, throttled {d.get('nr_throttled', 0)} periods "
            f"({_fig(d.get('throttled_ms'), ' ms', 0)}), quota {quota}",
        ))  # fmt: skip
    if n.get("cgroups_reason"):
        out.append(("cgroups", str(n["cgroups_reason"])))
    return out


def noise_table(summary: Mapping[str, object]) -> Table:
    """The lab's own noise floor (``summary.json`` -> ``noise``): load, oracle, clusters,
    and each service's CPU and CFS throttling (lab/scenario/checks/noise.py)."""
    rows = tuple(
        Row(name, (Cell(text, css="text"),))
        for name, text in _noise_lines(dict_of(summary.get("noise")))
    )
    return Table(
        "The lab's own noise (no fault needed to see it)",
        ("measured",),
        rows,
        first="what",
        empty="no noise figures recorded",
        header_css=("text",),
    )
