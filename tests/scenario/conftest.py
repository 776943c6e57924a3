"""Fixtures shared by the scenario engine's tests against a real Toxiproxy server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from engine_support import toxiproxy_server

from lab.toxiproxy_adapter import ToxiproxyAdapter


@pytest.fixture(scope="module")
def toxi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToxiproxyAdapter]:
    """One real Toxiproxy server per test module, through the engine's adapter."""
    with toxiproxy_server(tmp_path_factory.mktemp("tp")) as tp:
        yield ToxiproxyAdapter(tp.api)
