"""Write ``report.html`` for a run directory and ``index.html`` for the reports folder.

The thin shell around the pure model and chart code: it reads the run directory
(``journal.jsonl``, ``summary.json``, ``scenario.yaml``), builds the view model, and
lets Jinja place it. The runner calls :func:`render_report` at the end of every run,
aborted ones included, so this module tolerates a missing summary, a missing scenario
and even a missing journal: a report that says what is missing beats no report.

The page is one self-contained file: inline CSS, inline SVG without an ``xmlns``
attribute (HTML5 does not need it), no script, no fonts, no URL of any kind, so it
opens from ``file://`` offline, archives as a single file and prints.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import jinja2

from lab.errors import LabError
from lab.history import History, RunMeta, meta_from_json, read_journal
from lab.report.charts import BREAKER_COLOURS, OKABE_ITO, Chart
from lab.report.layout import comparison_chart, peer_colour_map, timeline_chart
from lab.report.model import IndexEntry, ReportModel, build_report
from lab.report.tables import fmt_wall, index_headline, run_verdict
from lab.report.timelines import Timeline

JOURNAL = "journal.jsonl"
SUMMARY = "summary.json"
SCENARIO = "scenario.yaml"
REPORT = "report.html"
INDEX = "index.html"


class ReportError(LabError):
    """A report could not be written (no such run directory, unwritable folder)."""


@dataclass(frozen=True, slots=True)
class TimelineView:
    """A policy's timeline and the SVG geometry drawn for it."""

    timeline: Timeline
    chart: Chart


@dataclass(frozen=True, slots=True)
class LegendItem:
    label: str
    colour: str
    css: str


@functools.cache
def environment() -> jinja2.Environment:
    """The one Jinja environment: package templates, autoescape on, undefined is an error.

    ``autoescape=True`` rather than ``select_autoescape``: the templates end in ``.j2``,
    which extension-based selection would leave unescaped.
    """
    return jinja2.Environment(
        loader=jinja2.PackageLoader("lab.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` in one step, so a reader never sees half a report."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a report is for reading
        os.replace(tmp, path)
    except OSError as exc:
        raise ReportError(f"{path}: cannot write: {exc.strerror or exc}") from exc


def _read_summary(run_dir: Path) -> tuple[dict[str, object] | None, str | None]:
    path = run_dir / SUMMARY
    if not path.is_file():
        return None, None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return None, f"{SUMMARY} could not be read ({exc}); the tables below are empty."
    if not isinstance(data, dict):
        return None, f"{SUMMARY} is not a JSON object; the tables below are empty."
    return data, None


def _read_scenario(run_dir: Path) -> str | None:
    candidates = [run_dir / SCENARIO, *sorted(run_dir.glob("*.y*ml"))]
    for path in candidates:
        if path.is_file():
            try:
                return path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                return None
    return None


def _placeholder_history(run_dir: Path, summary: dict[str, object] | None) -> History:
    """A History with only a header, for a run whose journal is missing or unreadable."""
    s = summary or {}
    seed = s.get("seed")
    meta = RunMeta(
        run_id=str(s.get("run_id") or run_dir.name),
        scenario=str(s.get("scenario") or "?"),
        seed=seed if isinstance(seed, int) else 0,
        started_wall=0.0,
        started_mono=0.0,
        duration_s=0.0,
        status=str(s.get("status") or "aborted"),
        abort_reason=str(s["abort_reason"]) if s.get("abort_reason") else None,
    )
    return History(meta=meta)


def load_model(run_dir: Path) -> ReportModel:
    """Read a run directory into the view model (no writing)."""
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: no such run directory")
    summary, summary_problem = _read_summary(run_dir)
    notices: list[str] = []
    if summary_problem:
        notices.append(summary_problem)
    journal = run_dir / JOURNAL
    try:
        history = read_journal(journal)
    except FileNotFoundError:
        notices.append(f"No {JOURNAL} in {run_dir.name}: the run recorded nothing to chart.")
        history = _placeholder_history(run_dir, summary)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        notices.append(f"{JOURNAL} could not be read ({exc}); nothing to chart.")
        history = _placeholder_history(run_dir, summary)
    return build_report(history, summary, _read_scenario(run_dir), notices)


def render_model(model: ReportModel) -> str:
    """HTML text for a view model."""
    colours = peer_colour_map(model.timelines)
    views = [
        TimelineView(tl, timeline_chart(tl, model.bins, model.axis_end, model.faults, colours))
        for tl in model.timelines
    ]
    legend = [
        LegendItem("issued requests/s", OKABE_ITO["black"], "line"),
        LegendItem("failed requests/s", OKABE_ITO["vermillion"], "line"),
        LegendItem("availability", OKABE_ITO["blue"], "line"),
        LegendItem("latency p50", OKABE_ITO["blue"], "line"),
        LegendItem("latency p99 (dashed)", OKABE_ITO["vermillion"], "dash"),
        LegendItem("breaker closed", BREAKER_COLOURS["closed"], "box"),
        LegendItem("breaker half-open", BREAKER_COLOURS["half_open"], "box"),
        LegendItem("breaker open", BREAKER_COLOURS["open"], "box"),
        LegendItem("fault window (confirmed start to end)", "#9a9a9a", "fault"),
    ]
    workers: dict[str, str] = {}
    for tl in model.timelines:
        for p in tl.peers:
            workers.setdefault(p.label, colours.get(p.peer, "#000000"))
    legend += [LegendItem(label, colour, "box") for label, colour in workers.items()]
    comparison = (
        comparison_chart(model.timelines, model.bins, model.axis_end, model.faults)
        if len(model.timelines) > 1
        else None
    )
    template = environment().get_template("report.html.j2")
    return template.render(
        m=model,
        h=model.header,
        comparison=comparison,
        views=views,
        legend=legend,
        bin_ms=round(model.bins.width * 1000),
    )


def render_report(run_dir: Path) -> Path:
    """Re-render ``run_dir/report.html`` from what is on disk; returns its path."""
    run_dir = Path(run_dir)
    model = load_model(run_dir)
    out = run_dir / REPORT
    _write_atomic(out, render_model(model))
    return out


# -- index ---------------------------------------------------------------------------------


def _last_meta(journal: Path) -> RunMeta | None:
    """The last meta line of a journal, parsing only the lines that can be meta lines."""
    meta: RunMeta | None = None
    try:
        with journal.open(encoding="utf-8") as fh:
            for line in fh:
                if '"meta"' not in line:
                    continue
                try:
                    d = json.loads(line)
                except ValueError:
                    continue
                if isinstance(d, dict) and d.get("type") == "meta":
                    try:
                        meta = meta_from_json(d)
                    except TypeError:
                        continue
    except OSError:
        return None
    return meta


def index_entry(run_dir: Path, reports_dir: Path) -> IndexEntry | None:
    """What the index says about one run, or None for a folder that is not a run."""
    journal, summary_path = run_dir / JOURNAL, run_dir / SUMMARY
    if not journal.is_file() and not summary_path.is_file():
        return None
    summary, _ = _read_summary(run_dir)
    s = summary or {}
    meta = _last_meta(journal) if journal.is_file() else None
    started = meta.started_wall if meta and meta.started_wall else 0.0
    if not started:
        try:
            started = (summary_path if summary_path.is_file() else journal).stat().st_mtime
        except OSError:
            started = 0.0
    status, verdict = run_verdict(meta.status if meta else "", s)
    page = "aggregate.html" if s.get("kind") == "aggregate" else REPORT  # a --repeat series
    href = urllib.parse.quote(run_dir.relative_to(reports_dir).as_posix()) + "/" + page
    return IndexEntry(
        run_id=str(s.get("run_id") or (meta.run_id if meta else run_dir.name)),
        href=href,
        started=started,
        date=fmt_wall(started) if started else "—",
        scenario=str(s.get("scenario") or (meta.scenario if meta else "?")),
        verdict=verdict,
        status=status,
        headline=index_headline(s),
    )


def render_index(reports_dir: Path) -> Path:
    """Write ``reports_dir/index.html`` listing every run, newest first; returns its path."""
    reports_dir = Path(reports_dir)
    if not reports_dir.is_dir():
        raise ReportError(f"{reports_dir}: no such reports directory")
    entries = [
        e
        for d in sorted(reports_dir.iterdir())
        if d.is_dir() and (e := index_entry(d, reports_dir)) is not None
    ]
    entries.sort(key=lambda e: (e.started, e.run_id), reverse=True)
    html = environment().get_template("index.html.j2").render(entries=entries)
    out = reports_dir / INDEX
    _write_atomic(out, html)
    return out
