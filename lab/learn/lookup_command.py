"""``lab lookup SERVICE [--grape N]``: which peers each grape's DHT knows for a service.

The same ``POST /lookup`` a Grenache client sends (``lab.grenache.link``), asked of each
grape on its own, so a grape that lags behind the others (a partition, a restart) shows
as a shorter list: Kademlia gives no promise that every node answers alike.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from lab.errors import LabError, LookupEmpty
from lab.grenache.link import Link
from lab.learn.access import COMPOSE_GRAPE_URLS, add_runtime_option, local_lab, swarm_urls


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("service", nargs="?", default="rpc_test", help="service name [rpc_test]")
    parser.add_argument(
        "--grape", type=int, default=None, metavar="N", help="ask only grape N (1, 2, ...)"
    )
    add_runtime_option(parser)


def run(args: argparse.Namespace) -> int:
    if args.runtime == "local":
        with local_lab() as cluster:
            return show(cluster.grape_urls, args.service, args.grape)
    if args.runtime == "swarm":
        return show(list(swarm_urls("grape").values()), args.service, args.grape)
    return show(COMPOSE_GRAPE_URLS, args.service, args.grape)


def show(urls: Sequence[str], service: str, only: int | None) -> int:
    """Print each grape's answer; exit 1 when a grape asked knows no peer."""
    if only is not None and not 1 <= only <= len(urls):
        raise LabError(f"--grape {only}: the lab has grapes 1 to {len(urls)}")
    chosen = [(i, u) for i, u in enumerate(urls, 1) if only is None or i == only]
    answers = asyncio.run(_lookups([u for _, u in chosen], service))
    empty = False
    for (i, url), answer in zip(chosen, answers, strict=True):
        if isinstance(answer, str):
            print(f"grape-{i} {url}: error: {answer}")
            empty = True
            continue
        print(f"grape-{i} {url}: {len(answer)} peers for {service}")
        for peer in sorted(answer):
            print(f"  {peer}")
        empty = empty or not answer
    return 1 if empty else 0


async def _lookups(urls: Sequence[str], service: str) -> list[list[str] | str]:

    async def one(url: str) -> list[str] | str:
        link = Link([url])
        try:
            return await link.lookup(service)
        except LookupEmpty:
            return []
        except LabError as exc:
            return f"{type(exc).__name__}: {exc}"
        finally:
            await link.aclose()

    return list(await asyncio.gather(*(one(u) for u in urls)))
