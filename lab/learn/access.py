"""Where the hands-on commands find the lab: the Compose lab's fixed addresses, or a
throwaway local lab started for the one command.

The Compose addresses are those ``compose.yaml`` publishes on 127.0.0.1 (grape APIs
30001-30003, client control ports 8501-8505); a test checks they still agree. The local
lab is the local runtime's (:class:`~lab.loadgen.local_cluster.LocalCluster`: grapes,
workers behind a real Toxiproxy, clients as ``lab client`` processes on 127.0.0.x),
started for one command and stopped, its logs removed, when the command ends. On the
swarm stack the addresses are read from the swarm (:func:`swarm_urls`).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from lab.errors import RuntimeUnavailable
from lab.loadgen.local_cluster import ClientSpec, ClusterSpec, LocalCluster, find_toxiproxy

ROOT = Path(__file__).resolve().parents[2]

COMPOSE_GRAPE_URLS: tuple[str, ...] = (
    "http://127.0.0.1:30001",
    "http://127.0.0.1:30002",
    "http://127.0.0.1:30003",
)
COMPOSE_CLIENT_URLS: dict[str, str] = {
    "client-adaptive": "http://127.0.0.1:8501",
    "client-random": "http://127.0.0.1:8502",
    "client-round_robin": "http://127.0.0.1:8503",
    "client-oracle": "http://127.0.0.1:8504",
    "client-adaptive-2": "http://127.0.0.1:8505",
}


def add_runtime_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runtime", choices=("compose", "swarm", "local"), default="compose",
        help="the Compose lab (`lab up`), the swarm stack (`lab up --engine swarm`) or a "
        "throwaway local lab for this command [compose]",
    )  # fmt: skip


def swarm_urls(kind: str) -> dict[str, str]:
    """The swarm stack's ``kind`` services (``grape``: API, ``client``: control) by name:
    the node running each task and the port it publishes there, as ``lab run`` reads them
    (Swarm places tasks, so there are no fixed addresses to list)."""
    from lab.scenario.runtime.swarm import SwarmRuntime  # why: docker-py, only when asked

    runtime = SwarmRuntime.connect()
    try:
        targets = runtime.targets()
    finally:
        runtime.close()
    found = {
        name: t.control_url
        for name, t in sorted(targets.items(), key=lambda kv: _ordinal(kv[0]))
        if t.kind == kind and t.control_url
    }
    if not found:
        raise RuntimeUnavailable(f"the swarm stack has no running {kind}: `lab status` says why")
    return found


def _ordinal(name: str) -> tuple[str, int]:
    """``grape-10`` after ``grape-9``."""
    base, _, n = name.rpartition("-")
    return (base, int(n)) if n.isdigit() else (name, 0)


@contextlib.contextmanager
def local_lab(
    clients: Sequence[ClientSpec] = (), *, grapes: int = 3, workers: int = 3
) -> Iterator[LocalCluster]:
    """A local lab for the length of one command (see the module docstring)."""
    binary = find_toxiproxy(ROOT)
    if binary is None:
        raise RuntimeUnavailable(
            "the local runtime needs the Toxiproxy server binary: run `make images` "
            "(it builds .cache/toxiproxy/...) or set LAB_TOXIPROXY_BIN"
        )
    logdir = Path(tempfile.mkdtemp(prefix="lab-learn-"))
    spec = ClusterSpec(grapes=grapes, workers=workers, toxiproxy=True, clients=tuple(clients))
    cluster = LocalCluster(spec, logdir, toxiproxy_binary=binary)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(logdir, ignore_errors=True)
