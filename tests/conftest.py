"""Shared fixtures: a scratch log directory per test and loopback addresses."""

from __future__ import annotations

import itertools
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
