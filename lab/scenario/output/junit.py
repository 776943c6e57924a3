"""JUnit XML from a summary: what CI systems show as tests.

One testcase per expectation and per steady-state bound, so a CI page lists exactly
which promise broke ("adaptive detection_s <= 1: measured 1.43"). An aborted run is one
``<error>`` testcase with the reason (the run could not be carried out: exit code 2, not
a failed expectation). A run whose control moved (verdict ``unknown``, exit code 3) is
one ``<error type="unknown">`` testcase with the causes, and its expectations are
``<skipped>``: they were compared against noise, so they neither pass nor fail. Built
from ``summary.json`` rather than from the checks, so it can be re-made from a run
directory and always agrees with the report (and serves a series' aggregate as well).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lab.verdict import Verdict


def _case(suite: ET.Element, classname: str, name: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", {"classname": classname, "name": name, "time": "0"})


def _measured(v: object) -> str:
    return "not measured" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v)


def _judged(
    case: ET.Element, entry: Mapping[str, Any], name: str, type_: str, unknown: str | None
) -> str:
    """Mark one checked bound's case: ``skipped`` (the verdict is unknown, because of
    ``unknown``), ``failure`` (its verdict is not a pass) or ``""`` (it passed)."""
    if unknown is not None:
        ET.SubElement(case, "skipped", {"message": f"verdict unknown: {unknown}"})
        return "skipped"
    if Verdict.parse(entry.get("verdict")) is Verdict.PASS:
        return ""
    msg = f"{name}: measured {_measured(entry.get('measured'))}"
    f = ET.SubElement(case, "failure", {"message": msg, "type": type_})
    f.text = str(entry.get("detail") or msg)
    return "failure"


def build_junit(summary: Mapping[str, Any]) -> ET.ElementTree:
    """A ``<testsuites>`` tree with one ``<testsuite>`` for the run."""
    scenario = str(summary.get("scenario") or "scenario")
    root = ET.Element("testsuites")
    suite = ET.SubElement(
        root,
        "testsuite",
        {"name": f"scenario {scenario}", "timestamp": "", "hostname": "grenache-lab"},
    )
    props = ET.SubElement(suite, "properties")
    for key in ("run_id", "seed", "status", "verdict", "scenario_file"):
        ET.SubElement(props, "property", {"name": key, "value": str(summary.get(key, ""))})
    tests = failures = errors = skipped = 0
    verdict = Verdict.parse(summary.get("verdict"))
    unknown = verdict is Verdict.UNKNOWN
    why = str(summary.get("verdict_reason") or "the control moved")
    if unknown:
        case = _case(suite, f"{scenario}.control", "control (the oracle's known answers)")
        err = ET.SubElement(case, "error", {"message": why, "type": "unknown"})
        err.text = f"verdict unknown: {why}"
        tests, errors = 1, 1

    if summary.get("status") == "aborted" or verdict is Verdict.ABORTED:
        case = _case(suite, scenario, "run")
        reason = str(summary.get("abort_reason") or "aborted")
        err = ET.SubElement(case, "error", {"message": reason, "type": "aborted"})
        err.text = f"the run was aborted: {reason}"
        tests, errors = 1, 1

    for e in summary.get("steady_state") or []:
        phase = str(e.get("phase", ""))
        name = f"{e.get('client', e.get('policy', '?'))} {e.get('metric')} {e.get('bound')}"
        case = _case(suite, f"{scenario}.steady_state.{phase}", name)
        tests += 1
        outcome = _judged(case, e, name, "steady_state", why if unknown else None)
        skipped += outcome == "skipped"
        failures += outcome == "failure"

    for e in summary.get("expectations") or []:
        who = str(e.get("client") or e.get("policy") or "?")
        name = f"{who} {e.get('metric')} {e.get('bound')}"
        case = _case(suite, f"{scenario}.expect.{e.get('policy', who)}", name)
        tests += 1
        out = ET.SubElement(case, "system-out")
        out.text = f"measured {_measured(e.get('measured'))}, bound {e.get('bound')}"
        outcome = _judged(case, e, name, "expectation", why if unknown else None)
        skipped += outcome == "skipped"
        failures += outcome == "failure"

    if tests == 0:
        _case(suite, scenario, "run completed (no expectations stated)")
        tests = 1

    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    suite.set("time", f"{float(summary.get('duration_s') or 0):.3f}")
    root.set("tests", str(tests))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    tree = ET.ElementTree(root)
    ET.indent(tree)
    return tree


def write_junit(run_dir: Path, summary: Mapping[str, Any]) -> Path:
    """Write ``<run_dir>/junit.xml``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "junit.xml"
    build_junit(summary).write(path, encoding="utf-8", xml_declaration=True)
    return path
