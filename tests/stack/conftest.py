"""The Compose lab for the ``docker`` tests: up once per session (reused if already up).

Skips loudly, with the reason, where no Docker engine answers or a service the lab needs
is not written yet; a lab that fails to come up is an error, not a skip.
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


def client_ready() -> bool:
    return importlib.util.find_spec("lab.loadgen.command") is not None


def _already_up(engine: Engine) -> bool:
    st = health.states(engine, CORE)
    return all(s.ready for s in st.values())


@pytest.fixture(scope="session")
def compose_lab() -> Iterator[Lab]:
    try:
        engine = Engine.connect()
    except RuntimeUnavailable as exc:
        pytest.skip(f"Docker lab tests skipped: {exc}")
    missing = [cmd for mod, cmd in NEEDED_MODULES.items() if importlib.util.find_spec(mod) is None]
    if missing:
        pytest.skip(f"Docker lab tests skipped: `{'`, `'.join(missing)}` not written yet")
    handle = Lab(engine=engine, was_up=_already_up(engine))
    if not handle.was_up:
        done = handle.up()
        if done.returncode != 0:
            pytest.fail(f"`lab up` failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    try:
        yield handle
    finally:
        engine.close()
