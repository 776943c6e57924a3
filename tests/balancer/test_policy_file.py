"""Bring-your-own policy: naming a file's class, and the guard around the learner's code."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from lab.balancer.policies import Pick
from lab.balancer.policy_file import (
    PolicyFault,
    check_policy_ref,
    is_policy_ref,
    parse_policy_ref,
)
from lab.balancer.policy_guard import guard_of
from lab.balancer.registry import make_policy
from lab.clock import FakeClock
from lab.errors import NoPeerAvailable, SettingsError
from lab.history import Outcome

HERE = Path(__file__).parent / "policy_files"
FAULTY = HERE / "faulty.py"
REPO = Path(__file__).resolve().parents[2]
PEERS = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]


def build(ref: str, limit_s: float | None = None):  # type: ignore[no-untyped-def]
    policy = make_policy(ref, clock=FakeClock(), rng=random.Random(1))
    guard = guard_of(policy)
    assert guard is not None
    if limit_s is not None:
        guard.limit_s = limit_s
    policy.set_peers(PEERS)
    return policy, guard


def test_reference_form_is_told_apart_from_names() -> None:
    assert is_policy_ref("policies/mine.py:MyPolicy")
    assert not is_policy_ref("adaptive")
    assert not is_policy_ref("policies/mine:MyPolicy")
    ref = parse_policy_ref("a/b.py:C")
    assert (ref.path, ref.class_name) == (Path("a/b.py"), "C")
    with pytest.raises(SettingsError, match="not a class name"):
        parse_policy_ref("a/b.py:1x")


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (f"{HERE}/missing.py:X", "no file .*missing.py"),
        (f"{FAULTY}:Absent", "no class 'Absent' at top level .*classes found: Raises"),
    ],
)
def test_static_check_names_the_file_and_runs_nothing(ref: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        check_policy_ref(ref)
    # broken_import.py divides by zero when run: a static check must not run it
    assert check_policy_ref(f"{HERE}/broken_import.py:Never").class_name == "Never"


def test_a_syntax_error_names_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "mine.py"
    bad.write_text("import random\n\nclass Mine(\n    pass\n")
    with pytest.raises(SettingsError, match=r"mine.py:\d+: policy file is not valid Python"):
        check_policy_ref(f"{bad}:Mine")


def test_loading_errors_name_the_learners_line() -> None:
    with pytest.raises(PolicyFault) as info:
        make_policy(f"{HERE}/broken_import.py:Never", clock=FakeClock(), rng=random.Random(0))
    assert "broken_import.py:5" in str(info.value)
    assert "ZeroDivisionError" in info.value.report()
    with pytest.raises(SettingsError, match="must be a class deriving from"):
        make_policy(f"{FAULTY}:NotAPolicy", clock=FakeClock(), rng=random.Random(0))
    with pytest.raises(PolicyFault, match=r"faulty.py:\d+: BadInit\(...\) raised"):
        make_policy(f"{FAULTY}:BadInit", clock=FakeClock(), rng=random.Random(0))
    with pytest.raises(SettingsError, match="takes no options"):
        make_policy(f"{FAULTY}:Raises", clock=FakeClock(), rng=random.Random(0), metrics={})


def test_template_loads_is_labelled_by_its_reference_and_picks_known_peers() -> None:
    ref = f"{REPO}/policies/template.py:TemplatePolicy"
    policy, guard = build(ref)
    assert policy.name == ref
    picks = {policy.choose().peer for _ in range(50)}
    assert picks == set(PEERS)
    pick = policy.choose(frozenset(PEERS[:2]))
    assert pick.peer == PEERS[2]
    policy.finished(pick, 0.01, Outcome.ERROR)
    with pytest.raises(NoPeerAvailable):
        policy.choose(frozenset(PEERS))
    assert guard.fault is None


def test_an_exception_trips_the_guard_with_file_line_and_traceback() -> None:
    policy, guard = build(f"{FAULTY}:Raises")
    told: list[PolicyFault] = []
    guard.on_fault(told.append)
    with pytest.raises(PolicyFault) as info:
        policy.choose()
    fault = info.value
    assert fault.where is not None and fault.where.endswith("faulty.py:16")
    assert "IndexError" in str(fault)
    assert "Traceback" in fault.report() and "peers[len(peers)]" in fault.report()
    assert told == [fault]
    with pytest.raises(PolicyFault) as again:  # tripped: the same fault, no new call
        policy.choose()
    assert again.value is fault and told == [fault]
    assert [s.peer for s in policy.stats()] == PEERS  # views keep answering


@pytest.mark.parametrize("cls", ["Spins", "Sleeps", "Swallows"])
def test_a_hang_is_interrupted_where_it_hangs(cls: str) -> None:
    policy, guard = build(f"{FAULTY}:{cls}", limit_s=0.05)
    t0 = time.monotonic()
    with pytest.raises(PolicyFault, match="ran longer than 50 ms") as info:
        policy.choose()
    assert time.monotonic() - t0 < 5.0  # bounded: a hang does not hold the client
    assert info.value.where is not None and "faulty.py:" in info.value.where
    assert guard.fault is info.value


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        ("Stranger", "not one of the peers given to the policy"),
        ("NotAPick", "it must return a Pick"),
    ],
)
def test_a_wrong_answer_is_a_fault(cls: str, message: str) -> None:
    policy, _guard = build(f"{FAULTY}:{cls}")
    with pytest.raises(PolicyFault, match=message) as info:
        policy.choose()
    line = (
        next(
            n
            for n, text in enumerate(FAULTY.read_text().splitlines(), 1)
            if text.startswith(f"class {cls}(")
        )
        + 3
    )  # the class line, its name, a blank line, then def choose
    assert info.value.where == f"{FAULTY}:{line}"


def test_a_peer_already_tried_is_a_wrong_answer() -> None:
    policy, _guard = build(f"{FAULTY}:Repeats")
    assert policy.choose() == Pick(PEERS[0])
    with pytest.raises(PolicyFault, match="already tried"):
        policy.choose(frozenset({PEERS[0]}))


def test_feedback_methods_are_guarded_too() -> None:
    policy, guard = build(f"{FAULTY}:FeedbackRaises")
    pick = policy.choose()
    with pytest.raises(PolicyFault, match=r"finished\(\) raised: KeyError"):
        policy.finished(pick, 0.01, Outcome.OK)
    assert guard.fault is not None


def test_lab_client_and_scenarios_take_a_reference() -> None:
    from lab.errors import ScenarioError
    from lab.loadgen.settings import parse_policy
    from lab.scenario.plan.spec import parse_scenario

    ref = f"{REPO}/policies/template.py:TemplatePolicy"
    assert parse_policy(ref) == ref
    with pytest.raises(SettingsError, match="no file"):
        parse_policy("policies/nope.py:Mine")
    text = (
        "name: byo\nruntime: local\ntopology: {grapes: 1, workers: 2}\n"
        'clients: ["%s", random]\nload: {rate: 5}\nduration: 20s\n'
    )
    sc = parse_scenario(text % ref, "byo.yaml")
    assert [(c.name, c.policy) for c in sc.clients] == [
        ("client-TemplatePolicy", ref),
        ("client-random", "random"),
    ]
    with pytest.raises(ScenarioError, match=r"byo.yaml:4: .*no class 'Mine'"):
        parse_scenario(text % f"{REPO}/policies/template.py:Mine", "byo.yaml")


def test_an_older_guard_still_stops_a_hang_after_a_newer_one_was_made() -> None:
    policy, _guard = build(f"{FAULTY}:Spins", limit_s=0.05)
    build(f"{FAULTY}:Raises")  # a second guarded policy in the same process
    with pytest.raises(PolicyFault, match="ran longer than 50 ms"):
        policy.choose()
