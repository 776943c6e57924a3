"""``lab call [--policy P] [PAYLOAD]``: one RPC through a chosen policy, every attempt shown.

What ``lab client`` does for each request of its load, once and out loud: look the service
up on the grapes, give the peers to the policy, and send one request with the client's
retries and timeouts (:class:`~lab.balancer.client.BalancedClient`). Each attempt prints
its peer, its time and how it ended, so a retry after a timeout, or a breaker refusing a
peer, is visible. ``--repeat N`` sends N requests one after another through the same
policy, so it learns between them as a client does.

This process is the lab's client here: a policy from a file is loaded and guarded as in
``lab client`` (:mod:`lab.balancer.policy_guard`). On the Compose lab the workers are
reachable only on the lab's network, so the call runs in a client container
(``--runtime local`` needs no Docker; ``--runtime swarm`` runs in a client task of the stack).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from collections.abc import Sequence
from typing import Any

from lab.balancer.client import BalancedClient
from lab.balancer.policy_file import PolicyFault
from lab.balancer.registry import make_policy
from lab.clock import SYSTEM_CLOCK
from lab.errors import LabError, SettingsError
from lab.grenache.link import Link
from lab.grenache.transport import HttpTransport
from lab.learn.access import COMPOSE_GRAPE_URLS, add_runtime_option, local_lab, swarm_urls
from lab.learn.in_container import run_in_client, run_in_swarm_client
from lab.loadgen.settings import parse_policy
from lab.settings import parse_duration

MAX_REPEAT = 100


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "payload", nargs="?", default='{"hello": "grenache"}', help="JSON request body"
    )
    parser.add_argument(
        "--policy", type=_policy, default="adaptive",
        help="built-in name or path/to/file.py:ClassName [adaptive]",
    )  # fmt: skip
    parser.add_argument("--service", default="rpc_test", help="service to call [rpc_test]")
    parser.add_argument(
        "--timeout", type=_duration, default=1.0, help="the request's deadline [1s]"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help=f"send N requests [1, at most {MAX_REPEAT}]",
    )
    parser.add_argument(
        "--grapes", default=None, metavar="URLS",
        help="grape API URLs, comma separated (overrides --runtime)",
    )  # fmt: skip
    add_runtime_option(parser)


def _policy(text: str) -> str:
    try:
        return parse_policy(text)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    try:
        payload = json.loads(args.payload)
    except ValueError as exc:
        raise LabError(f"PAYLOAD: not JSON: {exc}") from None
    if not 1 <= args.repeat <= MAX_REPEAT:
        raise LabError(f"--repeat: 1 to {MAX_REPEAT}, got {args.repeat}")
    if args.grapes:
        grapes = [g.strip() for g in args.grapes.split(",") if g.strip()]
        return asyncio.run(call(grapes, args.policy, args.service, payload, args))
    if args.runtime == "local":
        with local_lab() as cluster:
            return asyncio.run(call(cluster.grape_urls, args.policy, args.service, payload, args))

    if args.runtime == "swarm":
        grapes = _lab_grapes(len(swarm_urls("grape")))
        return run_in_swarm_client(["call", *_forwarded(args), "--grapes", ",".join(grapes)])
    grapes = _lab_grapes(len(COMPOSE_GRAPE_URLS))
    return run_in_client(["call", *_forwarded(args), "--grapes", ",".join(grapes)])


def _lab_grapes(count: int) -> list[str]:
    """The grapes as the lab's network names them (what a client container reaches)."""
    return [f"http://grape-{i}:30001" for i in range(1, count + 1)]


def _forwarded(args: argparse.Namespace) -> list[str]:
    return [
        args.payload, "--policy", args.policy, "--service", args.service,
        "--timeout", f"{args.timeout}s", "--repeat", str(args.repeat),
    ]  # fmt: skip


async def call(
    grapes: Sequence[str], policy_name: str, service: str, payload: Any, args: argparse.Namespace
) -> int:
    """Look up, send ``args.repeat`` requests, print every attempt; 1 if the last failed."""

    clock = SYSTEM_CLOCK
    policy = make_policy(policy_name, clock=clock, rng=random.Random())
    link = Link(list(grapes), clock=clock)
    transport = HttpTransport()
    ok = False
    try:
        peers = await link.lookup(service)
        print(f"lookup {service}: {len(peers)} peers: {', '.join(sorted(peers))}")
        client = BalancedClient(policy, transport, clock=clock, name="lab-call")
        client.set_peers(peers)
        for n in range(1, args.repeat + 1):
            ok = await _one(client, n, service, payload, args.timeout)
    finally:
        await transport.aclose()
        await link.aclose()
    return 0 if ok else 1


async def _one(client: Any, n: int, service: str, payload: Any, deadline_s: float) -> bool:

    t0 = SYSTEM_CLOCK.monotonic()
    try:
        result = await client.request(service, payload, timeout=deadline_s)
    except PolicyFault:
        raise  # not the request's failure but the policy's: exit 2 with its traceback
    except LabError as exc:
        attempts = tuple(getattr(exc, "attempts", ()))
        _attempts(n, attempts, t0)
        took = (SYSTEM_CLOCK.monotonic() - t0) * 1000
        print(f"request {n}: failed after {took:.1f} ms: {type(exc).__name__}: {exc}")
        return False
    _attempts(n, result.attempts, t0)
    took = (SYSTEM_CLOCK.monotonic() - t0) * 1000
    reply = json.dumps(result.value, separators=(",", ":"))
    print(f"request {n}: ok after {len(result.attempts)} attempt(s), {took:.1f} ms: {reply}")
    return True


def _attempts(n: int, attempts: Sequence[Any], t0: float) -> None:
    for i, a in enumerate(attempts, 1):
        ms = (a.end - a.start) * 1000
        at = (a.start - t0) * 1000
        hedge = " (hedge)" if a.hedge else ""
        err = f": {a.error}" if a.error else ""
        print(
            f"  attempt {n}.{i}{hedge}: peer {a.peer} at +{at:.1f} ms took {ms:.1f} ms"
            f" -> {a.outcome.value}{err}"
        )
