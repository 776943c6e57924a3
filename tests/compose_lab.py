"""The Compose lab for Docker test suites: brought up once per session, reused when up.

Shared by tests/stack/test_stack_docker.py and tests/scenario/test_compose_runtime.py
(imported by name: tests/conftest.py puts this directory on ``sys.path``; each suite's
session fixture is ``yield from lab_session()``), so both suites
agree on what "the lab is up" means and skip for the same reasons. The suites skip loudly,
with the reason, where no Docker engine answers or a service the lab needs is not written
yet; a lab that fails to come up is an error, not a skip.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from lab.errors import RuntimeUnavailable
from lab.stack import health
from lab.stack.engine import Engine

LAB = [sys.executable, "-m", "lab"]
CORE = ("grape-1", "grape-2", "grape-3", "worker-1", "worker-2", "worker-3", "toxiproxy")
NEEDED_MODULES = {"lab.grape.command": "lab grape", "lab.worker.command": "lab worker"}


@dataclass
class Lab:
    engine: Engine
    was_up: bool  # the lab was up before the session: leave it up at the end

    def up(self) -> subprocess.CompletedProcess[str]:
        return lab("up", "--quiet", "--skip", "client" if not client_ready() else "")

    def down(self) -> subprocess.CompletedProcess[str]:
        return lab("down")


def lab(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LAB, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def client_ready() -> bool:
    return _has("lab.loadgen.command") and _has("lab.grenache.link")


def already_up(engine: Engine, services: tuple[str, ...] = CORE) -> bool:
    st = health.states(engine, services)
    return all(s.ready for s in st.values())


def lab_session() -> Iterator[Lab]:
    """The body of each suite's session fixture ``compose_lab`` (``yield from`` it).

    A plain generator rather than an imported fixture: a fixture imported by name is
    shadowed by every test's parameter of that name, which linters rightly flag.
    """
    try:
        engine = Engine.connect()
    except RuntimeUnavailable as exc:
        pytest.skip(f"Docker lab tests skipped: {exc}")
    handle = Lab(engine=engine, was_up=already_up(engine))
    missing = [cmd for mod, cmd in NEEDED_MODULES.items() if not _has(mod)]
    if missing and not handle.was_up:
        pytest.skip(f"Docker lab tests skipped: `{'`, `'.join(missing)}` not written yet")
    if not handle.was_up:
        done = handle.up()
        if done.returncode != 0:
            pytest.fail(f"`lab up` failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    try:
        yield handle
    finally:
        engine.close()
