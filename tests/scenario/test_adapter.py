"""The Toxiproxy adapter against a real Toxiproxy 2.12 server and a real TCP backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_support import echo_server, round_trip, toxiproxy_server

from lab.errors import FaultError
from lab.procs import free_port
from lab.toxiproxy_adapter import ToxiproxyAdapter, parse_version, validate_toxic

pytestmark = pytest.mark.toxiproxy


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToxiproxyAdapter]:
    with toxiproxy_server(tmp_path_factory.mktemp("tp")) as tp:
        yield ToxiproxyAdapter(tp.api, timeout=2.0)


@pytest.fixture
def proxy(server: ToxiproxyAdapter) -> Iterator[tuple[str, str]]:
    """A proxy ``p`` in front of an echo server; yields (name, listen address)."""
    with echo_server() as upstream:
        listen = f"127.0.0.1:{free_port()}"
        server.create_proxy("p", listen, upstream)
        try:
            yield "p", listen
        finally:
            server.delete_proxy("p")


def test_version_is_checked(server: ToxiproxyAdapter) -> None:
    assert parse_version(server.check_version()) >= (2, 5)  # type: ignore[operator]
    assert parse_version("v2.1.4") == (2, 1)
    assert parse_version("git") is None


def test_unknown_attribute_is_refused_before_the_server_ignores_it(
    server: ToxiproxyAdapter, proxy: tuple[str, str]
) -> None:
    with pytest.raises(FaultError, match=r"proxy p toxic t: .*unknown attribute\(s\) latnecy"):
        server.add_toxic("p", "t", "latency", {"latnecy": 300})
    assert server.toxics("p") == []


@pytest.mark.parametrize(
    ("type_", "attrs", "stream", "message"),
    [
        ("latncy", {}, "downstream", "unknown toxic type 'latncy'"),
        ("latency", {"latency": -1}, "downstream", "latency must be an integer >= 0"),
        ("latency", {"latency": 1.5}, "downstream", "latency must be an integer >= 0"),
        ("timeout", {"timeout": 0}, "sideways", "stream must be upstream or downstream"),
    ],
)
def test_validate_toxic_names_the_problem(
    type_: str, attrs: dict[str, object], stream: str, message: str
) -> None:
    with pytest.raises(FaultError, match=message):
        validate_toxic(type_, attrs, stream, 1.0)


def test_latency_toxic_slows_real_traffic_and_is_read_back(
    server: ToxiproxyAdapter, proxy: tuple[str, str]
) -> None:
    name, listen = proxy
    assert round_trip(listen)[0] == "ok"
    t = server.add_toxic(name, "slow", "latency", {"latency": 200, "jitter": 0})
    assert (t.name, t.type, t.attributes["latency"]) == ("slow", "latency", 200)
    outcome, took = round_trip(listen)
    assert outcome == "ok" and took >= 0.19
    assert [x.name for x in server.toxics(name)] == ["slow"]
    assert server.remove_all_toxics(name) == 1
    assert server.toxics(name) == []


def test_disable_refuses_connections_and_enable_restores(
    server: ToxiproxyAdapter, proxy: tuple[str, str]
) -> None:
    name, listen = proxy
    assert server.set_enabled(name, False).enabled is False
    assert server.proxy(name).enabled is False
    assert round_trip(listen)[0] == "refused"
    server.set_enabled(name, True)
    assert round_trip(listen)[0] == "ok"


def test_reset_removes_toxics_and_enables(server: ToxiproxyAdapter, proxy: tuple[str, str]) -> None:
    name, listen = proxy
    server.add_toxic(name, "a", "timeout", {"timeout": 0}, stream="upstream")
    server.set_enabled(name, False)
    server.reset()
    state = server.proxy(name)
    assert state.enabled and state.toxics == ()
    assert round_trip(listen)[0] == "ok"


def test_a_whole_sweep_resets_only_when_something_is_dirty(
    server: ToxiproxyAdapter, proxy: tuple[str, str]
) -> None:
    name, listen = proxy
    assert server.sweep().dirty == ()  # clean: nothing to reset
    server.add_toxic(name, "foreign", "latency", {"latency": 1})
    server.set_enabled(name, False)
    swept = server.sweep()
    assert [p.name for p in swept.dirty] == [name]
    assert swept.removed == ((name, "foreign"),) and swept.enabled == (name,)
    state = server.proxy(name)
    assert state.enabled and state.toxics == ()
    assert round_trip(listen)[0] == "ok"


def test_a_selective_sweep_takes_only_ours_and_reenables_what_it_is_told(
    server: ToxiproxyAdapter, proxy: tuple[str, str]
) -> None:
    name, _ = proxy
    server.add_toxic(name, "lab-f1-latency", "latency", {"latency": 1})
    server.add_toxic(name, "someone-elses", "latency", {"latency": 1}, stream="upstream")
    server.set_enabled(name, False)
    swept = server.sweep(ours="lab-", reenable=[name, name, "not-a-proxy"])
    assert swept.removed == ((name, "lab-f1-latency"),) and swept.enabled == (name,)
    assert swept.errors == ()
    state = server.proxy(name)
    assert state.enabled and [t.name for t in state.toxics] == ["someone-elses"]
    server.remove_all_toxics(name)


def test_errors_name_the_proxy_and_toxic(server: ToxiproxyAdapter, proxy: tuple[str, str]) -> None:
    with pytest.raises(FaultError, match="remove toxic ghost from proxy p: not found"):
        server.remove_toxic("p", "ghost")
    with pytest.raises(FaultError, match="proxy nope: not found"):
        server.proxy("nope")
    server.add_toxic("p", "dup", "latency", {"latency": 1})
    with pytest.raises(FaultError, match="add toxic dup to proxy p: already exists"):
        server.add_toxic("p", "dup", "latency", {"latency": 1})
    server.remove_all_toxics("p")


def test_unreachable_server_is_a_fault_error_within_the_timeout() -> None:
    dead = ToxiproxyAdapter(f"http://127.0.0.1:{free_port()}", timeout=0.5)
    with pytest.raises(FaultError, match="unreachable"):
        dead.proxies()


def test_a_silent_server_times_out(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # accepts (backlog) but never answers
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        silent = ToxiproxyAdapter(f"http://127.0.0.1:{s.getsockname()[1]}", timeout=0.3)
        with pytest.raises(FaultError, match=r"no answer .* within 0.3s"):
            silent.version()


def test_two_adapters_do_not_share_a_host(server: ToxiproxyAdapter) -> None:
    other = ToxiproxyAdapter(f"http://127.0.0.1:{free_port()}", timeout=0.3)
    with pytest.raises(FaultError):
        other.version()
    assert server.version()  # unaffected by the other adapter's address
