"""The swarm the lab runs on, as one small JSON file (``.cache/swarm/state.json``).

Why a file: ``lab up --engine swarm`` builds (or is pointed at) a swarm, and later commands
(``lab run``, ``lab status``, ``lab down``) run in other processes; they need the nodes'
engine addresses and, for a swarm the lab built itself, what to tear down. The file is
written atomically (temporary file, fsync, rename) so a crash never leaves half a state
that ``lab down`` would misread.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.errors import RuntimeUnavailable
from lab.stack.engine import Paths

STATE_VERSION = 1
"""Bumped when the file's shape changes; an unknown version is refused, not guessed at."""


@dataclass(frozen=True)
class SwarmNode:
    """One Swarm node: its name, how the lab reaches its engine, and its network address."""

    name: str
    """The node's hostname, which is also its Swarm node name (``lab-n1``)."""
    docker_host: str
    """A ``DOCKER_HOST`` value for this node's engine (``unix://…/docker.sock``, ``tcp://``)."""
    address: str
    """Where other nodes and the host reach this node (published ports listen here)."""
    manager: bool


@dataclass(frozen=True)
class SwarmState:
    """The nodes of the swarm, whether the lab built it, and the stack's name."""

    nodes: tuple[SwarmNode, ...]
    local: bool
    """True when ``--local-nodes N`` built it on this machine (``lab down`` tears it down)."""
    stack: str = "lab"
    """The ``docker stack deploy`` name."""
    local_info: dict[str, Any] = field(default_factory=dict)
    """Local swarms only: what teardown needs (holder pids, engine pids, data roots, links).

    Kept as plain JSON data because only :mod:`lab.swarm.local` reads it back."""

    def manager(self) -> SwarmNode:
        """The first manager node: the one ``docker stack`` commands go to."""
        for node in self.nodes:
            if node.manager:
                return node
        raise RuntimeUnavailable(
            "the swarm state names no manager node: run `lab down` and `lab up --engine swarm`"
        )

    def node(self, name: str) -> SwarmNode:
        """The node called ``name`` (its hostname), or KeyError naming the known ones."""
        for node in self.nodes:
            if node.name == name:
                return node
        known = ", ".join(n.name for n in self.nodes) or "none"
        raise KeyError(f"no swarm node {name!r} (nodes: {known})")


def state_file(paths: Paths) -> Path:
    """``.cache/swarm/state.json`` of this checkout."""
    return paths.cache / "swarm" / "state.json"


def to_json(state: SwarmState) -> dict[str, Any]:
    """The file's content for ``state`` (a plain dict; pure, for tests)."""
    return {
        "version": STATE_VERSION,
        "stack": state.stack,
        "local": state.local,
        "nodes": [
            {
                "name": n.name,
                "docker_host": n.docker_host,
                "address": n.address,
                "manager": n.manager,
            }
            for n in state.nodes
        ],
        "local_info": state.local_info,
    }


def from_json(data: object, source: str = "swarm state") -> SwarmState:
    """The state described by ``data``; RuntimeUnavailable naming ``source`` if malformed."""
    fix = f"{source} is not a swarm state the lab wrote: run `lab down` (it removes the file)"
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise RuntimeUnavailable(f"{fix} (version {_version(data)!r}, expected {STATE_VERSION})")
    try:
        nodes = tuple(
            SwarmNode(
                name=str(n["name"]),
                docker_host=str(n["docker_host"]),
                address=str(n["address"]),
                manager=bool(n["manager"]),
            )
            for n in data["nodes"]
        )
        info = data.get("local_info") or {}
        if not isinstance(info, dict):
            raise TypeError("local_info is not an object")
        return SwarmState(
            nodes=nodes, local=bool(data["local"]), stack=str(data["stack"]), local_info=info
        )
    except (KeyError, TypeError) as exc:
        raise RuntimeUnavailable(f"{fix} ({exc})") from exc


def _version(data: object) -> object:
    return data.get("version") if isinstance(data, dict) else None


def load(paths: Paths) -> SwarmState | None:
    """The saved state, or None when there is no swarm (no file)."""
    path = state_file(paths)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RuntimeUnavailable(f"cannot read {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise RuntimeUnavailable(
            f"{path} is not JSON ({exc}): run `lab down` (it removes the file)"
        ) from exc
    return from_json(data, str(path))


def save(paths: Paths, state: SwarmState) -> None:
    """Write ``state`` atomically: a reader sees the old file or the new one, never half."""
    path = state_file(paths)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w") as f:
            json.dump(to_json(state), f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove(paths: Paths) -> None:
    """Forget the swarm (no error when there was none)."""
    state_file(paths).unlink(missing_ok=True)
