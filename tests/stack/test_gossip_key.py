"""The Compose lab's gossip key: made once per lab, owner-only, forgotten at ``lab down``."""

from __future__ import annotations

import stat
from pathlib import Path

import yaml

from lab.stack import gossip_key
from lab.stack.engine import Paths


def test_one_key_per_lab_owner_only_and_new_after_down(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    first = gossip_key.ensure(paths)[gossip_key.ENV]
    assert len(first) == 64
    assert stat.S_IMODE((tmp_path / ".cache" / "gossip.key").stat().st_mode) == 0o600
    assert gossip_key.ensure(paths)[gossip_key.ENV] == first  # a second `lab up`: same key
    gossip_key.forget(paths)
    gossip_key.forget(paths)  # twice is fine
    assert gossip_key.ensure(paths)[gossip_key.ENV] != first


def test_a_truncated_key_is_replaced(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    gossip_key.ensure(paths)
    (tmp_path / ".cache" / "gossip.key").write_text("short")
    assert len(gossip_key.ensure(paths)[gossip_key.ENV]) == 64


def test_compose_hands_the_key_to_every_client() -> None:
    model = yaml.safe_load((Path(__file__).resolve().parents[2] / "compose.yaml").read_text())
    clients = {n: s for n, s in model["services"].items() if n.startswith("client-")}
    assert len(clients) >= 5  # the field policies' clients (profile 'policies') too
    for service in clients.values():
        env = service["environment"]
        assert env["LAB_CLIENT_GOSSIP_KEY"] == "${LAB_GOSSIP_KEY:-}"
        assert env["PYTHONUNBUFFERED"] == "1"
