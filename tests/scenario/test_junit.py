"""JUnit XML: one testcase per expectation and steady-state bound; aborted -> an error."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from lab.scenario.output.junit import build_junit, write_junit


def summary(**over: Any) -> dict[str, Any]:
    s: dict[str, Any] = {
        "scenario": "partition",
        "run_id": "r1",
        "seed": 7,
        "status": "completed",
        "verdict": "fail",
        "duration_s": 60.0,
        "steady_state": [
            {
                "policy": "adaptive",
                "client": "client-adaptive",
                "phase": "before",
                "metric": "availability",
                "measured": 1.0,
                "bound": ">= 0.999",
                "verdict": "pass",
            },
            {
                "policy": "adaptive",
                "client": "client-adaptive",
                "phase": "after",
                "metric": "p99_ms",
                "measured": 80.0,
                "bound": "<= 50",
                "verdict": "fail",
                "detail": "measured 80, bound <= 50",
            },
        ],
        "expectations": [
            {
                "policy": "adaptive",
                "client": "client-adaptive",
                "metric": "detection_s",
                "bound": "<= 1",
                "measured": 0.42,
                "verdict": "pass",
                "detail": "",
            },
            {
                "policy": "adaptive",
                "client": "client-adaptive",
                "metric": "recovery_s",
                "bound": "<= 5",
                "measured": None,
                "verdict": "fail",
                "detail": "not measured: f1: no attempts after the heal",
            },
        ],
    }
    s.update(over)
    return s


def cases(root: ET.Element) -> dict[str, ET.Element]:
    return {c.get("name", ""): c for c in root.iter("testcase")}


def test_one_testcase_per_expectation_and_steady_bound() -> None:
    root = build_junit(summary()).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "2", "0")
    by_name = cases(root)
    assert set(by_name) == {
        "client-adaptive availability >= 0.999",
        "client-adaptive p99_ms <= 50",
        "client-adaptive detection_s <= 1",
        "client-adaptive recovery_s <= 5",
    }
    assert by_name["client-adaptive detection_s <= 1"].find("failure") is None
    failure = by_name["client-adaptive recovery_s <= 5"].find("failure")
    assert failure is not None
    assert failure.get("message") == "client-adaptive recovery_s <= 5: measured not measured"
    assert failure.text == "not measured: f1: no attempts after the heal"
    assert by_name["client-adaptive p99_ms <= 50"].get("classname") == (
        "partition.steady_state.after"
    )


def test_aborted_run_is_an_error_testcase_with_the_reason() -> None:
    s = summary(status="aborted", verdict="aborted", abort_reason="Ctrl-C", expectations=[],
                steady_state=[])  # fmt: skip
    root = build_junit(s).getroot()
    (case,) = root.iter("testcase")
    error = case.find("error")
    assert error is not None and error.get("message") == "Ctrl-C"
    assert root.get("errors") == "1" and root.get("failures") == "0"


def test_no_expectations_is_one_passing_case(tmp_path: Path) -> None:
    path = write_junit(tmp_path, summary(expectations=[], steady_state=[], verdict="pass"))
    root = ET.parse(path).getroot()
    (case,) = root.iter("testcase")
    assert case.find("failure") is None and root.get("tests") == "1"
    assert path.read_text(encoding="utf-8").startswith("<?xml")


def test_an_unknown_run_is_one_error_and_skips_its_expectations() -> None:
    summary = {
        "scenario": "t",
        "status": "completed",
        "verdict": "unknown",
        "verdict_reason": "the control itself moved: p99_ratio 15, known >= 0.5 and <= 2",
        "duration_s": 40.0,
        "steady_state": [],
        "expectations": [
            {"client": "client-adaptive", "policy": "adaptive", "metric": "recovery_s",
             "bound": "<= 5", "measured": 6.3, "verdict": "fail", "detail": "measured 6.3"},
        ],
    }  # fmt: skip
    root = build_junit(summary).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("errors"), suite.get("failures")) == ("2", "1", "0")
    assert suite.get("skipped") == "1"
    err = suite.find("testcase/error")
    assert err is not None and "p99_ratio 15" in (err.get("message") or "")
