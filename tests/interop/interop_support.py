"""Helpers the interop tests import (kept out of conftest.py, which is not importable
by name once several test folders each have one)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from node_harness import NodeServer, wait_joined

from lab.loadgen.local_cluster import ClusterSpec, LocalCluster


def _host_cycle() -> Iterator[str]:
    """127.0.0.150-254 over and over (ports are checked free per host anyway)."""
    while True:
        yield from (f"127.0.0.{i}" for i in range(150, 255))


_CYCLE = _host_cycle()


def hosts() -> Iterator[str]:
    return _CYCLE


def our_grapes(logdir: Path, count: int, peer_max_age: str = "120s") -> LocalCluster:
    """``count`` ``lab grape`` processes bootstrapped off each other, joined."""
    spec = ClusterSpec(grapes=count, workers=0, peer_max_age=peer_max_age)
    cluster = LocalCluster(spec, logdir, hosts=hosts()).start()
    try:
        if count > 1:
            wait_joined(cluster.grape_urls)
    except BaseException:
        cluster.stop()
        raise
    return cluster


NodeServerFactory = Callable[..., NodeServer]
