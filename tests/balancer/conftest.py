"""Fixtures for the balancer tests: a fake clock and a scripted transport on it."""

from __future__ import annotations

import pytest
from scripted_transport import ScriptedTransport

from lab.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1000.0)


@pytest.fixture
def transport(clock: FakeClock) -> ScriptedTransport:
    return ScriptedTransport(clock)
