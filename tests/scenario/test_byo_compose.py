"""A learner's policy on the real Compose lab (issue 15, item 3): ``lab run`` starts
``client-byo`` with the policy the scenario names, keys its report rows and expectations
on the name as written, and removes the container after the run; a policy that raises,
hangs or answers a peer it was not given makes the client refuse load (410) and the run
abort with exit 2, rollback and an aborted report, the lab left as it was.

The broken policies are the local tests' fixtures (tests/balancer/policy_files/faulty.py),
copied into ``policies/`` for the test: it is the only folder the Compose clients mount.
Every run goes through ``lab run`` as a subprocess, as a learner runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from compose_lab import Lab, lab_session

from lab.scenario.faults.marker import MARKER
from lab.stack import health
from lab.stack.engine import Engine, service_name
from lab.toxiproxy_adapter import ToxiproxyAdapter

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
FAULTY = ROOT / "tests" / "balancer" / "policy_files" / "faulty.py"
TEMPLATE = "policies/template.py:TemplatePolicy"
BASE_CLIENTS = {"client-adaptive", "client-random", "client-round_robin", "client-oracle",
                "client-adaptive-2"}  # fmt: skip

SCENARIO = """\
name: byo-compose-{slug}
seed: 4
clients: ["{ref}", random]
load: {{rate: 20}}
duration: {duration}
warmup: 1s
settle: 1s
timeline:
  - {{at: 2s, fault: latency, target: worker-2, latency_ms: 50}}
  - {{at: 6s, heal: worker-2}}
expect:
  "{ref}": {{availability: ">= 0.5"}}
"""


@pytest.fixture(scope="session")
def compose_lab() -> Iterator[Lab]:
    yield from lab_session()


def run(tmp_path: Path, ref: str, slug: str, duration: str = "10s") -> tuple[int, str, Path]:
    """``lab run`` of a short scenario with ``ref`` beside random; (exit, output, reports)."""
    path = tmp_path / f"{slug}.yaml"
    path.write_text(SCENARIO.format(ref=ref, slug=slug, duration=duration))
    reports = tmp_path / "reports"
    r = subprocess.run(
        [sys.executable, "-m", "lab", "run", str(path), "--reports", str(reports)],
        cwd=ROOT, env={**os.environ, "COLUMNS": "200"}, capture_output=True, text=True,
        timeout=240, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return r.returncode, r.stdout + r.stderr, reports


def summary_of(reports: Path) -> dict[str, object]:
    (run_dir,) = [d for d in reports.iterdir() if d.is_dir()]
    found: dict[str, object] = json.loads((run_dir / "summary.json").read_text())
    return found


def assert_lab_back_to_base() -> None:
    """No client-byo, no toxic, no marker: the lab compose.yaml declares, healthy."""
    engine = Engine.connect()
    try:
        names = {service_name(c) for c in engine.containers(all=True)}
        assert "client-byo" not in names, names
        assert names >= BASE_CLIENTS, names
        states = health.states(engine, sorted(BASE_CLIENTS | {"toxiproxy", "worker-2"}))
        assert all(s.ready for s in states.values()), states
        proxies = ToxiproxyAdapter("http://127.0.0.1:8474", timeout=2.0).proxies()
        assert not [p.name for p in proxies.values() if p.toxics or not p.enabled]
    finally:
        engine.close()


def test_the_template_runs_in_client_byo_under_the_name_written(
    compose_lab: Lab, tmp_path: Path
) -> None:
    code, out, reports = run(tmp_path, TEMPLATE, "template")
    assert code in (0, 1), out[-4000:]  # the engine carried it out; the bound is the policy's
    assert "client-byo as client-TemplatePolicy (policies/template.py:TemplatePolicy)" in out
    summary = summary_of(reports)
    assert summary["status"] == "completed", summary.get("abort_reason")
    policies = summary["policies"]
    assert isinstance(policies, dict) and set(policies) == {TEMPLATE, "random"}
    assert policies[TEMPLATE]["client"] == "client-TemplatePolicy"
    assert policies[TEMPLATE]["requests"] > 100  # 20 req/s for 10 s, through the container
    expectations = summary["expectations"]
    assert isinstance(expectations, list)
    assert [(e["policy"], e["client"]) for e in expectations] == [
        (TEMPLATE, "client-TemplatePolicy")
    ]
    assert not (reports / MARKER).exists()
    assert_lab_back_to_base()


@pytest.fixture
def faulty_in_policies() -> Iterator[str]:
    """faulty.py copied into policies/ under a name of its own; removed after the test."""
    name = f"test_faulty_{uuid.uuid4().hex[:8]}.py"
    path = ROOT / "policies" / name
    shutil.copyfile(FAULTY, path)
    try:
        yield f"policies/{name}"
    finally:
        path.unlink(missing_ok=True)


@pytest.mark.parametrize(
    ("cls", "says"),
    [
        ("Raises", ["{file}:16", "IndexError", "Traceback", "peers[len(peers)]"]),
        ("Spins", ["ran longer than 100 ms", "{file}:2"]),
        ("Stranger", ["10.0.0.99:1337", "not one of the peers given to the policy"]),
    ],
)
def test_a_broken_policy_aborts_the_compose_run_with_exit_2_and_rolls_back(
    compose_lab: Lab, tmp_path: Path, faulty_in_policies: str, cls: str, says: list[str]
) -> None:
    ref = f"{faulty_in_policies}:{cls}"
    code, out, reports = run(tmp_path, ref, cls.lower(), duration="40s")
    assert code == 2, out[-4000:]
    flat = " ".join(out.split())  # the console wraps long lines at its width
    file = f"/tmp/{faulty_in_policies}"  # the learner's line, as the container sees it
    for text in says:
        assert text.format(file=file) in flat, out[-4000:]
    summary = summary_of(reports)
    assert summary["verdict"] == "aborted"
    assert f"client client-{cls}" in str(summary["abort_reason"])
    assert "410" in flat or "policy failed" in flat
    assert not (reports / MARKER).exists()  # the latency toxic undone
    assert_lab_back_to_base()


def test_a_policy_file_that_fails_to_import_is_refused_before_any_fault(
    compose_lab: Lab, tmp_path: Path
) -> None:
    name = f"test_broken_{uuid.uuid4().hex[:8]}.py"
    path = ROOT / "policies" / name
    shutil.copyfile(ROOT / "tests" / "balancer" / "policy_files" / "broken_import.py", path)
    try:
        code, out, reports = run(tmp_path, f"policies/{name}:Never", "import")
    finally:
        path.unlink(missing_ok=True)
    assert code == 2, out[-4000:]
    assert "client-byo (client-Never, policy" in out and "exited at start" in out, out[-4000:]
    assert f"/tmp/policies/{name}:5: importing" in out and "ZeroDivisionError" in out
    assert not reports.exists() or not [d for d in reports.iterdir() if d.is_dir()]
    assert not (reports / MARKER).exists()
    assert_lab_back_to_base()
