"""``lab down``: remove the lab's toxics, containers and networks; leave nothing behind.

Toxics go first, through Toxiproxy's API (``POST /reset``), so that a crashed scenario's
leftovers are visibly cleaned even if someone keeps the Toxiproxy container. Then Compose
removes the project; finally anything still labelled with the project (a service renamed
in compose.yaml since it started, a container created by hand) is removed by label.
"""

from __future__ import annotations

import argparse
import sys
import time

import docker.errors

from lab.errors import FaultError, RuntimeUnavailable
from lab.netfault.cleanup import remove_all_helpers
from lab.scenario.faults.janitor import cleanup_leftovers
from lab.stack import gossip_key, toxiapi
from lab.stack.engine import Engine, Paths
from lab.swarm import command as swarm_command
from lab.swarm import state as swarm_state
from lab.toxiproxy_adapter import ToxiproxyAdapter


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=int,
        default=5,
        help="seconds each container gets to stop before SIGKILL [5]",
    )
    parser.add_argument(
        "--engine",
        choices=("auto", "compose", "swarm"),
        default="auto",
        help="which lab: the swarm one when `lab up --engine swarm` left one, else the "
        "Compose one [auto]",
    )


def remove_toxics() -> int:
    """Reset Toxiproxy when it answers; the number of toxics removed (0 when it is not up)."""
    try:
        swept = ToxiproxyAdapter(toxiapi.DEFAULT_API, timeout=2.0).sweep()
    except FaultError:
        return 0
    return len(swept.removed)


def run(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    # a crashed run's faults first; force: what cannot be undone, down removes anyway
    leftovers = cleanup_leftovers(log=_log, force=True)
    if leftovers.found:
        _log(f"cleaned up after run {leftovers.run_id}")
    paths = Paths.find()
    if args.engine == "swarm" or (args.engine == "auto" and swarm_state.load(paths)):
        return _swarm_down(paths, t0)
    engine = Engine.connect()
    try:
        for name in remove_all_helpers(engine):
            _log(f"netfault: removed helper {name}")
        removed = remove_toxics()
        if removed:
            _log(f"toxiproxy: removed {removed} leftover toxic(s)")
        engine.compose("down", "--remove-orphans", "--volumes", "--timeout", str(args.timeout))
        for c in engine.containers(all=True):
            try:
                c.remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.DockerException as exc:
                raise RuntimeUnavailable(f"cannot remove container {c.name}: {exc}") from exc
        for n in engine.networks():
            try:
                n.remove()
            except docker.errors.NotFound:
                pass
            except docker.errors.DockerException as exc:
                raise RuntimeUnavailable(f"cannot remove network {n.name}: {exc}") from exc
        gossip_key.forget(engine.paths)
        _log(f"lab down: done in {time.monotonic() - t0:.1f}s")
        return 0
    finally:
        engine.close()


def _swarm_down(paths: Paths, t0: float) -> int:
    """The swarm stack removed (and a local swarm torn down); leftovers named, exit 1."""
    left = swarm_command.down(paths, _log)
    if left is None:
        _log("lab down: no swarm is up")
        return 0
    gossip_key.forget(paths)
    for item in left:
        _log(f"lab down: left behind: {item}")
    _log(f"lab down (swarm): done in {time.monotonic() - t0:.1f}s")
    return 1 if left else 0
