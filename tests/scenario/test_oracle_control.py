"""The oracle as a known answer: a run whose control moved is `unknown`, exit code 3."""

from __future__ import annotations

from collections.abc import Callable

from histbuild import A, B, C, fault, history, round_robin, stream

from lab.history import Outcome
from lab.scenario.checks.control import most_faulty_at_once
from lab.scenario.checks.figures import Window
from lab.scenario.output.summary import build_summary, exit_code
from lab.scenario.plan.spec import Scenario, parse_scenario

RR = round_robin((A, B, C))

SCENARIO = """\
name: t
runtime: local
clients: [adaptive, oracle]
load: {rate: 8}
duration: 40s
warmup: 5s
settle: 5s
steady_state: {availability: ">= 0.999", p99_ms: "<= 50"}
timeline:
  - {at: 10s, fault: partition, target: worker-2}
  - {at: 20s, heal: worker-2}
expect:
  adaptive: {detection_s: "<= 1", availability: ">= 0.999", recovery_s: "<= 5", p99_ratio: "<= 3"}
"""


def scenario() -> Scenario:
    return parse_scenario(SCENARIO, "scenarios/t.yaml")


def avoids_b(until: float = 20.0) -> Callable[[int, float], str]:
    """Round robin, but A/C only during [10, until): the oracle's choice."""

    def choose(i: int, t: float) -> str:
        return (A if i % 2 else C) if 10 <= t < until else RR(i, t)

    return choose


def run(
    oracle: Callable[[int, float], str], *, oracle_ms: float = 10.0, step: float = 1 / 128
) -> dict[str, object]:
    """The oracle at 128 req/s by default: >= 500 answers before and during the fault."""

    def latency(t: float, peer: str) -> float:
        return oracle_ms / 1000 if 10 <= t < 20 else 0.01

    reqs = stream("client-adaptive", "adaptive", 0, 40, avoids_b()) + stream(
        "client-oracle", "oracle", 0, 40, oracle, latency=latency, step=step
    )
    return build_summary(history(reqs, [fault()]), scenario())


def test_a_p99_of_too_few_answers_is_not_held_against_the_control() -> None:
    """At 8 req/s the 40 answers before the fault make a p99 that is their maximum."""
    s = run(avoids_b(), oracle_ms=40.0, step=1 / 8)
    assert s["verdict"] == "pass"
    assert "p99_ratio" not in {c["metric"] for c in s["control"]["checks"]}


def test_a_control_that_gave_its_known_answers_lets_the_run_pass() -> None:
    s = run(avoids_b())
    assert s["verdict"] == "pass" and exit_code(s) == 0 and s["verdict_reason"] is None
    control = s["control"]
    assert control["moved"] is False and control["client"] == ["client-oracle"]
    metrics = {c["metric"] for c in control["checks"]}
    assert metrics == {"detection_s", "recovery_s", "availability", "p99_ratio"}


def test_a_late_oracle_recovery_makes_the_run_unknown_with_the_cause() -> None:
    s = run(avoids_b(until=26.0))  # kept away from B 6 s after the heal
    assert s["verdict"] == "unknown" and exit_code(s) == 3
    assert "the control itself moved: recovery_s (f1)" in s["verdict_reason"]
    assert s["counts"]["control_failed"] == 1
    # the other policies' verdicts are still listed, and would have passed
    assert all(e["verdict"] == "pass" for e in s["expectations"])


def test_an_oracle_p99_ratio_out_of_band_makes_the_run_unknown() -> None:
    s = run(avoids_b(), oracle_ms=40.0)  # 4x its steady-state p99, no fault of its own
    assert s["verdict"] == "unknown"
    assert "p99_ratio 4" in s["verdict_reason"]


def test_a_latency_bound_relative_to_the_control_is_not_voided_by_the_controls_ratio() -> None:
    """Without an absolute p99_ratio expectation the oracle's ratio vouches for nothing:
    a tail bound against the same window's oracle moves with the host on both sides."""
    text = SCENARIO.replace('p99_ratio: "<= 3"', 'p99_ms: "<= 1.5x oracle"')
    sc = parse_scenario(text, "scenarios/t.yaml")

    def host_slower_during_fault(t: float, peer: str) -> float:
        return 0.04 if 10 <= t < 20 else 0.01

    reqs = stream(
        "client-adaptive", "adaptive", 0, 40, avoids_b(), latency=host_slower_during_fault
    ) + stream(
        "client-oracle", "oracle", 0, 40, avoids_b(), latency=host_slower_during_fault,
        step=1 / 128,
    )  # fmt: skip
    s = build_summary(history(reqs, [fault()]), sc)
    assert "p99_ratio" not in {c["metric"] for c in s["control"]["checks"]}
    assert s["verdict"] == "pass", s["verdict_reason"]
    judged = [e for e in s["expectations"] if e["metric"] == "p99_ms"]
    assert judged and judged[0]["bound"] == "<= 1.5x oracle" and judged[0]["verdict"] == "pass"
    # the same history judged by an absolute own-window ratio: the control's band applies
    s = build_summary(history(reqs, [fault()]), scenario())
    assert s["verdict"] == "unknown" and "p99_ratio 4" in s["verdict_reason"]


def test_an_oracle_failing_its_steady_state_makes_the_run_unknown() -> None:
    def slow_after(t: float, peer: str) -> float:
        return 0.2 if t >= 30 else 0.01

    reqs = stream("client-adaptive", "adaptive", 0, 40, avoids_b()) + stream(
        "client-oracle", "oracle", 0, 40, avoids_b(), latency=slow_after
    )
    s = build_summary(history(reqs, [fault()]), scenario())
    assert s["verdict"] == "unknown" and exit_code(s) == 3
    assert "steady state after" in s["verdict_reason"]


def test_a_failing_policy_is_not_failed_when_the_control_moved() -> None:
    def stays_on_b(i: int, t: float) -> str:
        return RR(i, t)

    def timeout_on_b(t: float, peer: str) -> Outcome:
        return Outcome.TIMEOUT if 10 <= t < 20 and peer == B else Outcome.OK

    reqs = stream("client-adaptive", "adaptive", 0, 40, stays_on_b, outcome=timeout_on_b)
    reqs += stream("client-oracle", "oracle", 0, 40, avoids_b(until=26.0))
    s = build_summary(history(reqs, [fault()]), scenario())
    assert any(e["verdict"] == "fail" for e in s["expectations"])
    assert s["verdict"] == "unknown"


def test_a_stalled_control_failing_its_requests_makes_the_run_unknown() -> None:
    """A client loop late past its deadline times out requests to healthy peers."""

    def stalled(t: float, peer: str) -> Outcome:
        return Outcome.TIMEOUT if 12 <= t < 14 else Outcome.OK

    reqs = stream("client-adaptive", "adaptive", 0, 40, avoids_b()) + stream(
        "client-oracle", "oracle", 0, 40, avoids_b(), outcome=stalled, step=1 / 128
    )
    s = build_summary(history(reqs, [fault()]), scenario())
    assert s["verdict"] == "unknown"
    assert "availability 0.8" in s["verdict_reason"]


def _window(fid: str, peer: str, t0: float, t1: float) -> Window:
    return Window(fault(fid, peer, t0, t1), t0, t1, t1 + 5.0, 3, 3)


def test_concurrent_faults_count_together_for_the_controls_room_to_move() -> None:
    """Three one-peer faults at once leave the oracle nowhere to go: no detection or
    recovery is asked of it for them, and its p99 band does not apply (more than half)."""
    all_down = [_window("d1", A, 10, 20), _window("d2", B, 11, 20), _window("d3", C, 12, 20)]
    assert most_faulty_at_once(all_down) == 3
    assert most_faulty_at_once(all_down, all_down[0]) == 3
    apart = [_window("f1", A, 10, 12), _window("f2", B, 14, 16)]
    assert most_faulty_at_once(apart) == 1
    assert most_faulty_at_once(apart, apart[1]) == 1


def test_the_control_is_not_asked_to_avoid_peers_when_every_peer_is_faulty() -> None:
    faults = [fault("d1", A, 10, 20), fault("d2", B, 10, 20), fault("d3", C, 10, 20)]
    reqs = stream("client-oracle", "oracle", 0, 40, RR, step=1 / 128)
    s = build_summary(history(reqs, faults), scenario())
    metrics = {c["metric"] for c in s["control"]["checks"]}
    assert "detection_s" not in metrics and "p99_ratio" not in metrics
    assert s["verdict"] != "unknown"


def test_a_steady_state_bound_relative_to_the_oracle_holds_each_client_to_its_figure() -> None:
    text = SCENARIO.replace('p99_ms: "<= 50"', 'p99_ms: "<= 2x oracle"')
    sc = parse_scenario(text, "scenarios/t.yaml")
    reqs = stream("client-adaptive", "adaptive", 0, 40, avoids_b()) + stream(
        "client-oracle", "oracle", 0, 40, avoids_b(), step=1 / 128
    )
    s = build_summary(history(reqs, [fault()]), sc)
    p99 = [j for j in s["steady_state"] if j["metric"] == "p99_ms"]
    assert p99 and all(j["bound"] == "<= 2x oracle" for j in p99)
    assert all(j["verdict"] == "pass" and j["bound_value"] is not None for j in p99)
