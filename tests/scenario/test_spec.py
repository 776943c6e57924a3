"""Scenario files: every error names file:line: field; plans are deterministic per seed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.errors import ScenarioError
from lab.scenario.plan.quantities import Bound, parse_bound, parse_duration
from lab.scenario.plan.spec import Scenario, load_scenario, parse_scenario
from lab.scenario.plan.yamlsource import Field

ROOT = Path(__file__).resolve().parents[2]
LABEL = "scenarios/x.yaml"

BASE = """\
name: t
seed: 7
clients: [adaptive, random, oracle]
load: {rate: 100}
duration: 60s
steady_state: {availability: ">= 0.999", p99_ms: "<= 50"}
timeline:
  - {at: 15s, fault: partition, target: worker-2}
  - {at: 35s, heal: worker-2}
expect:
  adaptive: {detection_s: "<= 1", availability: ">= 0.999", recovery_s: "<= 5"}
"""


def parse(text: str) -> Scenario:
    return parse_scenario(text, LABEL)


def error_of(text: str) -> str:
    with pytest.raises(ScenarioError) as info:
        parse(text)
    return str(info.value)


def test_the_design_sketch_parses_with_defaults() -> None:
    s = parse(BASE)
    assert s.name == "t" and s.seed == 7 and s.runtime == "compose"
    assert s.client_names() == ("client-adaptive", "client-random", "client-oracle")
    assert s.load.rate == 100 and s.load.timeout_s == 1.0 and s.load.arrival == "constant"
    assert s.warmup_s == 5.0 and s.duration_s == 60.0
    assert s.steady_state["availability"] == Bound(">=", 0.999)
    assert str(s.expect["adaptive"]["detection_s"]) == "<= 1"
    plan = s.plan()
    assert [(p.at_s, p.action, p.fault_id, p.target) for p in plan] == [
        (15.0, "inject", "f1", "worker-2"),
        (35.0, "heal", "f1", "worker-2"),
    ]


# Each case: a replacement in BASE, the line and the field the message must name, and a
# fragment of the explanation.
ERROR_CASES = [
    (
        "timeline:\n  - {at: 15s,",
        "timeline:\n  - {at: soon,",
        8,
        "timeline[0].at",
        "expected a duration like 15s, got 'soon'",
    ),
    (
        "  - {at: 35s, heal: worker-2}",
        "  - {at: 35s, heal: wrker-2}",
        9,
        "timeline[1].heal",
        "did you mean 'worker-2'?",
    ),
    (
        "target: worker-2}",
        "target: wrker-2}",
        8,
        "timeline[0].target",
        "no service 'wrker-2' in the topology (did you mean 'worker-2'?)",
    ),
    (
        "fault: partition",
        "fault: partiton",
        8,
        "timeline[0].fault",
        "unknown fault kind 'partiton' (did you mean 'partition'?)",
    ),
    (
        "  - {at: 35s, heal: worker-2}",
        "  - {at: 10s, heal: worker-2}",
        9,
        "timeline[1].heal",
        "heal at 10s comes before its fault f1 at 15s",
    ),
    ("at: 35s", "at: 65s", 9, "timeline[1].at", "65s is not within duration 60s"),
    ("seed: 7", "sede: 7", 2, "sede", "unknown key 'sede' (did you mean 'seed'?)"),
    (
        "load: {rate: 100}",
        "load: {rate: 100, arival: poisson}",
        4,
        "load.arival",
        "did you mean 'arrival'?",
    ),
    ("load: {rate: 100}", "load: {rate: fast}", 4, "load.rate", "expected a number, got 'fast'"),
    ("load: {rate: 100}", "load: {rate: 0}", 4, "load.rate", "must be >= 0.1"),
    (
        "load: {rate: 100}",
        "load: {rate: 100, arrival: burst}",
        4,
        "load.arrival",
        "expected one of constant, poisson",
    ),
    ("load: {rate: 100}", "load: {rate: 100, timeout: 0s}", 4, "load.timeout", "must be > 0"),
    ("load: {rate: 100}", "load: {rate: 100, service: echo}", 4, "load.service", "rpc_test"),
    ("seed: 7", "seed: seven", 2, "seed", "expected an integer, got 'seven'"),
    (
        "clients: [adaptive, random, oracle]",
        "clients: [adaptive, randum]",
        3,
        "clients[1]",
        "unknown policy 'randum' (did you mean 'random'?)",
    ),
    (
        "clients: [adaptive, random, oracle]",
        "clients: [adaptive, adaptive]",
        3,
        "clients[1]",
        "listed twice",
    ),
    ("clients: [adaptive, random, oracle]", "clients: []", 3, "clients", "non-empty list"),
    (
        "clients: [adaptive, random, oracle]",
        "clients:\n  - {name: client-x, policy: adaptive}\n  - random",
        4,
        "clients[0]",
        "the compose lab has no client 'client-x'",
    ),
    (
        "clients: [adaptive, random, oracle]",
        "clients:\n  - {name: client-oracle, policy: adaptive}",
        4,
        "clients[0].policy",
        "client-oracle runs policy oracle in the compose lab",
    ),
    (
        "clients: [adaptive, random, oracle]",
        "clients:\n  - {name: client-adaptive-2, gossip: maybe}",
        4,
        "clients[0].gossip",
        "expected true or false",
    ),
    (
        "seed: 7",
        "seed: 7\ntopology: {grapes: 2, workers: 5}",
        3,
        "topology.grapes",
        "the compose lab runs 3 to 8 grapes",
    ),
    ("seed: 7", "seed: 7\nruntime: kubernetes", 3, "runtime", "expected one of compose, local"),
    (
        'p99_ms: "<= 50"',
        'p99: "<= 50"',
        6,
        "steady_state.p99",
        "unknown metric 'p99' (did you mean 'p99_ms'?)",
    ),
    (
        'p99_ms: "<= 50"',
        'p99_ms: "about 50"',
        6,
        "steady_state.p99_ms",
        'expected a bound like "<= 1"',
    ),
    ('p99_ms: "<= 50"', "p99_ms: 50", 6, "steady_state.p99_ms", "got 50"),
    (
        "  adaptive: {",
        "  adaptiv: {",
        11,
        "expect.adaptiv",
        "no client or policy 'adaptiv' in this run (did you mean 'adaptive'?)",
    ),
    (
        'recovery_s: "<= 5"',
        'recovery_s: "<= 1.5x randum"',
        11,
        "expect.adaptive.recovery_s",
        "compares with 'randum', which is no client or policy of this run (did you mean",
    ),
    (
        'recovery_s: "<= 5"',
        'recovery_s: "<= round_robin"',
        11,
        "expect.adaptive.recovery_s",
        "'round_robin', which is no client or policy of this run",
    ),
    (
        'recovery_s: "<= 5"',
        'recovery_s: "<= client-adaptive"',
        11,
        "expect.adaptive.recovery_s",
        "compares 'adaptive' with itself ('client-adaptive')",
    ),
    (
        'recovery_s: "<= 5"',
        'recovery_s: "<= random 5"',
        11,
        "expect.adaptive.recovery_s",
        "expected a number after + or -",
    ),
    (
        'p99_ms: "<= 50"',
        'p99_ms: "<= 2x randum"',
        6,
        "steady_state.p99_ms",
        "compares with 'randum', which is no client or policy of this run",
    ),
    (
        'recovery_s: "<= 5"',
        'recovery: "<= 5"',
        11,
        "expect.adaptive.recovery",
        "did you mean 'recovery_s'?",
    ),
    ("duration: 60s", "duration: 0s", 5, "duration", "must be > 0"),
    (
        "duration: 60s",
        "duration: 60s\nwarmup: 20s",
        6,
        "warmup",
        "warmup 20s leaves no steady state before the first fault at 15s",
    ),
    (
        "duration: 60s",
        "duration: 38s",
        9,
        "settle",
        "the last heal at 35s (f1) + settle 5s leaves no steady state",
    ),
    (
        "target: worker-2}",
        "target: worker-2, latency_ms: 3}",
        8,
        "timeline[0].latency_ms",
        "unknown key 'latency_ms'",
    ),
    (
        "fault: partition, target: worker-2}",
        "fault: latency, target: worker-2}",
        8,
        "timeline[0].latency_ms",
        "is required",
    ),
    (
        "fault: partition, target: worker-2}",
        "fault: latency, target: worker-2, latency_ms: -5}",
        8,
        "timeline[0].latency_ms",
        "must be >= 0",
    ),
    (
        "fault: partition, target: worker-2}",
        "fault: errors, target: worker-2, error_rate: 2}",
        8,
        "timeline[0].error_rate",
        "must be <= 1",
    ),
    (
        "fault: partition, target: worker-2}",
        "fault: one_way_partition, target: worker-2, direction: sideways}",
        8,
        "timeline[0].direction",
        "expected upstream or downstream",
    ),
    (
        "fault: partition, target: worker-2}",
        "fault: partition, target: grape-2}",
        8,
        "timeline[0].target",
        "partition acts on worker-N, not 'grape-2'",
    ),
    (
        "fault: partition, target: worker-2}",
        "fault: slow, target: worker-2, latency: {kind: gamma}}",
        8,
        "timeline[0].latency.kind",
        "expected one of fixed, uniform, normal, exp",
    ),
    (
        "fault: partition, target: worker-2}",
        "fault: slow, target: worker-2, latency: {kind: fixed}}",
        8,
        "timeline[0].latency.ms",
        "is required",
    ),
    (
        "  - {at: 35s, heal: worker-2}",
        "  - {at: 35s, fault: down, target: worker-2}",
        9,
        "timeline[1]",
        "worker-2 already has fault f1 (partition) from 15s to 60s",
    ),
    (
        "  - {at: 35s, heal: worker-2}",
        "  - {at: 35s, heal: worker-2, fault: down}",
        9,
        "timeline[1]",
        "either 'fault' or 'heal'",
    ),
    (
        "  - {at: 35s, heal: worker-2}",
        "  - {at: 35s, heal: worker-2}\n  - {at: 40s, heal: f1}",
        10,
        "timeline[2].heal",
        "f1 is already healed at 35s",
    ),
    (
        "  - {at: 35s, heal: worker-2}",
        "  - {at: 35s, heal: worker-2}\n  - {at: 40s, fault: restart, target: worker-1}\n"
        "  - {at: 45s, heal: worker-1}",
        11,
        "timeline[3].heal",
        "heals itself",
    ),
    (
        "target: worker-2}",
        "target: worker-2, id: worker-1}",
        8,
        "timeline[0].id",
        "is a service name",
    ),
    (
        "  - {at: 35s, heal: worker-2}",
        "  - {at: 35s, heal: worker-2}\n"
        "  - {at: 40s, fault: down, target: worker-1, every: 2s, for: 3s}",
        10,
        "timeline[2].for",
        "3s must be shorter than every 2s",
    ),
    (
        "  - {at: 35s, heal: worker-2}",
        "  - {at: 35s, heal: worker-2}\n"
        "  - {at: 40s, fault: down, target: worker-1, every: 4s, for: 3s, until: 70s}",
        10,
        "timeline[2].until",
        "past duration 60s",
    ),
    (
        "  - {at: 35s, heal: worker-2}",
        "  - {at: 35s, heal: worker-2}\n"
        "  - {at: 40s, fault: chaos, kinds: [partition], count: 9, hold: 2s}",
        10,
        "timeline[2].count",
        "past duration 60s",
    ),
    (
        "  - {at: 35s, heal: worker-2}",
        "  - {at: 35s, heal: worker-2}\n"
        "  - {at: 40s, fault: chaos, targets: [grape-1], kinds: [latency], count: 1, hold: 2s}",
        10,
        "timeline[2].kinds[0].latency_ms",
        "is required",
    ),
    (
        "  - {at: 35s, heal: worker-2}",
        "  - {at: 35s, heal: worker-2}\n"
        "  - {at: 40s, fault: chaos, targets: [grape-1], kinds: [partition], count: 1, hold: 2s}",
        10,
        "timeline[2].kinds[0]",
        "partition acts on worker-N, not 'grape-1'",
    ),
    ("seed: 7", "seed: 7\nseed: 8", 3, "seed", "duplicate key 'seed'"),
]


@pytest.mark.parametrize(("old", "new", "line", "field", "fragment"), ERROR_CASES)
def test_every_error_names_file_line_and_field(
    old: str, new: str, line: int, field: str, fragment: str
) -> None:
    assert old in BASE
    message = error_of(BASE.replace(old, new, 1))
    assert message.startswith(f"{LABEL}:{line}: {field}: "), message
    assert fragment in message, message


def test_missing_required_key_names_the_mapping_line() -> None:
    message = error_of(BASE.replace("load: {rate: 100}\n", ""))
    assert message == f"{LABEL}:1: load: is required"


def test_yaml_syntax_error_names_the_line() -> None:
    message = error_of(BASE.replace("duration: 60s", "duration: [60s"))
    assert re.match(rf"^{re.escape(LABEL)}:\d+: invalid YAML: ", message), message


def test_not_a_mapping_at_top() -> None:
    assert error_of("- a\n- b\n").startswith(f"{LABEL}:1: expected a mapping")


def test_unquoted_bound_is_a_clear_error() -> None:
    # `>= 0.999` unquoted is YAML's folded-scalar indicator: the parser says so, with a line
    message = error_of(BASE.replace('{availability: ">= 0.999", p99_ms', "{availability: >= 1, p"))
    assert message.startswith(f"{LABEL}:6: ")


def test_load_scenario_reports_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no such file"):
        load_scenario(tmp_path / "nope.yaml")


def test_clients_as_mappings_and_expectations_by_client_name() -> None:
    text = BASE.replace(
        "clients: [adaptive, random, oracle]",
        "clients:\n  - adaptive\n  - {name: client-adaptive-2, gossip: false}",
    ).replace("  adaptive: {", '  client-adaptive-2: {max_faulty_share: "<= 0.1"}\n  adaptive: {')
    s = parse(text)
    assert [(c.name, c.policy, c.gossip) for c in s.clients] == [
        ("client-adaptive", "adaptive", True),
        ("client-adaptive-2", "adaptive", False),
    ]
    assert [c.name for c in s.clients_for("adaptive")] == ["client-adaptive", "client-adaptive-2"]
    assert [c.name for c in s.clients_for("client-adaptive-2")] == ["client-adaptive-2"]


def test_local_runtime_takes_any_topology_and_client_names() -> None:
    text = BASE.replace("seed: 7", "seed: 7\nruntime: local\ntopology: {grapes: 1, workers: 5}")
    text = (
        text.replace(
            "clients: [adaptive, random, oracle]",
            "clients:\n  - {name: a1, policy: adaptive}\n  - {name: r1, policy: random}",
        )
        .replace("target: worker-2}", "target: worker-5}")
        .replace("heal: worker-2", "heal: worker-5")
    )
    s = parse(text)
    assert s.topology.workers == 5 and s.client_names() == ("a1", "r1")
    assert s.plan()[0].target == "worker-5"


CHAOS = BASE.replace(
    "  - {at: 35s, heal: worker-2}",
    "  - {at: 35s, heal: worker-2}\n"
    "  - {at: 8s, fault: down, target: worker-1, every: 1s, for: 500ms, until: 12s}\n"
    "  - {at: 36s, fault: chaos, id: mix, targets: [worker-1, worker-2, worker-3],\n"
    "     kinds: [partition, down, {latency: {latency_ms: 300, jitter_ms: 10}}],\n"
    "     count: 6, hold: 1s, every: 2s}",
)


def test_flapping_expands_into_numbered_faults() -> None:
    plan = parse(CHAOS).plan()
    flaps = [p for p in plan if p.fault_id.startswith("f2.")]
    assert [(p.at_s, p.action) for p in flaps[:4]] == [
        (8.0, "inject"),
        (8.5, "heal"),
        (9.0, "inject"),
        (9.5, "heal"),
    ]
    assert len(flaps) == 8  # starts at 8, 9, 10, 11 (until 12s is exclusive)


def test_chaos_plan_is_deterministic_per_seed_and_varies_across_seeds() -> None:
    s = parse(CHAOS)
    chaos = [p for p in s.plan() if p.fault_id.startswith("mix.")]
    assert len(chaos) == 12
    assert s.plan() == s.plan() == s.plan(7) == parse(CHAOS).plan()
    choices = {tuple((p.kind, p.target) for p in s.plan(seed)) for seed in range(20)}
    assert len(choices) > 1
    latency = [p for p in chaos if p.kind == "latency"]
    assert all(p.params == {"latency_ms": 300, "jitter_ms": 10} for p in latency)


def test_plan_is_time_ordered_with_heals_before_injections_at_one_instant() -> None:
    text = BASE.replace(
        "  - {at: 35s, heal: worker-2}",
        "  - {at: 35s, heal: worker-2}\n  - {at: 35s, fault: down, target: worker-1, for: 5s}",
    )
    plan = parse(text).plan()
    assert [(p.at_s, p.action) for p in plan] == [
        (15, "inject"),
        (35, "heal"),
        (35, "inject"),
        (40, "heal"),
    ]


def test_unhealed_fault_heals_at_the_end_and_restart_heals_itself() -> None:
    text = BASE.replace(
        "  - {at: 35s, heal: worker-2}\n", "  - {at: 20s, fault: restart, target: grape-1}\n"
    ).replace("steady_state", "#")
    plan = parse(text).plan()
    assert [(p.at_s, p.action, p.fault_id) for p in plan] == [
        (15, "inject", "f1"),
        (20, "inject", "f2"),
        (60, "heal", "f1"),
    ]


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    count=st.integers(min_value=1, max_value=10),
)
def test_chaos_never_overlaps_and_is_reproducible(seed: int, count: int) -> None:
    text = (
        "name: c\nruntime: local\nclients: [adaptive]\nload: {rate: 10}\nduration: 60s\n"
        "timeline:\n  - {at: 1s, fault: chaos, kinds: [partition, down, kill], "
        f"count: {count}, hold: 2s, every: 5s}}\n"
    )
    s = parse(text)
    plan = s.plan(seed)
    assert plan == s.plan(seed)
    assert len(plan) == 2 * count
    active: set[str] = set()
    for p in plan:
        if p.action == "inject":
            assert p.target not in active
            active.add(p.target)
        else:
            active.remove(p.target)
    assert [p.at_s for p in plan] == sorted(p.at_s for p in plan)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15s", 15.0), ("250ms", 0.25), ("1m30s", 90.0), ("1.5s", 1.5), (3, 3.0), ("2h", 7200.0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text, Field("f", 1, "x")) == seconds


@pytest.mark.parametrize("bad", ["soon", "15", "-1s", "1 sec", True, None, "15S"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ScenarioError, match=r"^f:3: a\.b: "):
        parse_duration(bad, Field("f", 3, "a.b"))


@given(
    op=st.sampled_from(["<=", "<", ">=", ">", "=="]), v=st.floats(-1e6, 1e6), x=st.floats(-1e6, 1e6)
)
def test_bound_round_trips_and_compares(op: str, v: float, x: float) -> None:
    b = parse_bound(f"{op} {v!r}", Field("f", 1, "m"))
    assert b == Bound(op, v)
    expected = {"<=": x <= v, "<": x < v, ">=": x >= v, ">": x > v, "==": x == v}[op]
    assert b.holds(x) is expected


def test_every_scenario_in_the_library_validates() -> None:
    files = sorted((ROOT / "scenarios").rglob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        s = load_scenario(path)
        assert s.plan(), f"{path} has no faults"
        ci = path.relative_to(ROOT).parts[:2] == ("scenarios", "ci")
        if ci:
            assert s.duration_s <= 30, f"{path}: CI scenarios stay <= 30 s"


def test_relative_bounds_parse_and_print_as_written() -> None:
    text = BASE.replace(
        '  adaptive: {detection_s: "<= 1", availability: ">= 0.999", recovery_s: "<= 5"}',
        '  adaptive: {availability: ">= random - 0.001", p99_ms: "<= random",'
        ' p99_ratio: "<= 1.5x oracle", detection_s: "<= 1"}',
    )
    e = parse(text).expect["adaptive"]
    assert [str(e[k]) for k in ("availability", "p99_ms", "p99_ratio", "detection_s")] == [
        ">= random - 0.001",
        "<= random",
        "<= 1.5x oracle",
        "<= 1",
    ]
    assert (e["p99_ratio"].ref, e["p99_ratio"].factor) == ("oracle", 1.5)
    assert e["availability"].against(0.99).value == pytest.approx(0.989)


def test_a_relative_bound_must_name_one_client() -> None:
    text = BASE.replace(
        "clients: [adaptive, random, oracle]",
        "clients:\n  - adaptive\n  - {name: client-adaptive-2}\n  - random",
    ).replace('recovery_s: "<= 5"', 'recovery_s: "<= 5"}\n  random: {p99_ms: "<= adaptive"')
    message = error_of(text)
    assert "names 2 clients (client-adaptive, client-adaptive-2); name one client" in message
