"""Network-namespace faults on the Compose lab, against real traffic in real namespaces.

Each test puts one fault in place through the real helper container, shows it happening
with traffic sent and counted inside the lab's namespaces (probe containers of the helper
image joined to a service's namespace, with no capability at all), heals it, and checks
that nothing is left: no ``LAB-`` chain or qdisc of ours in the target's namespace, no
helper container. The lab is reused when up and never taken down.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from compose_lab import Lab, lab_session

from lab.netfault.helper import HELPER_LABEL, NetfaultHelper
from lab.procs import wait_until
from lab.scenario.faults.base import FaultContext
from lab.scenario.faults.janitor import cleanup_leftovers
from lab.scenario.faults.kinds import make_fault
from lab.scenario.faults.marker import MARKER
from lab.scenario.runtime.compose import ComposeRuntime
from lab.scenario.runtime.protocol import target
from lab.stack.engine import service_name
from lab.toxiproxy_adapter import ToxiproxyAdapter

pytestmark = [pytest.mark.docker, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
PROBE_LABEL = "com.grenache-lab.test-probe"


@pytest.fixture(scope="session")
def compose_lab() -> Iterator[Lab]:
    yield from lab_session()


@pytest.fixture(scope="module")
def runtime(compose_lab: Lab) -> Iterator[ComposeRuntime]:
    rt = ComposeRuntime.connect()
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture
def helper(runtime: ComposeRuntime) -> Iterator[NetfaultHelper]:
    h = NetfaultHelper(runtime.engine)
    assert_clean(h)
    yield h
    assert_clean(h)


@pytest.fixture
def ctx(runtime: ComposeRuntime) -> FaultContext:
    return FaultContext(runtime=runtime, toxiproxy=ToxiproxyAdapter(runtime.toxiproxy_api()))


SERVICES = ("grape-1", "grape-2", "grape-3", "worker-1", "client-adaptive")


def assert_clean(h: NetfaultHelper, services: tuple[str, ...] = SERVICES) -> None:
    """No helper container, and no chain or qdisc of ours in these namespaces."""
    assert h.helpers() == [], [c.name for c in h.helpers()]
    for name in services:
        state = h.show(name)
        assert state["ok"], state
        assert state["chains"] == {} and state["jumps"] == [], (name, state)
        assert "1717:" not in state["qdisc"], (name, state["qdisc"])


# -- probes: Python in a service's namespace, with no capability -----------------------


def start_probe(h: NetfaultHelper, service: str, code: str) -> Any:
    c = h.container(service)
    return h.client.containers.run(
        h.image,
        ["-c", code],
        entrypoint=["python3"],
        detach=True,
        network_mode=f"container:{c.id}",
        cap_drop=["ALL"],
        read_only=True,
        labels={PROBE_LABEL: "1"},
    )


def finish_probe(probe: Any, timeout: float = 60) -> str:
    try:
        result = probe.wait(timeout=timeout)
        out = bytes(probe.logs(stdout=True, stderr=False)).decode()
        err = bytes(probe.logs(stdout=False, stderr=True)).decode()
    finally:
        probe.remove(force=True)
    assert result["StatusCode"] == 0, err[-2000:]
    return out.strip()


def run_probe(h: NetfaultHelper, service: str, code: str) -> str:
    return finish_probe(start_probe(h, service, code))


def reachable(
    h: NetfaultHelper, source: str, dests: list[str], port: int = 30001
) -> dict[str, bool]:
    """From ``source``'s namespace: which of ``dests`` accept a TCP connection within 1 s."""
    addrs = {d: h.address(d) for d in dests}
    code = (
        "import json, socket\n"
        f"addrs = {addrs!r}\n"
        "out = {}\n"
        "for name, ip in addrs.items():\n"
        "    try:\n"
        f"        socket.create_connection((ip, {port}), timeout=1).close(); out[name] = True\n"
        "    except OSError:\n"
        "        out[name] = False\n"
        "print(json.dumps(out))\n"
    )
    return dict(json.loads(run_probe(h, source, code)))


# -- link_partition ----------------------------------------------------------------------


def test_a_link_partition_blocks_exactly_the_named_pair(
    ctx: FaultContext, helper: NetfaultHelper
) -> None:
    everyone = ["grape-1", "grape-2", "grape-3"]
    assert reachable(helper, "grape-1", ["grape-2", "grape-3"]) == {
        "grape-2": True,
        "grape-3": True,
    }
    fault = make_fault(
        "lp1",
        "link_partition",
        target(ctx.runtime, "grape-1"),
        {"peers": ["grape-2"], "direction": "both"},
        ctx,
    )
    fault.inject()
    try:
        assert fault.record.started is not None
        assert reachable(helper, "grape-1", ["grape-2", "grape-3"]) == {
            "grape-2": False,
            "grape-3": True,
        }
        assert reachable(helper, "grape-2", ["grape-1", "grape-3"]) == {
            "grape-1": False,
            "grape-3": True,
        }
        assert reachable(helper, "grape-3", ["grape-1", "grape-2"]) == {
            "grape-1": True,
            "grape-2": True,
        }
        # the lab's own services keep no capability; the rules went in without any
        for name in everyone:
            hc = helper.container(name).attrs["HostConfig"]
            assert hc["CapDrop"] == ["ALL"] and not hc["CapAdd"], name
    finally:
        fault.undo()
    assert fault.record.ended is not None
    assert reachable(helper, "grape-1", ["grape-2"]) == {"grape-2": True}


def test_a_one_way_partition_drops_only_what_the_target_receives(
    ctx: FaultContext, helper: NetfaultHelper
) -> None:
    # in: grape-1 drops what grape-2 sends it; what grape-1 sends still arrives.
    fault = make_fault(
        "lp2",
        "link_partition",
        target(ctx.runtime, "grape-1"),
        {"peers": ["grape-2"], "direction": "in"},
        ctx,
    )
    fault.inject()
    try:
        sent, got = udp_count(helper, "grape-1", "grape-2", 20998, 200)
        assert got == sent
        sent, got = udp_count(helper, "grape-2", "grape-1", 20998, 200)
        assert got == 0
    finally:
        fault.undo()


# -- packet: loss, counted ---------------------------------------------------------------


RECEIVER = """
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("0.0.0.0", {port}))
print("bound", flush=True)
n = 0
s.settimeout(3.0)
while True:
    try:
        s.recv(2048)
    except socket.timeout:
        break
    n += 1
print(n, flush=True)
"""

SENDER = """
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range({count}):
    try:
        s.sendto(b"x" * 64, ("{ip}", {port}))
    except PermissionError:  # netfilter's drop of a local send is told to the sender
        pass
    if i % 50 == 49:
        time.sleep(0.01)
print({count})
"""


def udp_count(h: NetfaultHelper, source: str, dest: str, port: int, count: int) -> tuple[int, int]:
    """(sent, received): ``count`` datagrams from ``source``'s namespace to ``dest``'s."""
    receiver = start_probe(h, dest, RECEIVER.format(port=port))
    wait_until(
        lambda: b"bound" in bytes(receiver.logs(stdout=True, stderr=False)),
        20.0,
        interval=0.05,
        what="the UDP receiver to bind",
    )
    sent = int(run_probe(h, source, SENDER.format(count=count, ip=h.address(dest), port=port)))
    lines = finish_probe(receiver).splitlines()
    return sent, int(lines[-1])


def test_packet_loss_drops_about_the_asked_share_of_the_filtered_datagrams(
    ctx: FaultContext, helper: NetfaultHelper
) -> None:
    port = 20997
    sent, got = udp_count(helper, "grape-1", "grape-3", port, 2000)
    assert got == sent  # the path itself loses nothing
    fault = make_fault(
        "loss1",
        "packet",
        target(ctx.runtime, "grape-1"),
        {"loss": 30, "protocol": "udp", "port": port, "direction": "out"},
        ctx,
    )
    fault.inject()
    try:
        sent, got = udp_count(helper, "grape-1", "grape-3", port, 2000)
        lost = (sent - got) / sent
        # binomial(2000, 0.3): sd 1.0 %; +-5 % is five sd
        assert 0.25 <= lost <= 0.35, f"lost {lost:.1%} of {sent}"
        state = helper.show("grape-1")
        (chain,) = [c for c in state["chains"] if c.endswith("-out")]
        dropped = state["chains"][chain][0]["packets"]
        assert dropped == sent - got, (dropped, sent, got)
        # other UDP (another port) is untouched
        sent2, got2 = udp_count(helper, "grape-1", "grape-3", port + 1, 500)
        assert got2 == sent2
    finally:
        fault.undo()
    sent, got = udp_count(helper, "grape-1", "grape-3", port, 1000)
    assert got == sent


# -- packet: delay through NFQUEUE, on a grape's HTTP API (slow lookups) -------------------


def api_latencies(url: str, n: int = 10) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.monotonic()
        with urllib.request.urlopen(f"{url}/_lab/health", timeout=5) as resp:
            resp.read()
        out.append(time.monotonic() - t0)
    return out


def test_packet_delay_through_the_queue_agent_slows_a_grapes_api_then_heals(
    ctx: FaultContext, helper: NetfaultHelper
) -> None:
    grape = target(ctx.runtime, "grape-1")
    assert grape.control_url
    before = statistics.median(api_latencies(grape.control_url))
    fault = make_fault(
        "slowapi",
        "packet",
        grape,
        {"delay_ms": 150, "jitter_ms": 20, "protocol": "tcp", "port": 30001, "direction": "out"},
        ctx,
    )
    fault.inject()
    try:
        (h,) = helper.helpers("slowapi")
        hc = h.attrs["HostConfig"]
        assert hc["CapAdd"] == ["NET_ADMIN"] and hc["CapDrop"] == ["ALL"]
        assert hc["NetworkMode"] == f"container:{helper.container('grape-1').id}"
        during = statistics.median(api_latencies(grape.control_url))
        assert during >= 0.13 + before, (before, during)
    finally:
        fault.undo()
    after = statistics.median(api_latencies(grape.control_url))
    assert after < before + 0.1, (before, after)


def test_rate_kbps_shapes_the_targets_egress(ctx: FaultContext, helper: NetfaultHelper) -> None:
    code = (
        "import socket, time\n"
        "s = socket.create_server(('0.0.0.0', 20996)); print('bound', flush=True)\n"
        "c, _ = s.accept(); n = 0; t0 = None\n"
        "while True:\n"
        "    b = c.recv(65536)\n"
        "    if not b: break\n"
        "    t0 = t0 or time.monotonic(); n += len(b)\n"
        "print(n, time.monotonic() - t0)\n"
    )

    def transfer(nbytes: int) -> tuple[int, float]:
        receiver = start_probe(helper, "grape-3", code)
        wait_until(
            lambda: b"bound" in bytes(receiver.logs(stdout=True, stderr=False)),
            20.0,
            interval=0.05,
            what="the TCP receiver to bind",
        )
        ip = helper.address("grape-3")
        run_probe(
            helper,
            "grape-1",
            f"import socket; s = socket.create_connection(('{ip}', 20996)); "
            f"s.sendall(b'x' * {nbytes}); s.close(); print('sent')",
        )
        n, secs = finish_probe(receiver).splitlines()[-1].split()
        return int(n), float(secs)

    nbytes = 200_000
    _, free = transfer(nbytes)
    fault = make_fault("rate1", "packet", target(ctx.runtime, "grape-1"), {"rate_kbps": 50}, ctx)
    fault.inject()
    try:
        assert "tbf" in helper.show("grape-1")["qdisc"]
        n, shaped = transfer(nbytes)
    finally:
        fault.undo()
    assert n == nbytes
    # 50 KB/s after a 5 KB burst: ~3.8 s; the unshaped transfer takes milliseconds
    assert shaped >= 2.5 and free < 1.0, (free, shaped)


# -- dns ---------------------------------------------------------------------------------


RESOLVE = """
import json, socket, time
t0 = time.monotonic()
try:
    socket.getaddrinfo("grape-2", 20001)
    ok = True
except OSError:
    ok = False
print(json.dumps({"ok": ok, "s": time.monotonic() - t0}))
"""


def test_dns_fault_stops_names_resolving_in_the_target_only(
    ctx: FaultContext, helper: NetfaultHelper
) -> None:
    assert json.loads(run_probe(helper, "worker-1", RESOLVE))["ok"]
    fault = make_fault("dns1", "dns", target(ctx.runtime, "worker-1"), {"mode": "reject"}, ctx)
    fault.inject()
    try:
        during = json.loads(run_probe(helper, "worker-1", RESOLVE))
        assert not during["ok"], during
        assert json.loads(run_probe(helper, "worker-2", RESOLVE))["ok"]
    finally:
        fault.undo()
    assert json.loads(run_probe(helper, "worker-1", RESOLVE))["ok"]


# -- ghost announcement ------------------------------------------------------------------


def lookup(api: str) -> set[str]:
    body = json.dumps({"data": "rpc_test"}).encode()
    req = urllib.request.Request(f"{api}/lookup", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=3) as resp:
        found = json.loads(resp.read() or b"null")
    return set(found) if isinstance(found, list) else set()


def test_a_ghost_record_is_served_by_every_grape_then_expires(ctx: FaultContext) -> None:
    ghost = "10.231.0.99:1337"
    fault = make_fault("ghost1", "ghost", target(ctx.runtime, "grape-1"), {"address": ghost}, ctx)
    fault.inject()
    try:
        wait_until(
            lambda: ghost in lookup("http://127.0.0.1:30003"),
            10.0,
            interval=0.2,
            what="grape-3 to return the ghost record",
        )
    finally:
        fault.undo()
    # records live 0.67-1.33 x the lab's peer max age (5 s)
    wait_until(
        lambda: all(ghost not in lookup(f"http://127.0.0.1:3000{i}") for i in (1, 2, 3)),
        12.0,
        interval=0.5,
        what="the ghost record to expire on every grape",
    )


# -- kill -9 of `lab run` with network faults in place -----------------------------------

KILL_SCENARIO = """
name: netfault-abort
seed: 3
clients: [adaptive, random]
load: {rate: 20}
duration: 40s
warmup: 1s
settle: 1s
timeline:
  - {at: 1s, fault: link_partition, target: grape-1, peers: [grape-2]}
  - {at: 1s, fault: packet, target: grape-3, delay_ms: 20, protocol: udp, port: 20001}
  - {at: 35s, heal: grape-1}
  - {at: 35s, heal: grape-3}
"""


def test_kill_9_mid_fault_leaves_rules_and_helper_that_cleanup_removes(
    helper: NetfaultHelper, tmp_path: Path
) -> None:
    path = tmp_path / "abort.yaml"
    path.write_text(KILL_SCENARIO)
    reports = tmp_path / "reports"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab", "run", "--reports", str(reports), str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    marker = reports / MARKER
    try:

        def both_in_place() -> bool:
            try:
                data = json.loads(marker.read_text())
            except (OSError, ValueError):
                return False
            return (
                len(data.get("faults") or []) == 2
                and bool(helper.helpers())
                and bool(helper.show("grape-1")["chains"])
                and bool(helper.show("grape-3")["chains"])  # after its queue agent is ready
            )

        wait_until(both_in_place, 60.0, interval=0.2, what="both network faults in place")
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
        # nobody undid them: the rules and the queue agent are still there
        assert helper.show("grape-1")["chains"]
        assert helper.show("grape-3")["chains"]
        assert [c.labels[HELPER_LABEL] for c in helper.helpers()] == ["f2"]
        status = subprocess.run(
            [sys.executable, "-m", "lab", "status", "--json", "--reports", str(reports)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        shown = json.loads(status.stdout)
        assert status.returncode == 1
        assert any("link_partition f1 on grape-1" in line for line in shown["netfaults"])
        report = cleanup_leftovers(reports)  # what the next `lab run` does first
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if marker.exists():
            cleanup_leftovers(reports, force=True)
    assert report.errors == [], report.errors
    assert any("removed netfault helper" in a for a in report.actions), report.actions
    assert not marker.exists()
    # assert_clean (the fixture) checks every namespace and that no helper is left


def test_services_have_no_capability_and_no_helper_outlives_a_fault(
    runtime: ComposeRuntime, helper: NetfaultHelper
) -> None:
    for c in runtime.engine.containers(all=True):
        hc = c.attrs["HostConfig"]
        assert hc["CapDrop"] == ["ALL"] and not hc["CapAdd"], service_name(c)
        assert not any("docker.sock" in str(m) for m in c.attrs.get("Mounts") or [])
