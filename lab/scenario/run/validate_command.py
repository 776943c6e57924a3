"""``lab validate FILE...``: check scenario files and touch nothing.

Prints ``OK`` or the error (``file:line: field: message``) for each file; exit 0 when
all are valid, 2 otherwise. ``--plan`` also prints each resolved plan, the same text
``lab run --dry-run`` shows (:func:`describe_plan`).
"""

from __future__ import annotations

import argparse
import sys

from lab.errors import ScenarioError
from lab.scenario.plan.quantities import format_duration
from lab.scenario.plan.spec import Scenario, load_scenario

MAX_SEED = 2**63 - 1


def seed_arg(text: str) -> int:
    """``--seed``: an integer within 0..2**63-1, as a scenario's ``seed`` (argparse says so)."""
    if len(text) > 30 or not text.strip().isdigit() or int(text) > MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected an integer within 0..{MAX_SEED}")
    return int(text)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="scenario YAML files")
    parser.add_argument("--plan", action="store_true", help="also print each file's resolved plan")
    parser.add_argument(
        "--seed", type=seed_arg, default=None, help="resolve chaos steps with this seed"
    )


def _params(params: dict[str, object]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(params.items()))


def describe_plan(scenario: Scenario, seed: int | None = None) -> str:
    """The scenario and its resolved steps as plain text (``lab run --dry-run``)."""
    s = scenario
    use_seed = s.seed if seed is None else seed
    lines = [
        f"scenario {s.name} ({s.path})" + (f": {s.description}" if s.description else ""),
        f"  runtime {s.runtime}, topology {s.topology.grapes} grapes + "
        f"{s.topology.workers} workers, seed {use_seed}",
        f"  duration {format_duration(s.duration_s)}, warmup {format_duration(s.warmup_s)}, "
        f"settle {format_duration(s.settle_s)}",
        f"  load {s.load.rate:g} req/s per client ({s.load.arrival}), "
        f"{s.load.payload_bytes} B payload, {s.load.service}, "
        f"deadline {format_duration(s.load.timeout_s)}",
        "  clients: "
        + ", ".join(
            f"{c.name} ({c.policy}{'' if c.gossip else ', gossip off'}"
            f"{'' if c.rate is None else f', {c.rate:g} req/s'})"
            for c in s.clients
        ),
    ]
    if s.steady_state:
        lines.append("  steady state: " + ", ".join(f"{m} {b}" for m, b in s.steady_state.items()))
    lines.append("  plan:")
    plan = s.plan(seed)
    if not plan:
        lines.append("    (no faults)")
    for p in plan:
        extra = f"  {_params(p.params)}" if p.params and p.action == "inject" else ""
        lines.append(
            f"    {format_duration(p.at_s):>8}  {p.action:<6} {p.fault_id:<10} "
            f"{p.kind:<18} {p.target}{extra}"
        )
    if s.expect:
        lines.append("  expect:")
        for key, metrics in s.expect.items():
            lines.append(f"    {key}: " + ", ".join(f"{m} {b}" for m, b in metrics.items()))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    bad = 0
    for name in args.files:
        try:
            scenario = load_scenario(name)
            plan = scenario.plan(args.seed)
        except ScenarioError as exc:
            bad += 1
            print(f"{exc}", file=sys.stderr)
            continue
        print(f"OK {name}: {scenario.name}, {len(plan)} steps, "
              f"{format_duration(scenario.duration_s)}")  # fmt: skip
        if args.plan:
            print(describe_plan(scenario, args.seed))
    return 2 if bad else 0
