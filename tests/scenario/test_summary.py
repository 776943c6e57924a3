"""summary.json: figures, verdicts, steady state; the report reads it as it is."""

from __future__ import annotations

import json
from pathlib import Path

from histbuild import A, B, C, fault, history, round_robin, stream

from lab.history import ClientEvent, Outcome
from lab.report.model import build_report
from lab.scenario.output.summary import build_summary, exit_code, write_summary
from lab.scenario.plan.spec import Scenario, parse_scenario

RR = round_robin((A, B, C))

SCENARIO = """\
name: t
runtime: local
clients: [adaptive, random]
load: {rate: 8}
duration: 40s
warmup: 5s
settle: 5s
steady_state: {availability: ">= 0.999", p99_ms: "<= 50"}
timeline:
  - {at: 10s, fault: partition, target: worker-2}
  - {at: 20s, heal: worker-2}
expect:
  adaptive: {detection_s: "<= 1", availability: ">= 0.999", recovery_s: "<= 5"}
"""


def scenario(text: str = SCENARIO) -> Scenario:
    return parse_scenario(text, "scenarios/t.yaml")


def adaptive_choice(i: int, t: float) -> str:
    if 10 <= t < 20:
        return A if i % 2 else C
    return RR(i, t)


def partitioned(t: float, peer: str) -> Outcome:
    return Outcome.TIMEOUT if 10 <= t < 20 and peer == B else Outcome.OK


def make_history(status: str = "completed"):  # type: ignore[no-untyped-def]
    reqs = stream("client-adaptive", "adaptive", 0, 40, adaptive_choice) + stream(
        "client-random", "random", 0, 40, RR, outcome=partitioned
    )
    return history(reqs, [fault()], status=status)


def test_summary_has_the_contract_keys_per_policy_and_passes() -> None:
    s = build_summary(make_history(), scenario())
    assert s["verdict"] == "pass" and s["status"] == "completed" and exit_code(s) == 0
    assert s["grouping"] == "policy"
    adaptive = s["policies"]["adaptive"]
    for key in ("detection_s", "availability", "p99_ratio", "recovery_s", "requests",
                "errors", "retries", "p50_ms_before", "p99_ms_during", "faults"):  # fmt: skip
        assert key in adaptive
    assert adaptive["detection_s"] == 0.0 and adaptive["availability"] == 1.0
    assert s["policies"]["random"]["detection_s"] is None
    assert "still >= 5 %" in s["policies"]["random"]["detection_s_reason"]
    (f1,) = adaptive["faults"]
    assert f1["fault_id"] == "f1" and f1["t0_s"] == 10.0 and f1["t1_s"] == 20.0
    assert [e["metric"] for e in s["expectations"]] == ["detection_s", "availability", "recovery_s"]
    assert all(e["verdict"] == "pass" for e in s["expectations"])
    e = s["expectations"][0]
    assert e["policy"] == "adaptive" and e["client"] == "client-adaptive"
    assert e["bound"] == "<= 1" and e["measured"] == 0.0
    phases = {(x["client"], x["phase"], x["metric"]) for x in s["steady_state"]}
    assert ("client-random", "after", "p99_ms") in phases and len(phases) == 8
    json.dumps(s, allow_nan=False)


def test_an_impossible_expectation_fails_the_run_with_exit_code_1() -> None:
    text = SCENARIO.replace('detection_s: "<= 1"', 'detection_s: "< 0"')
    s = build_summary(make_history(), scenario(text))
    assert s["verdict"] == "fail" and exit_code(s) == 1
    bad = [e for e in s["expectations"] if e["verdict"] == "fail"]
    assert [(e["metric"], e["measured"], e["bound"]) for e in bad] == [("detection_s", 0.0, "< 0")]
    assert "bound < 0" in bad[0]["detail"]
    assert s["counts"]["expectations_failed"] == 1


def test_unmeasurable_figure_fails_with_its_reason() -> None:
    text = SCENARIO.replace("  adaptive: {", '  random: {detection_s: "<= 1"}\n  adaptive: {')
    s = build_summary(make_history(), scenario(text))
    (bad,) = [e for e in s["expectations"] if e["verdict"] == "fail"]
    assert bad["client"] == "client-random" and bad["measured"] is None
    assert bad["detail"].startswith("not measured: f1: share of toxiproxy:21002")


def test_steady_state_failure_fails_the_run() -> None:
    text = SCENARIO.replace('p99_ms: "<= 50"', 'p99_ms: "<= 1"')
    s = build_summary(make_history(), scenario(text))
    assert s["verdict"] == "fail"
    assert {x["phase"] for x in s["steady_state"] if x["verdict"] == "fail"} == {"before", "after"}


def test_aborted_run_keeps_figures_but_lists_no_verdicts() -> None:
    s = build_summary(make_history(), scenario(), aborted="SIGTERM at 12.3 s")
    assert s["verdict"] == "aborted" and s["status"] == "aborted" and exit_code(s) == 2
    assert s["abort_reason"] == "SIGTERM at 12.3 s"
    assert s["expectations"] == [] and s["steady_state"] == []
    assert s["policies"]["adaptive"]["requests"] == 320


def test_two_clients_of_one_policy_are_keyed_by_client_name() -> None:
    text = SCENARIO.replace(
        "clients: [adaptive, random]",
        "clients:\n  - {name: a1, policy: adaptive}\n  - {name: a2, policy: adaptive}",
    )
    reqs = stream("a1", "adaptive", 0, 40, adaptive_choice) + stream(
        "a2", "adaptive", 0, 40, adaptive_choice
    )
    s = build_summary(history(reqs, [fault()]), scenario(text))
    assert s["grouping"] == "client" and set(s["policies"]) == {"a1", "a2"}
    # an expectation naming the policy is judged for each of its clients
    assert [(e["client"], e["policy"]) for e in s["expectations"][:2]] == [
        ("a1", "a1"),
        ("a1", "a1"),
    ]
    assert {e["client"] for e in s["expectations"]} == {"a1", "a2"}


def test_write_summary_and_the_report_reads_it(tmp_path: Path) -> None:
    h = make_history()
    s = build_summary(h, scenario())
    path = write_summary(tmp_path / "r1", s)
    loaded = json.loads(path.read_text(encoding="utf-8"))
    assert loaded == s
    model = build_report(h, loaded, SCENARIO)
    assert model.header.verdict == "pass"
    rows = {r.name: r for r in model.recovery.rows}
    assert set(rows) >= {"adaptive", "random"}
    assert rows["adaptive"].cells[0].text == "0.00 s"  # detection column
    assert len(model.expectations.rows) == 3
    assert len(model.per_fault) == 1
    assert len(model.steady_state.rows) == 8


def test_relative_expectations_judge_against_the_ref_client_of_the_same_run() -> None:
    text = SCENARIO.replace(
        'expect:\n  adaptive: {detection_s: "<= 1", availability: ">= 0.999", recovery_s: "<= 5"}',
        'expect:\n  adaptive: {availability: ">= random - 0.001", p99_ms: "<= 2x random",'
        ' detection_s: "<= random"}\n  random: {availability: ">= adaptive"}',
    )
    s = build_summary(make_history(), scenario(text))
    by = {(e["client"], e["metric"]): e for e in s["expectations"]}
    avail = by[("client-adaptive", "availability")]
    assert avail["verdict"] == "pass" and avail["bound"] == ">= random - 0.001"
    random_avail = s["policies"]["random"]["availability"]
    assert avail["bound_value"] == random_avail - 0.001
    assert "client-random measured" in avail["detail"]
    assert by[("client-adaptive", "p99_ms")]["verdict"] == "pass"
    worse = by[("client-random", "availability")]  # random lost the partitioned share
    assert worse["verdict"] == "fail" and worse["bound"] == ">= adaptive"
    assert "client-adaptive measured 1" in worse["detail"]
    missing = by[("client-adaptive", "detection_s")]  # random never detects: not measurable
    assert missing["verdict"] == "fail" and missing["bound_value"] is None
    assert missing["detail"].startswith("not measurable: client-random's detection_s: ")


def test_each_client_has_its_loop_lag_over_the_run() -> None:
    h = make_history()
    h.events += [
        ClientEvent("client-adaptive", "adaptive", 12.0, "loop_lag", None, {"hist": {"1": 98}}),
        ClientEvent("client-adaptive", "adaptive", 13.0, "loop_lag", None, {"hist": {"2": 1}}),
        ClientEvent("client-adaptive", "adaptive", 13.5, "stall", None, {"length_ms": 812.0}),
        ClientEvent("client-adaptive", "adaptive", 14.0, "loop_lag", None, {"hist": {"813": 1}}),
    ]
    s = build_summary(h, scenario())
    lag = s["policies"]["adaptive"]["loop_lag"]
    assert lag == {
        "samples": 100,
        "max_ms": 813.0,
        "p99_ms": 2.0,
        "stalls": 1,
        "longest_stall_ms": 812.0,
    }
    none = s["policies"]["random"]["loop_lag"]
    assert none["max_ms"] is None and "no loop lag" in none["reason"]
    json.dumps(s, allow_nan=False)
