"""``lab grape`` settings: flags over environment over defaults; bad values name the field."""

from __future__ import annotations

import argparse

import pytest

from lab.errors import SettingsError
from lab.grape import settings as gs


def parse(argv: list[str]) -> gs.GrapeSettings:
    parser = argparse.ArgumentParser(prog="lab grape", exit_on_error=False)
    gs.configure(parser)
    return gs.from_args(parser.parse_args(argv))


def test_defaults_follow_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("BIND", "DHT_PORT", "API_PORT", "BOOTSTRAP", "PEER_MAX_AGE", "CLUSTER_ID",
                "ADVERTISE", "RPC_TIMEOUT"):  # fmt: skip
        monkeypatch.delenv(f"LAB_GRAPE_{var}", raising=False)
    s = parse([])
    assert (s.bind, s.dht_port, s.api_port) == ("0.0.0.0", 20001, 30001)
    assert s.bootstrap == () and s.peer_max_age == 120.0
    assert s.cluster_id == "grenache-lab" and s.advertise is None
    assert s.rpc_timeout <= 1.0


def test_environment_is_used_and_flags_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_GRAPE_DHT_PORT", "21001")
    monkeypatch.setenv("LAB_GRAPE_PEER_MAX_AGE", "5s")
    monkeypatch.setenv("LAB_GRAPE_BOOTSTRAP", "grape-2:20001, 10.0.0.3:20002")
    monkeypatch.setenv("LAB_GRAPE_CLUSTER_ID", "from-env")
    s = parse(["--dht-port", "21002", "--peer-max-age", "500ms"])
    assert s.dht_port == 21002
    assert s.peer_max_age == 0.5
    assert s.bootstrap == (("grape-2", 20001), ("10.0.0.3", 20002))
    assert s.cluster_id == "from-env"


@pytest.mark.parametrize(
    ("text", "seconds"), [("1s", 1.0), ("1", 1.0), ("250ms", 0.25), ("2m", 120.0)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse(["--peer-max-age", text]).peer_max_age == seconds


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--dht-port", "70000"], "--dht-port"),
        (["--api-port", "http"], "--api-port"),
        (["--bootstrap", "grape-2"], "--bootstrap"),
        (["--bootstrap", "grape-2:x"], "--bootstrap"),
        (["--bootstrap", "bad host:1"], "--bootstrap"),
        (["--peer-max-age", "soon"], "--peer-max-age"),
        (["--peer-max-age", "-1s"], "--peer-max-age"),
        (["--bind", "grape-1"], "--bind"),
        (["--advertise", "0.0.0.0"], "--advertise"),
        (["--cluster-id", ""], "--cluster-id"),
        (["--rpc-timeout", "0"], "--rpc-timeout"),
    ],
)
def test_bad_flags_name_the_flag(argv: list[str], needle: str) -> None:
    parser = argparse.ArgumentParser(prog="lab grape", exit_on_error=False)
    gs.configure(parser)
    with pytest.raises(argparse.ArgumentError, match=needle):
        parser.parse_args(argv)


def test_a_bad_environment_variable_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_GRAPE_API_PORT", "0")
    with pytest.raises(SettingsError, match="LAB_GRAPE_API_PORT"):
        parse([])


def test_cross_field_checks_name_the_field() -> None:
    with pytest.raises(SettingsError, match="peer_max_age"):
        gs.GrapeSettings(peer_max_age=0.01)
    with pytest.raises(SettingsError, match="rpc_timeout"):
        gs.GrapeSettings(rpc_timeout=60)


def test_advertised_host() -> None:
    assert gs.GrapeSettings(advertise="grape-1").advertised_host() == "grape-1"
    assert gs.GrapeSettings(bind="127.0.0.7").advertised_host() == "127.0.0.7"
    derived = gs.GrapeSettings(bind="0.0.0.0").advertised_host()
    assert derived and derived != "0.0.0.0"
