"""Fuzz the scenario loader (``lab validate``'s whole job) with 10,000 seeded inputs.

Every input must end, within 1 s, either as a valid scenario whose plan resolves or as a
``ScenarioError`` that names the file and a line (``fuzz-N.yaml:12: ...``) in a message
of bounded size; never another exception, never a traceback. Inputs are the library's
scenario files mutated line by line and value by value, with hostile values from the
issue (deep nesting, 5,000-digit numbers, huge strings, ``1.0e+300``, NaN/Infinity,
anchors and aliases, a step repeating every 2 ms). A seeded loop, not hypothesis: the
same inputs every run, so a failure reproduces exactly (the seed is in the message).
"""

from __future__ import annotations

import random
import re
import resource
import time
from pathlib import Path

import pytest

from lab.cli import main
from lab.errors import ScenarioError
from lab.scenario.plan.spec import Scenario, parse_scenario
from lab.scenario.plan.yamlsource import MAX_BYTES
from lab.scenario.run.validate_command import describe_plan

ROOT = Path(__file__).resolve().parents[2]
INPUTS = 10_000
SEED = 20_261_202
PER_INPUT_S = 1.0
MAX_MESSAGE = 2_000
MAX_RSS_GROWTH_MB = 300

HOSTILE = [
    "[" * 5000 + "]" * 5000,
    "{a: " * 200 + "1" + "}" * 200,
    "9" * 5000,
    "-" + "9" * 400,
    "1.0e+300",
    "-1.0e+300",
    ".nan",
    ".inf",
    "-.inf",
    "0x7fffffffffffffffffff",
    "1e400",
    "x" * 200_000,
    "'" + "y" * 100_000 + "'",
    "&a [1, 2]",
    "*a",
    "!!binary aGVsbG8=",
    "!!python/object:os.system ls",
    "!!set {a, b}",
    "2001-02-30",
    "2001-12-14t21:59:43.10-05:00",
    "~",
    "''",
    "[]",
    "{}",
    "true",
    "-1",
    "0",
    "2ms",
    "1ms",
    "0.0001s",
    "999999999h",
    "1m30s",
    "\ufeff\u2028\x85",
    "\x00",
    "<<: {x: 1}",
    "? [a]\n: b",
    "|\n  block",
    "%YAML 1.1",
    "---",
    "...",
]
WORDS = [
    "name", "clients", "load", "rate", "duration", "timeline", "at", "fault", "heal", "target",
    "every", "for", "until", "chaos", "kinds", "count", "hold", "expect", "seed", "runtime",
    "topology", "warmup", "settle", "steady_state", "partition", "latency", "worker-2",
    "adaptive", "payload_bytes", "timeout", "latency_ms", "id", "targets",
]  # fmt: skip
VALUE = re.compile(r"(?<=: )[^,}\]\n]+")
FILE_LINE = re.compile(r"^fuzz-\d+\.yaml:\d+: ")


def library() -> list[str]:
    """The library's scenarios without their comment lines (half the text, none of the schema)."""
    files = sorted((ROOT / "scenarios").rglob("*.yaml"))
    assert files
    return [
        "\n".join(ln for ln in f.read_text(encoding="utf-8").splitlines() if not ln.startswith("#"))
        for f in files
    ]


def mutate(text: str, rng: random.Random) -> str:
    """One to three mutations of a scenario's text, each a plausible mistake or attack."""
    lines = text.splitlines()
    for _ in range(rng.randint(1, 3)):
        if not lines:
            lines = [""]
        i = rng.randrange(len(lines))
        op = rng.randrange(9)
        if op == 0:  # a hostile value in place of a value
            matches = list(VALUE.finditer(lines[i]))
            if matches:
                m = rng.choice(matches)
                lines[i] = lines[i][: m.start()] + rng.choice(HOSTILE) + lines[i][m.end() :]
        elif op == 1:  # a number turned huge, tiny, negative or fractional
            lines[i] = re.sub(
                r"\d+", lambda _m: rng.choice(["0", "-3", "1e300", "0.0001", "9" * 40]), lines[i]
            )
        elif op == 2:
            del lines[i]
        elif op == 3:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif op == 4:  # a key misspelt or swapped for another
            lines[i] = re.sub(r"\b[a-z_]+(?=:)", lambda _m: rng.choice(WORDS), lines[i], count=1)
        elif op == 5:  # indentation broken
            lines[i] = " " * rng.randrange(0, 7) + lines[i].lstrip()
        elif op == 6:  # characters flipped
            chars = list(lines[i]) or [" "]
            for _ in range(rng.randint(1, 4)):
                chars[rng.randrange(len(chars))] = rng.choice(":-[]{}&*!|>'\"#,? \t0a")
            lines[i] = "".join(chars)
        elif op == 7:  # a hostile line of its own
            lines.insert(i, f"{rng.choice(WORDS)}: {rng.choice(HOSTILE)}")
        else:  # cut short
            lines = lines[: i + 1]
            lines[-1] = lines[-1][: rng.randrange(len(lines[-1]) + 1)]
    return "\n".join(lines) + "\n"


def generate(rng: random.Random, bases: list[str]) -> str:
    kind = rng.randrange(20)
    if kind == 0:  # a repeating step far too fast, or a chaos step far too long
        every = rng.choice(["2ms", "0.2s", "1s"])
        for_ = rng.choice(["1ms", "100ms", "150ms"])
        return (
            "name: fast\nclients: [adaptive]\nload: {rate: 10}\nduration: 60s\ntimeline:\n"
            f"  - {{at: 1s, fault: partition, target: worker-1, every: {every}, for: {for_}}}\n"
        )
    if kind == 1:  # random characters, or a file one byte too big
        size = rng.choice([10, 100, 1000])
        text = "".join(chr(rng.randrange(1, 0x3000)) for _ in range(size))
        return text if rng.random() < 0.9 else "name: big\n" + "#" * MAX_BYTES
    return mutate(rng.choice(bases), rng)


def check_one(text: str, label: str) -> str:
    """``valid`` or ``error``; anything else raises (and fails the test)."""
    try:
        scenario = parse_scenario(text, label)
        assert isinstance(scenario, Scenario)
        scenario.plan()
        describe_plan(scenario)
    except ScenarioError as exc:
        message = str(exc)
        assert FILE_LINE.match(message), f"{label}: no file:line in {message[:200]!r}"
        assert len(message) <= MAX_MESSAGE, f"{label}: a {len(message)}-char message"
        assert "Traceback" not in message
        return "error"
    return "valid"


def test_10000_scenario_inputs_each_end_as_a_valid_plan_or_a_file_line_error() -> None:
    bases = library()
    rng = random.Random(SEED)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    counts = {"valid": 0, "error": 0}
    slowest = (0.0, -1)
    for n in range(INPUTS):
        text = generate(rng, bases)
        t0 = time.perf_counter()
        counts[check_one(text, f"fuzz-{n}.yaml")] += 1
        took = time.perf_counter() - t0
        slowest = max(slowest, (took, n))
        assert took < PER_INPUT_S, f"input {n} (seed {SEED}) took {took:.2f} s"
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss0
    assert growth < MAX_RSS_GROWTH_MB, f"max RSS grew {growth:.0f} MB"
    # both outcomes are exercised: the mutations are neither all fatal nor all harmless
    assert counts["valid"] > INPUTS // 50 and counts["error"] > INPUTS // 2, counts
    print(f"scenario fuzz: {counts}, slowest input {slowest[1]} {slowest[0] * 1000:.0f} ms")


def test_the_issues_inputs_are_file_line_errors_within_a_second() -> None:
    """Issue 13's reproductions: each was a traceback, 22 s / 2.2 GB, or accepted."""
    base = "name: x\nclients: [adaptive]\nload: {rate: 10}\nduration: 30s\n"
    cases = {
        "deep": ("a: " + "[" * 5000 + "]" * 5000 + "\n", ":1: nested deeper than 32 levels"),
        "seed": (base + "seed: " + "9" * 5000 + "\n", ":5: an integer of 5000 digits"),
        "runtime": (base + "runtime: " + "x" * (50 * 2**20) + "\n", ":1: 52428869 bytes"),
        "duration": (base.replace("30s", "1.0e+300"), ":4: duration: must be at most 21600s"),
        "every": (
            base + "timeline:\n  - {at: 1s, fault: partition, target: worker-1, "
            "every: 2ms, for: 1ms}\n",
            ":6: timeline[0].for: must be at least 100ms",
        ),
        "repeats": (
            base.replace("30s", "6h") + "timeline:\n  - {at: 1s, fault: partition, "
            "target: worker-1, every: 1s, for: 0.5s}\n",
            ":6: timeline: the plan would inject 21599 faults by this step; at most 1000",
        ),
    }
    for name, (text, expected) in cases.items():
        t0 = time.perf_counter()
        try:
            parse_scenario(text, f"fuzz-{name}.yaml")
        except ScenarioError as exc:
            message = str(exc)
        else:
            raise AssertionError(f"{name}: accepted")
        assert time.perf_counter() - t0 < PER_INPUT_S, name
        assert expected in message, (name, message[:300])
        assert len(message) < 300


def test_brackets_in_quoted_text_and_comments_are_not_nesting() -> None:
    text = (
        "name: x\n"
        f"description: '{'[' * 40}'  # {'{' * 40}\n"
        "clients: [adaptive]\nload: {rate: 10}\nduration: 30s\n"
    )
    assert parse_scenario(text, "q.yaml").description == "[" * 40


def test_a_seed_flag_out_of_range_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(ROOT / "scenarios" / "partition.yaml")
    for bad in ("9" * 5000, "-1", str(2**63), "1e3"):
        with pytest.raises(SystemExit) as exc:
            main(["validate", "--seed", bad, spec])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "--seed: expected an integer within 0..9223372036854775807" in err
    assert main(["validate", "--seed", str(2**63 - 1), spec]) == 0
