"""``lab peers CLIENT [--watch]``: what one client thinks of each of its peers, live.

A table from the client's ``GET /peers``: the latency estimate its policy keeps (peak
EWMA, or the adaptive policy's blend), requests in flight, breaker state, the slow-start
weight, the gossip hints it holds, and successes/failures in its window. ``--watch``
redraws it every ``--interval`` until Ctrl-C (or ``--for`` seconds).

On the Compose lab CLIENT is one of the lab's clients. ``--runtime local`` starts a
throwaway lab with one client of that name, whose policy is ``--policy`` (default: the
name after ``client-``), and a light load (``--rate``) so the estimates have evidence.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
from typing import Any

from lab.errors import LabError, RuntimeUnavailable
from lab.learn.access import COMPOSE_CLIENT_URLS, add_runtime_option, local_lab, swarm_urls
from lab.loadgen.local_cluster import ClientSpec
from lab.loadgen.settings import parse_policy
from lab.procs import wait_until

WARM_ATTEMPTS = 5
"""Local runtime: the first table waits until every peer has this many verdicts."""
WARM_DEADLINE_S = 15.0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("client", help=f"the client ({', '.join(COMPOSE_CLIENT_URLS)})")
    parser.add_argument("--watch", action="store_true", help="redraw until Ctrl-C or --for")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between redraws [1]")
    parser.add_argument(
        "--for", dest="for_s", type=float, default=None, metavar="S",
        help="stop watching after S seconds [compose: never; local: 10]",
    )  # fmt: skip
    parser.add_argument("--policy", default=None, help="local runtime: the client's policy")
    parser.add_argument("--rate", type=float, default=20.0, help="local runtime: load [20/s]")
    add_runtime_option(parser)


def run(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        raise LabError("--interval must be positive")
    if args.runtime == "local":
        return _local(args)
    where, urls = (
        ("the swarm stack", swarm_urls("client"))
        if args.runtime == "swarm"
        else ("the Compose lab", COMPOSE_CLIENT_URLS)
    )
    url = urls.get(args.client)
    if url is None:
        raise LabError(f"no client {args.client!r} in {where}; clients: {', '.join(urls)}")
    return show(url, args.client, args.watch, args.interval, args.for_s)


def _local(args: argparse.Namespace) -> int:

    default = args.client.removeprefix("client-")
    policy = parse_policy(args.policy or default)
    with local_lab([ClientSpec(name=args.client, policy=policy, seed=1)]) as cluster:
        client = cluster.client(args.client)
        client.control.start_load(rate=args.rate, seed=1)
        wait_until(
            lambda: _warm(fetch(client.control.base)), WARM_DEADLINE_S, interval=0.1,
            what=f"every peer of {args.client} to have {WARM_ATTEMPTS} verdicts",
        )  # fmt: skip
        for_s = args.for_s if args.for_s is not None else 10.0
        try:
            return show(client.control.base, args.client, args.watch, args.interval, for_s)
        finally:
            client.control.stop_load()


def _warm(body: dict[str, Any]) -> bool:
    peers = body.get("peers") or []
    return bool(peers) and all(
        int(p.get("successes") or 0) + int(p.get("failures") or 0) >= WARM_ATTEMPTS for p in peers
    )


def fetch(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"{url}/peers", timeout=2.0) as resp:
            body = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise RuntimeUnavailable(
            f"{url}/peers: {getattr(exc, 'reason', exc)} (is the lab up? `lab status`)"
        ) from None
    if not isinstance(body, dict):
        raise RuntimeUnavailable(f"{url}/peers: unexpected answer")
    return body


def table(name: str, body: dict[str, Any]) -> Any:
    from rich.table import Table

    t = Table(title=f"{name} ({body.get('policy')}): peers", title_justify="left")
    widest = max((len(str(p.get("peer"))) for p in body.get("peers") or []), default=4)
    t.add_column("peer", no_wrap=True, min_width=widest)  # an address cut short is no address
    for col in ("latency ms", "in flight", "breaker", "weight", "hints", "ok", "failed"):
        t.add_column(col, justify="left" if col == "breaker" else "right")
    for p in body.get("peers") or []:
        latency = p.get("latency_s", p.get("ewma_s"))
        weight = p.get("weight")
        t.add_row(
            str(p.get("peer")),
            "-" if latency is None else f"{latency * 1000:.2f}",
            str(p.get("in_flight", 0)),
            str(p.get("breaker", "closed")),
            "-" if weight is None else f"{weight:.2f}",
            str(p.get("hints", 0)),
            str(p.get("successes", "-")),
            str(p.get("failures", "-")),
        )
    return t


def show(url: str, name: str, watch: bool, interval: float, for_s: float | None) -> int:
    from rich.console import Console
    from rich.live import Live

    console = Console()
    if not watch:
        console.print(table(name, fetch(url)))
        return 0
    end = None if for_s is None else time.monotonic() + for_s
    with Live(table(name, fetch(url)), console=console, auto_refresh=False) as live:
        while end is None or time.monotonic() < end:
            time.sleep(interval)  # the redraw period, not synchronisation
            live.update(table(name, fetch(url)), refresh=True)
    return 0
