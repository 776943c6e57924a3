"""The rendered pages: the figures a reader needs are there, and nothing reaches out."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
from builders import RunPlan, build_history, build_summary, write_run

from lab.report import command
from lab.report.render import ReportError, render_index, render_report
from lab.report.tables import fmt_fraction, fmt_ms, fmt_seconds

FORBIDDEN = ("http://", "https://", "//cdn", "@import url", "url(", "<script src", "<link")


def _html(run_dir: Path) -> str:
    return render_report(run_dir).read_text(encoding="utf-8")


def _svgs(html: str) -> list[str]:
    return re.findall(r"<svg class=\"timeline\".*?</svg>", html, flags=re.S)


@pytest.mark.parametrize("run", ["pass", "fail", "aborted"])
def test_no_external_reference_anywhere(reports: dict[str, Path], run: str) -> None:
    html = _html(reports[run]).lower()
    for needle in FORBIDDEN:
        assert needle not in html, needle
    assert "xmlns" not in html  # inline SVG in HTML5 needs no namespace URL


def test_60s_three_policies_is_small_and_fast(reports: dict[str, Path]) -> None:
    started = time.perf_counter()
    out = render_report(reports["pass"])
    elapsed = time.perf_counter() - started
    size = out.stat().st_size
    print(f"report {size / 1024:.0f} KiB rendered in {elapsed:.2f} s")
    assert size < 2 * 1024 * 1024
    assert elapsed < 10


def test_header_names_the_run(reports: dict[str, Path]) -> None:
    html = _html(reports["pass"])
    assert 'class="banner verdict-pass"' in html
    assert ">pass</span>" in html
    assert "partition-one-worker" in html
    assert "seed 7" in html
    for version in ("0.1.0", "2.9.0", "3.11.2"):
        assert version in html
    assert "lab run scenarios/partition.yaml --seed 7 --run-id 20261118-110640-pass" in html
    assert "2026-11-18 11:06:40.000 UTC" in html  # started, wall clock


def test_summary_figures_appear_in_the_tables(reports: dict[str, Path]) -> None:
    run = reports["pass"]
    plan = RunPlan(run_id=run.name)
    summary = build_summary(build_history(plan), plan)
    html = _html(run)
    for policy in ("adaptive", "random", "oracle"):
        figures = summary["policies"][policy]
        assert f'<th scope="row">{policy}</th>' in html
        assert fmt_fraction(figures["availability"]) in html
        assert fmt_ms(figures["p99_ms_during"]) in html
    assert fmt_seconds(0.6) in html  # adaptive detection
    assert fmt_seconds(2.4) in html  # adaptive recovery
    # expectations: measured, bound, verdict
    assert re.search(r"detection_s</td><td[^>]*>0\.60 s</td><td[^>]*>&lt;= 1</td>", html)
    assert 'class="verdict-pass">pass</td>' in html


def test_policies_are_ordered_candidate_baseline_limit(reports: dict[str, Path]) -> None:
    html = _html(reports["pass"])
    recovery = html[html.index("Recovery per policy") :]
    rows = re.findall(r"<th scope=\"row\">(adaptive|random|oracle)</th>", recovery)
    assert rows[:3] == ["adaptive", "random", "oracle"]
    headings = re.findall(r'<div class="chart" id="timeline-(\w+)"', html)
    assert headings == ["adaptive", "random", "oracle"]


def test_one_shaded_window_per_fault_in_every_timeline(reports: dict[str, Path]) -> None:
    for run, faults in (("pass", 1), ("fail", 2), ("aborted", 1)):
        svgs = _svgs(_html(reports[run]))
        assert len(svgs) == 4, run  # the comparison chart and one per policy
        for svg in svgs:
            assert svg.count('class="fault-window') == faults, run
            assert svg.count('class="fault-label"') == faults, run
    html = _html(reports["fail"])
    assert "f1: partition worker-2" in html and "f2: latency worker-3" in html


def test_comparison_chart_has_a_line_per_policy(reports: dict[str, Path]) -> None:
    html = _html(reports["pass"])
    comparison = html[html.index('id="comparison"') : html.index('id="timeline-adaptive"')]
    # three panels (availability, p99, faulty share) x three policies
    assert comparison.count('class="series policy"') == 9
    assert comparison.count('class="series threshold"') == 1


def test_failed_expectation_is_marked(reports: dict[str, Path]) -> None:
    html = _html(reports["fail"])
    assert 'class="banner verdict-fail"' in html
    assert re.search(r"&lt;= 0\.2</td><td class=\"verdict-fail\">fail</td>", html)


def test_aborted_run_says_so_with_the_reason_and_keeps_its_record(
    reports: dict[str, Path],
) -> None:
    html = _html(reports["aborted"])
    banner = html.index('class="aborted" role="alert"')
    assert banner < html.index('id="recovery"')  # at the top
    assert "This run was aborted" in html
    # the reason, escaped
    assert "connection refused &lt;at&gt; 127.0.0.1:8474" in html
    assert "<at>" not in html
    assert "22.0 s recorded of 60.0 s planned" in html
    assert "not healed" in html  # the fault never ended before the abort
    assert len(_svgs(html)) == 4
    assert 'class="fault-window open-ended"' in html


def test_fault_log_has_confirmed_times_relative_and_wall(reports: dict[str, Path]) -> None:
    html = _html(reports["pass"])
    log = html[html.index('id="faults"') :]
    assert "15.000 s" in log and "35.000 s" in log and "14.950 s" in log
    assert "11:06:55.000" in log and "11:07:15.000" in log
    assert "toxiproxy:21002" in log


def test_scenario_as_written_is_shown_escaped(reports: dict[str, Path]) -> None:
    html = _html(reports["pass"])
    assert "timeline:" in html
    assert "availability: &#34;&gt;= 0.999&#34;" in html or "&gt;= 0.999" in html


def test_missing_summary_and_scenario_still_render(tmp_path: Path) -> None:
    run = write_run(tmp_path, RunPlan(run_id="r-nosummary"), summary=False, scenario=None)
    html = _html(run)
    assert "No summary.json" in html
    assert "No scenario file" in html
    assert 'class="banner verdict-unknown"' in html
    assert len(_svgs(html)) == 4


def test_missing_journal_still_renders_the_summary(
    tmp_path: Path, reports: dict[str, Path]
) -> None:
    run = tmp_path / "only-summary"
    run.mkdir()
    shutil.copy(reports["aborted"] / "summary.json", run / "summary.json")
    html = _html(run)
    assert "No journal.jsonl" in html
    assert "This run was aborted" in html
    assert "nothing to chart" in html


def test_no_such_run_directory(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no such run directory"):
        render_report(tmp_path / "missing")


def test_index_lists_runs_newest_first(reports: dict[str, Path]) -> None:
    root = reports["root"]
    (root / "not-a-run").mkdir(exist_ok=True)
    html = render_index(root).read_text(encoding="utf-8")
    order = re.findall(r'<a href="([^"]+)/report.html">', html)
    assert order == ["20261118-130640-aborted", "20261118-120640-fail", "20261118-110640-pass"]
    assert "2026-11-18 13:06:40.000 UTC" in html
    verdicts = re.findall(r'<td class="verdict verdict-(\w+)">', html)
    assert verdicts == ["aborted", "fail", "pass"]
    assert "adaptive: detection 0.60 s, availability" in html
    for needle in FORBIDDEN:
        assert needle not in html.lower()


def test_command_rerenders_a_reports_folder_and_its_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = write_run(tmp_path, RunPlan(run_id="r1", duration=10.0))
    parser = __import__("argparse").ArgumentParser()
    command.configure(parser)
    assert command.run(parser.parse_args([str(tmp_path), "--index"])) == 0
    assert (run / "report.html").is_file()
    assert (tmp_path / "index.html").is_file()
    assert "report.html" in capsys.readouterr().out
    with pytest.raises(ReportError):
        command.run(parser.parse_args([str(tmp_path / "nope")]))
