"""Shared fixtures: a scratch log directory per test and loopback addresses."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

_hosts = itertools.cycle([f"127.0.0.{i}" for i in range(2, 250)])


@pytest.fixture
def loopback_host() -> str:
    """A distinct 127.0.0.x address, so services of one test look like separate hosts."""
    return next(_hosts)


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    d = tmp_path / "logs"
    d.mkdir()
    return d


@pytest.fixture(autouse=True)
def no_docker_unless_marked(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests not marked ``docker`` get an engine address where nothing answers.

    Code under test finds the engine through ``DOCKER_HOST`` (the SDK, the socket probe,
    the compose CLI), and the janitor's Compose hooks act on whatever engine answers: a
    unit test must not stop another run's helper container on a developer's lab.
    """
    if request.node.get_closest_marker("docker") is not None:
        yield None
        return
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DOCKER_HOST", "unix:///nonexistent/grenache-lab-tests-no-docker.sock")
        yield None
