"""LEARNING_GUIDE.md cannot rot: every command it shows is run and its output's shape
compared with the output printed in the guide (issue 15).

A ``console`` block is one command (``$ .venv/bin/lab ...``) and the output it printed
when the guide was written. Shape, not values: every run of digits is one placeholder
(addresses, ports, times, figures and run ids differ from run to run; a figure is one
placeholder whatever its digits, sign or decimals: 1 and 0.99399 are both a figure), so is a verdict
(whether a policy passes is test_challenge_known_answers.py's to judge, but for the
template's challenge 1, whose only run is this one: KNOWN_VERDICTS), spaces collapse,
and each line of the guide's output must appear in the real output, in order. The
learner's own steps (``make venv``, ``cp``, runs of ``policies/mine.py``) are ``sh``
blocks: they need files only the learner writes. The commands run on the runtime the
guide shows them on: the local one, except a ``lab run`` without ``--runtime`` (the
file's own runtime, Compose in the guide), which runs on the real Compose lab (marked
``docker``, brought up if it is not); a report's path is one placeholder too (the test
writes its reports to a temporary folder).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from compose_lab import Lab, lab_session
from learn_support import ROOT, lab

GUIDE = ROOT / "LEARNING_GUIDE.md"
BLOCK = re.compile(r"```console\n(.*?)```", re.S)


def blocks(text: str) -> list[tuple[str, list[str]]]:
    """(command, output lines) of every console block."""
    out = []
    for body in BLOCK.findall(text):
        first, *rest = body.rstrip("\n").split("\n")
        assert first.startswith("$ "), f"a console block starts with '$ ': {first!r}"
        out.append((first[2:], rest))
    return out


def shape(line: str) -> str:
    line = re.sub(r"\S*/(report\.html|[^/\s]+-challenge-[^/\s]+)\b", "REPORT", line)
    line = re.sub(r"\b(pass|FAIL|PASS)\b", "VERDICT", line)  # judged by the known answers
    line = re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "#", line)  # 1, 0.99399, -0.09: one number
    line = re.sub(r"^\s*\[#:#:#\]", "", line)  # a log line's time, shown when its second is new
    line = re.sub(r"[─━│┃┏┓┗┛┡┩└┘┌┐├┤┬┴┼╇╈╋═]+", "|", line)  # table rules vary with widths
    return " ".join(line.split())


def missing(expected: list[str], actual: str) -> list[str]:
    """Lines of ``expected`` not found, in order, among ``actual``'s (by shape)."""
    got = [shape(ln) for ln in actual.splitlines()]
    at, lost = 0, []
    for line in expected:
        want = shape(line)
        if not want:
            continue
        try:
            at = got.index(want, at) + 1
        except ValueError:
            lost.append(line)
    return lost


def test_the_guide_has_its_ten_steps_and_real_outputs() -> None:
    text = GUIDE.read_text()
    steps = re.findall(r"^### Step (\d+)\.", text, re.M)
    assert steps == [str(n) for n in range(1, 11)]
    assert len(re.findall(r"^## Phase \d", text, re.M)) == 4
    for command, output in blocks(text):
        assert command.startswith(".venv/bin/lab "), command
        assert output and "PENDING" not in output, f"no real output for {command}"
    assert "LEARNING_GUIDE.md" in (ROOT / "README.md").read_text()
    assert set(KNOWN_VERDICTS) <= {command for command, _ in blocks(text)}  # still applies


def test_shape_ignores_values_but_not_words() -> None:
    assert not missing(["availability 0.99 0.63527 0.662 0.99399"], "availability 0.99 1 0.6 -0.1")
    assert not missing(
        ["grape-1 http://127.0.0.20:4001: 3 peers"], "grape-1 http://127.0.0.9:51: 3 peers"
    )
    assert missing(["grape-1: 3 peers"], "grape-1: 3 workers")
    assert not missing(["[14:34:06] healed f1  x.py:108"], "           healed f2  x.py:97")


COMMANDS = blocks(GUIDE.read_text())


def on_compose(command: str) -> bool:
    """A ``lab run`` that names no runtime runs on its file's: the guide's are Compose's."""
    argv = shlex.split(command)[1:]
    return argv[0] == "run" and "--runtime" not in argv


def _params() -> list[Any]:
    """Every local command; the adaptive ladder's runs are marked ``ladder`` (``make test-ladder``).

    ``make test`` runs the rest (the challenge 1 run of the template among them): the
    ladder's four ~35 s runs do not fit CI's 30 minutes beside the other suites.
    """
    out = []
    for command, expected in COMMANDS:
        if on_compose(command):
            continue
        ladder = " challenge " in f" {command} " and "--policy adaptive" in command
        marks = [pytest.mark.ladder] if ladder else []
        out.append(pytest.param(command, expected, id=command, marks=marks))
    return out


@pytest.mark.toxiproxy
@pytest.mark.slow
@pytest.mark.timeout(320)
@pytest.mark.parametrize("command,expected", _params())
def test_every_command_of_the_guide_prints_what_the_guide_shows(
    command: str, expected: list[str], tmp_path: Path
) -> None:
    argv = shlex.split(command)[1:]
    if argv[0] in ("challenge", "run"):
        argv += ["--reports", str(tmp_path)]  # keep the repository's reports/ clean
    r = lab(*argv, timeout=300)
    assert r.returncode in (0, 1), f"{command} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    lost = missing(expected, r.stdout + r.stderr)
    assert not lost, f"{command}: not in the output:\n" + "\n".join(lost) + f"\n---\n{r.stdout}"
    if command in KNOWN_VERDICTS:
        code, lines = KNOWN_VERDICTS[command]
        assert r.returncode == code, r.stdout + r.stderr[-3000:]
        for line in lines:
            assert line in r.stdout, f"{line!r} not in:\n{r.stdout}"


KNOWN_VERDICTS = {
    ".venv/bin/lab challenge 1 --policy policies/template.py:TemplatePolicy --runtime local": (
        1,
        ["FAIL challenge 1: avoid a blackholed worker", "read next: LEARNING_GUIDE.md step"],
    ),
}
"""Verdicts judged here because the guide's run is the only run of that command: the
template fails challenge 1 (it sends to the hole like random) and says what to read."""


@pytest.fixture(scope="session")
def compose_lab() -> Iterator[Lab]:
    yield from lab_session()


COMPOSE_COMMANDS = [pytest.param(c, e, id=c) for c, e in COMMANDS if on_compose(c)]


def test_the_guide_shows_the_compose_form_of_a_learners_policy() -> None:
    assert any("byo.yaml" in c for c, _ in COMMANDS if on_compose(c))


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(320)
@pytest.mark.parametrize("command,expected", COMPOSE_COMMANDS)
def test_every_compose_command_of_the_guide_prints_what_the_guide_shows(
    command: str, expected: list[str], compose_lab: Lab
) -> None:
    # a short reports folder: `lab run` prints the report's path on a console 100 wide,
    # and pytest's tmp_path is long enough to wrap it
    with tempfile.TemporaryDirectory(prefix="guide-") as reports:
        argv = [*shlex.split(command)[1:], "--reports", reports]
        r = subprocess.run(
            [sys.executable, "-m", "lab", *argv],
            cwd=ROOT, env={**os.environ, "COLUMNS": "100"}, capture_output=True, text=True,
            timeout=300, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    assert r.returncode in (0, 1), f"{command} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    lost = missing(expected, r.stdout + r.stderr)
    assert not lost, f"{command}: not in the output:\n" + "\n".join(lost) + f"\n---\n{r.stdout}"
