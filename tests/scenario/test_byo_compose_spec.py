"""A learner's policy in a Compose scenario (issue 15, item 3): validation before anything
starts. The file must be in the repository's ``policies/`` (the only folder the Compose
clients mount), the class must be there (parsed, never run), one such policy per run,
under a name no built-in client has; each error names the file, the line and the field.
No Docker: ``root`` is a throwaway repository or this one."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lab.errors import ScenarioError
from lab.scenario.plan.byo import BYO_SERVICE, compose_root
from lab.scenario.plan.fit import HostFacts
from lab.scenario.plan.spec import parse_scenario

ROOT = Path(__file__).resolve().parents[2]
ROOMY = HostFacts(cores=2, mem_mib=24_000)
TEMPLATE = "policies/template.py:TemplatePolicy"

TEXT = """\
name: byo
duration: 20s
load: {{rate: 10}}
clients:
{clients}
expect:
  {key}: {{availability: ">= 0.5"}}
"""


def scenario(clients: str, key: str = "random", root: Path = ROOT) -> object:
    text = TEXT.format(clients=clients, key=key)
    return parse_scenario(text, "scenarios/byo.yaml", host=ROOMY, root=root)


def error(clients: str, root: Path = ROOT) -> str:
    with pytest.raises(ScenarioError) as info:
        scenario(clients, root=root)
    return str(info.value)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository as the Compose runtime finds one: compose.yaml beside policies/."""
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "mine.py").write_text("class MyPolicy:\n    pass\n")
    return tmp_path


def test_a_compose_scenario_takes_a_policy_from_policies_under_the_name_written() -> None:
    s = scenario(f"  - {TEMPLATE}\n  - random\n  - oracle", key=TEMPLATE)
    clients = [(c.name, c.policy) for c in s.clients]  # type: ignore[attr-defined]
    assert clients[0] == ("client-TemplatePolicy", TEMPLATE)
    assert s.runtime == "compose"  # type: ignore[attr-defined]
    assert list(s.expect) == [TEMPLATE]  # type: ignore[attr-defined]  # keyed as written
    named = scenario(f"  - {{name: client-you, policy: {TEMPLATE}}}\n  - random", key="client-you")
    assert named.clients[0].name == "client-you"  # type: ignore[attr-defined]


def test_the_file_is_read_from_the_repository_whatever_the_working_directory(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no policies/ here: the repository's is the one mounted
    s = scenario("  - policies/mine.py:MyPolicy\n  - random", root=repo)
    assert s.clients[0].policy == "policies/mine.py:MyPolicy"  # type: ignore[attr-defined]
    assert compose_root(elsewhere) in (ROOT, None)  # this package's tree comes first


@pytest.mark.parametrize(
    ("ref", "says"),
    [
        ("policies/nope.py:MyPolicy", "no file policies/nope.py"),
        ("policies/mine.py:Other", "no class 'Other' at top level (classes found: MyPolicy)"),
        ("tests/x.py:MyPolicy", "lives in the repository's policies/"),
        ("/abs/policies/mine.py:MyPolicy", "write policies/mine.py:MyPolicy"),
        ("policies/../policies/mine.py:MyPolicy", "only folder its clients mount"),
        ("mine.py:MyPolicy", "copy it there"),
    ],
)
def test_a_policy_the_compose_clients_cannot_run_is_refused_naming_file_line_and_field(
    repo: Path, ref: str, says: str
) -> None:
    text = error(f"  - random\n  - {ref}", root=repo)
    assert text.startswith("scenarios/byo.yaml:6: clients[1]: "), text
    assert says in text, text
    assert "use runtime: local" not in text or "or use runtime: local" in text


def test_the_policy_field_of_a_named_client_is_the_one_named(repo: Path) -> None:
    text = error("  - random\n  - {name: client-me,\n     policy: policies/mine.py:Nope}", repo)
    assert text.startswith("scenarios/byo.yaml:7: clients[1].policy: "), text


def test_a_symlink_out_of_policies_is_refused(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("class MyPolicy:\n    pass\n")
    (repo / "policies" / "link.py").symlink_to(outside)
    text = error("  - policies/link.py:MyPolicy", root=repo)
    assert "leads out of policies/" in text and "clients[0]" in text


def test_one_policy_of_yours_per_compose_run(repo: Path) -> None:
    (repo / "policies" / "two.py").write_text("class Two:\n    pass\n")
    text = error("  - policies/mine.py:MyPolicy\n  - random\n  - policies/two.py:Two", repo)
    assert text.startswith("scenarios/byo.yaml:7: clients[2]: "), text
    assert f"one policy of yours per run (in {BYO_SERVICE})" in text
    assert "client-MyPolicy already runs policies/mine.py:MyPolicy" in text
    assert "runtime: local" in text  # where several run side by side


def test_a_learner_client_cannot_take_a_built_in_clients_name(repo: Path) -> None:
    text = error("  - {name: client-oracle, policy: policies/mine.py:MyPolicy}", repo)
    assert "client-oracle runs policy oracle in the compose lab" in text
    (repo / "policies" / "random.py").write_text("class random:\n    pass\n")
    text = error("  - policies/random.py:random", repo)
    assert "'client-random' is the compose lab's random client" in text
    text = error("  - {name: worker-2, policy: policies/mine.py:MyPolicy}", repo)
    assert "'worker-2' is a service of the compose lab" in text


def test_an_unknown_compose_client_no_longer_says_use_the_local_runtime() -> None:
    text = error("  - {name: client-nobody, policy: random}")
    assert "has no client 'client-nobody'" in text and "policies/<file>.py:<Class>" in text
    assert "use runtime: local" not in text


def test_validation_takes_well_under_a_second() -> None:
    t0 = time.monotonic()
    for _ in range(20):
        scenario(f"  - {TEMPLATE}\n  - random\n  - oracle")
    assert (time.monotonic() - t0) / 20 < 0.1
