"""The aggregate of repeated runs: medians, intervals, unknown runs, the comparison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lab.report.aggregate import render_aggregate
from lab.report.render import render_index
from lab.scenario.output.junit import build_junit
from lab.scenario.output.summary import write_summary
from lab.scenario.run.aggregate import build_aggregate
from lab.scenario.run.stats import compare, median, median_ci


def run(seed: int, recovery: float | None, *, verdict: str | None = None,
        random_recovery: float = 0.1, bound: float = 5.0,
        bound_text: str = "<= 5") -> dict[str, Any]:  # fmt: skip
    ok = recovery is not None and recovery <= bound
    return {
        "run_id": f"r{seed}",
        "seed": seed,
        "scenario": "partition",
        "duration_s": 30.0,
        "verdict": verdict or ("pass" if ok else "fail"),
        "policies": {
            "adaptive": {"policy": "adaptive", "recovery_s": recovery, "availability": 1.0},
            "random": {"policy": "random", "recovery_s": random_recovery, "availability": 0.66},
        },
        "steady_state": [],
        "expectations": [
            {"policy": "adaptive", "client": "client-adaptive", "key": "adaptive",
             "metric": "recovery_s", "op": "<=", "bound": bound_text,
             "bound_value": bound, "measured": recovery, "verdict": "pass" if ok else "fail"},
        ],
    }  # fmt: skip


def test_the_verdict_is_taken_on_the_median_not_on_each_run() -> None:
    runs = [run(7, 2.0), run(8, 6.3), run(9, 3.0), run(10, 2.5), run(11, 5.3)]
    a = build_aggregate(runs, series_id="s")
    (e,) = a["expectations"]
    assert e["measured"] == 3.0 and e["runs_failed"] == 2 and e["verdict"] == "pass"
    assert a["verdict"] == "pass"
    rec = a["figures"]["adaptive"]["recovery_s"]
    assert rec["values"] == [2.0, 6.3, 3.0, 2.5, 5.3] and (rec["min"], rec["max"]) == (2.0, 6.3)
    lo, hi = rec["ci95"]
    assert 2.0 <= lo <= 3.0 <= hi <= 6.3
    assert a["policies"]["adaptive"]["recovery_s"] == 3.0  # the index's shape


def test_a_bound_relative_to_another_policy_is_judged_on_the_median_bound() -> None:
    rel = "<= 2x oracle"  # the same text each run, resolved against that run's oracle
    runs = [run(s, 2.0, bound=b, bound_text=rel) for s, b in ((1, 1.0), (2, 3.0), (3, 4.0))]
    (e,) = build_aggregate(runs, series_id="s")["expectations"]
    assert e["bound_value"] == 3.0 and e["verdict"] == "pass"


def test_unmeasured_runs_count_as_the_worst_value() -> None:
    runs = [run(1, None), run(2, None), run(3, 1.0)]
    (e,) = build_aggregate(runs, series_id="s")["expectations"]
    assert e["verdict"] == "fail" and "not measured in most runs" in e["detail"]


def test_unknown_runs_are_not_counted_and_too_many_make_the_series_unknown() -> None:
    runs = [run(1, 2.0), run(2, 9.0, verdict="unknown"), run(3, 2.0)]
    a = build_aggregate(runs, series_id="s")
    assert a["verdict"] == "pass" and a["counts"]["counted"] == 2
    rec = a["figures"]["adaptive"]["recovery_s"]
    assert rec["values"] == [2.0, None, 2.0]  # run 2 not counted
    assert a["figures"]["adaptive"]["recovery_s"]["median"] == 2.0
    runs = [run(1, 2.0), run(2, 9.0, verdict="unknown"), run(3, 2.0, verdict="aborted")]
    a = build_aggregate(runs, series_id="s")
    assert a["verdict"] == "unknown" and "only 1 of 3 runs" in a["verdict_reason"]
    runs = [run(1, None, verdict="aborted"), run(2, None, verdict="aborted")]
    a = build_aggregate(runs, series_id="s")
    assert a["verdict"] == "aborted" and a["verdict_reason"].startswith("no run was carried out")


def test_adaptive_is_compared_with_each_policy_by_mann_whitney() -> None:
    runs = [run(s, 2.0 + s / 10, random_recovery=0.1 + s / 100) for s in range(5)]
    comps = build_aggregate(runs, series_id="s")["comparisons"]
    (c,) = [c for c in comps if c["metric"] == "recovery_s"]
    assert (c["a"], c["b"], c["n_a"], c["n_b"]) == ("adaptive", "random", 5, 5)
    assert c["p_value"] is not None and abs(c["p_value"] - 2 / 252) < 1e-9  # complete separation


def test_stats_refuse_to_make_numbers_from_too_little() -> None:
    assert median([]) is None and median([1.0, 3.0]) == 2.0
    assert median_ci([1.0, 2.0]) is None and median_ci([4.0, 4.0, 4.0]) == (4.0, 4.0)
    assert compare([1.0], [2.0, 3.0]).p_value is None


def test_the_series_folder_has_its_page_junit_and_an_index_entry(tmp_path: Path) -> None:
    series = tmp_path / "20261202-120000-partition-x3"
    runs = [run(1, 2.0), run(2, 6.0), run(3, 3.0, verdict="unknown")]
    a = build_aggregate(runs, series_id=series.name, run_dirs=["run-01-seed-1", "b", "c"])
    write_summary(series, a)
    page = render_aggregate(series).read_text()
    assert "run-01-seed-1/report.html" in page and "<svg" in page and "class=\"bound\"" in page
    index = render_index(tmp_path).read_text()
    assert f"{series.name}/aggregate.html" in index
    xml = build_junit(json.loads((series / "summary.json").read_text())).getroot()
    assert xml.get("tests") == "1" and xml.get("failures") == "0"
