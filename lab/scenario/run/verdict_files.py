"""After a run: its verdict written out as summary.json, junit.xml and report.html.

Why apart from the runner: this is the one part of a run that acts on nothing but files,
and each file may fail without costing the others. A summary that cannot be built leaves
no verdict (the run is aborted, exit 2); a JUnit file or a page that cannot be written
leaves the verdict standing and the reason in the run's meta (``junit_error``,
``report_error``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.history import History
from lab.scenario.output.junit import write_junit
from lab.verdict import Verdict


@dataclass(frozen=True, slots=True)
class VerdictFiles:
    """What was written: the summary and its verdict, the page, or why the checks failed."""

    summary: dict[str, Any] | None
    verdict: Verdict
    report: Path | None
    checks_error: str | None = None  # set when no summary could be built


def write_verdict_files(
    history: History,
    scenario: Any,
    run_dir: Path,
    *,
    aborted: str | None,
    summary_extra: Mapping[str, Any],
) -> VerdictFiles:
    """summary.json (and junit.xml from it), then report.html, in that order."""
    summary, verdict, checks_error = _write_summary(
        history, scenario, run_dir, aborted=aborted, summary_extra=summary_extra
    )
    report = _render(history, run_dir)
    return VerdictFiles(summary, verdict, report, checks_error)


def _write_summary(
    history: History,
    scenario: Any,
    run_dir: Path,
    *,
    aborted: str | None,
    summary_extra: Mapping[str, Any],
) -> tuple[dict[str, Any] | None, Verdict, str | None]:
    from lab.scenario.output.summary import (  # why: numpy and scipy, only when judging
        build_summary,
        write_summary,
    )

    try:
        summary = build_summary(history, scenario, aborted=aborted)
        summary.update(summary_extra)
        write_summary(run_dir, summary)
    except Exception as exc:  # no checks, no verdict: say so in the report and exit 2
        return None, Verdict.ABORTED, f"checks failed to run: {type(exc).__name__}: {exc}"
    _write_junit(history, run_dir, summary)
    return summary, Verdict.parse(summary.get("verdict")), None


def _write_junit(history: History, run_dir: Path, summary: Mapping[str, Any]) -> None:
    try:
        write_junit(run_dir, summary)
    except Exception as exc:  # the summary and report carry the verdict all the same
        history.meta.junit_error = f"{type(exc).__name__}: {exc}"


def _render(history: History, run_dir: Path) -> Path | None:
    try:
        from lab.report.render import render_report  # why: a page must not cost a verdict

        return render_report(run_dir)
    except Exception as exc:  # a run without a page still has its journal and summary
        history.meta.report_error = f"{type(exc).__name__}: {exc}"
        return None
