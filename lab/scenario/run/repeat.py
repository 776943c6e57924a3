"""``lab run --repeat N FILE``: N runs of one scenario in one folder, judged together.

Layout: ``reports/<series-id>/`` holds ``run-01-seed-7/``, ``run-02-seed-8/``, ... (each
a complete run directory with its own report, which links to the aggregate), and the
series' ``summary.json`` (``lab.scenario.run.aggregate``), ``junit.xml``,
``aggregate.html`` and ``index.html`` (the runs). Seeds are seed..seed+N-1, so each run
draws its own arrivals and any run can be redone alone with ``--seed``. Runs are
independent: each gets a fresh runtime (a local lab is relaunched). The crash marker
stays in ``reports/``, where the next ``lab run`` looks. An interrupt stops the series
and the runs done so far are still aggregated.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from lab.report.aggregate import aggregate_table, render_aggregate
from lab.report.render import render_index
from lab.scenario.output.junit import write_junit
from lab.scenario.output.summary import write_summary
from lab.scenario.run.aggregate import build_aggregate
from lab.scenario.run.progress import comparison_table
from lab.scenario.run.result import RunResult
from lab.scenario.run.runlock import reserve_run_dir
from lab.verdict import Verdict

AGGREGATE_PAGE = "aggregate.html"
RunOnce = Callable[..., RunResult]


def run_dir_name(index: int, seed: int) -> str:
    return f"run-{index:02d}-seed-{seed}"


def run_series(
    scenario: Any,
    args: argparse.Namespace,
    reports: Path,
    console: Console,
    command: str,
    run_once: RunOnce,
) -> int:
    """Run the series, write its aggregate, print it; the exit code of its verdict."""
    n = int(args.repeat)
    base = int(args.seed if args.seed is not None else scenario.seed)
    series_id, series = reserve_run_dir(reports, f"{scenario.name}-x{n}")
    summaries: list[dict[str, Any]] = []
    dirs: list[str] = []
    for i in range(n):
        seed = base + i
        name = run_dir_name(i + 1, seed)
        console.rule(f"{scenario.name}: run {i + 1} of {n} (seed {seed})")
        extra = {"repeat": {"series": series_id, "index": i + 1, "of": n,
                            "aggregate": f"../{AGGREGATE_PAGE}"}}  # fmt: skip
        result = run_once(
            scenario, args, series, name, seed, console, command,
            marker_dir=reports, summary_extra=extra,
        )  # fmt: skip
        summaries.append(result.summary or _read(result.run_dir))
        dirs.append(name)
        if (result.abort_reason or "").startswith("interrupted"):
            console.print(f"[red]series stopped after run {i + 1}: {result.abort_reason}[/red]")
            break
    aggregate = build_aggregate(
        summaries,
        series_id=series_id,
        run_dirs=dirs,
        scenario=scenario.name,
        scenario_file=str(getattr(scenario, "path", "")),
    )
    aggregate["command"] = command
    write_series(series, aggregate, console)
    verdict = Verdict.parse(aggregate["verdict"])
    return verdict.exit_code


def write_series(series: Path, aggregate: dict[str, Any], console: Console) -> None:
    """summary.json, junit.xml, aggregate.html, the series' index and the top index."""
    write_summary(series, aggregate)
    write_junit(series, aggregate)
    page = render_aggregate(series)
    for folder in (series, series.parent):
        try:
            render_index(folder)
        except Exception as exc:  # the aggregate stands without an index
            console.print(f"[yellow]index not refreshed: {type(exc).__name__}: {exc}[/yellow]")
    if aggregate.get("policies"):
        table = comparison_table(aggregate)
        table.title = "per policy, medians over the counted runs (the oracle: the limit)"
        console.print(table)
    console.print(aggregate_table(aggregate))
    why = aggregate.get("verdict_reason")
    tail = f" ({why})" if why else ""
    console.print(f"series {aggregate['verdict']}{tail}: {page}")


def _read(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"run_id": run_dir.name, "verdict": Verdict.ABORTED.value}
    return data if isinstance(data, dict) else {"verdict": Verdict.ABORTED.value}
