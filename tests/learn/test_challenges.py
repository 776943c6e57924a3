"""The challenge ladder's catalog and judging (fast: no lab; the runs are in
test_learn_local.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lab.errors import SettingsError
from lab.learn.access import COMPOSE_CLIENT_URLS, COMPOSE_GRAPE_URLS
from lab.learn.challenges import CHALLENGES, YOU, challenge, check_policy, judge, with_policy
from lab.scenario.plan.spec import load_scenario

ROOT = Path(__file__).resolve().parents[2]


def test_every_challenge_is_a_valid_scenario_with_you_random_and_oracle() -> None:
    assert [c.number for c in CHALLENGES] == list(range(1, 7))
    for c in CHALLENGES:
        sc = with_policy(load_scenario(c.file), "adaptive")
        names = {cl.name: cl.policy for cl in sc.clients}
        assert names[YOU] == "adaptive"
        assert names["client-random"] == "random" and names["client-oracle"] == "oracle"
        assert set(sc.expect) == {YOU}, f"{c.file}: only client-you is graded"
        assert sc.runtime == "local"
        assert "LEARNING_GUIDE.md step" in c.read_next


def test_a_policy_is_checked_before_anything_runs() -> None:
    assert check_policy("random") == "random"
    assert check_policy("policies/template.py:TemplatePolicy").endswith("TemplatePolicy")
    with pytest.raises(SettingsError, match="neither"):
        check_policy("fastest")
    with pytest.raises(SettingsError, match="no challenge 7"):
        challenge(7)


def _summary(measured: float, verdict: str, status: str = "completed") -> dict[str, object]:
    return {
        "status": status,
        "verdict": "fail" if verdict == "fail" else "pass",
        "abort_reason": None if status == "completed" else "client-you: policy failed: x.py:3",
        "policies": {
            "p.py:P": {"client": YOU, "availability": measured},
            "random": {"client": "client-random", "availability": 0.67},
            "oracle": {"client": "client-oracle", "availability": 1.0},
        },
        "expectations": [
            {"client": YOU, "metric": "availability", "bound": ">= 0.99", "bound_value": 0.99,
             "measured": measured, "verdict": verdict, "detail": ""},
            {"client": "client-random", "metric": "availability", "bound": ">= 0.5",
             "bound_value": 0.5, "measured": 0.67, "verdict": "pass", "detail": ""},
        ],
    }  # fmt: skip


def test_judge_reads_only_client_you_and_shows_the_references() -> None:
    v = judge(_summary(0.999, "pass"))
    assert v.passed and len(v.targets) == 1
    (t,) = v.targets
    assert (t.metric, t.measured, t.bound_value) == ("availability", 0.999, 0.99)
    assert t.references == {"client-random": 0.67, "client-oracle": 1.0}
    assert not judge(_summary(0.7, "fail")).passed
    aborted = judge(_summary(0.7, "fail", status="aborted"))
    assert not aborted.passed and aborted.aborted is not None and "x.py:3" in aborted.aborted


def test_list_prints_every_challenge() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "lab", "challenge", "--list"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    lines = out.strip().splitlines()
    assert lines[0].split() == ["N", "challenge", "grades", "scenario"]
    assert len(lines) == 1 + len(CHALLENGES)
    assert all(ln.split()[-1].startswith("scenarios/challenges/") for ln in lines[1:])


def test_compose_addresses_agree_with_compose_yaml() -> None:
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = doc["services"]
    published = {
        name: "http://" + s["ports"][0].rsplit(":", 1)[0] for name, s in services.items()
        if "ports" in s
    }  # fmt: skip
    for name, url in COMPOSE_CLIENT_URLS.items():
        assert published[name] == url
    assert [published[f"grape-{i}"] for i in (1, 2, 3)] == list(COMPOSE_GRAPE_URLS)
    for name in COMPOSE_CLIENT_URLS:
        volumes = services[name].get("volumes", [])
        assert volumes == ["./policies:/tmp/policies:ro"], name  # read-only, nothing else
