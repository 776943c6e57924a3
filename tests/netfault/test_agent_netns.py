"""The agent and the rules against the real iptables and tc, in a throwaway namespace.

Each test runs a script under ``unshare --net`` (a fresh network namespace of its own, so
the host's rules are never touched): the rules the faults would install go in through the
agent, real datagrams cross ``lo`` and are counted, and the agent's ``clean`` must leave
the namespace as it found it. Needs root and iptables (skipped otherwise); the same rules
in the lab's containers, through the helper, are tested on the Compose lab.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("iptables"),
    reason="needs root, unshare and iptables (a throwaway network namespace)",
)


def in_netns(body: str) -> dict[str, object]:
    head = textwrap.dedent(
        """
        import json, socket, subprocess, sys
        sys.path.insert(0, ROOT)
        from lab.netfault import agent
        from lab.netfault.rules import *
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        out = {}
        """
    ).replace("ROOT", repr(str(ROOT)))
    script = head + textwrap.dedent(body) + "\nprint(json.dumps(out))\n"
    done = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0 and "unshare:" in done.stderr:
        pytest.skip(f"cannot make a network namespace here: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


COUNT = """
def count(port, n):
    r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    r.bind(("127.0.0.1", port)); r.settimeout(0.5)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(n):
        try:
            s.sendto(b"x" * 32, ("127.0.0.1", port))
        except PermissionError:  # netfilter's verdict on a local send: dropped
            pass
    got = 0
    try:
        while True:
            r.recv(64); got += 1
    except socket.timeout:
        pass
    r.close(); s.close()
    return got
"""


def test_loss_drops_about_the_share_asked_and_clean_leaves_nothing() -> None:
    out = in_netns(
        COUNT
        + """
plan = packet_plan("loss", PacketParams(loss=30), Match("udp", 20001), "out", dev="lo")
out["run"] = agent.run_commands(plan.commands)
out["got"] = count(20001, 4000)
out["other"] = count(20002, 1000)
shown = agent.show("lo")
out["counted"] = shown["chains"][plan.chains[0]][0]["packets"]
out["clean"] = agent.clean(list(plan.chains), "lo")
after = agent.show("lo")
out["after"] = [after["chains"], after["jumps"]]
out["healed"] = count(20001, 1000)
"""
    )
    assert out["run"] == [] and out["clean"] == []
    lost = 4000 - int(str(out["got"]))
    assert 0.26 * 4000 <= lost <= 0.34 * 4000, out  # binomial sd 0.7 %: +-4 % is ~5.5 sd
    assert out["counted"] == lost  # every missing datagram is one the rule dropped
    assert out["other"] == 1000 and out["healed"] == 1000
    assert out["after"] == [{}, []]


def test_a_partition_blocks_the_named_peer_only() -> None:
    out = in_netns(
        COUNT.replace("127.0.0.1", "{ip}")
        .replace("def count(port, n)", "def count_to(ip, port, n)")
        .replace('("{ip}", port)', "(ip, port)")
        + """
subprocess.run(["ip", "addr", "add", "127.0.0.2/8", "dev", "lo"], check=False)
plan = partition_plan("p", ["127.0.0.3"], "out")
out["run"] = agent.run_commands(plan.commands)
out["to_blocked"] = count_to("127.0.0.3", 20001, 100)
out["to_other"] = count_to("127.0.0.2", 20001, 100)
out["clean"] = agent.clean(None, "lo")
out["after"] = count_to("127.0.0.3", 20001, 100)
"""
    )
    assert out["run"] == [] and out["clean"] == []
    assert out == {**out, "to_blocked": 0, "to_other": 100, "after": 100}


def test_rate_installs_our_tbf_and_clean_removes_only_ours() -> None:
    out = in_netns(
        """
plan = packet_plan("r", PacketParams(rate_kbps=50), Match(), "out", dev="lo")
out["run"] = agent.run_commands(plan.commands)
out["qdisc"] = agent.show("lo")["qdisc"]
out["clean"] = agent.clean(None, "lo")
out["after"] = agent.show("lo")["qdisc"]
"""
    )
    assert out["run"] == [] and out["clean"] == []
    assert "tbf 1717:" in str(out["qdisc"]) and "400Kbit" in str(out["qdisc"])
    assert "1717:" not in str(out["after"])


QUEUE = """
import os, signal, statistics, time
plan = packet_plan("q", PacketParams(**PARAMS), Match("udp", 20001), "out", dev="lo")
env = dict(os.environ)
agent_proc = subprocess.Popen(
    [sys.executable, AGENT, "queue", json.dumps({"queue": plan.queue, "seed": 1, **PARAMS})],
    stdout=subprocess.PIPE, text=True,
)
assert agent_proc.stdout.readline().strip() == "ready"
out["run"] = agent.run_commands(plan.commands)
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r.bind(("127.0.0.1", 20001)); r.settimeout(0.5)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
lat, seqs = [], []
for i in range(SEQ):
    t0 = time.monotonic()
    s.sendto(b"%05d" % i, ("127.0.0.1", 20001))
    try:
        seqs.append(int(r.recv(64)[:5])); lat.append(time.monotonic() - t0)
    except (socket.timeout, ValueError):
        pass
out["lat"] = lat
burst = []
for i in range(100):
    s.sendto(b"%05d" % i, ("127.0.0.1", 20001)); time.sleep(0.001)
try:
    while True:
        burst.append(int(r.recv(64)[:5]))
except socket.timeout:
    pass
out["burst"] = burst
agent_proc.send_signal(signal.SIGTERM)
out["agent_exit"] = agent_proc.wait(timeout=10)
t0 = time.monotonic(); s.sendto(b"00000", ("127.0.0.1", 20001)); r.recv(64)
out["bypass_s"] = time.monotonic() - t0
out["clean"] = agent.clean(None, "lo")
"""


def run_queue(params: dict[str, float], seq: int = 0) -> dict[str, object]:
    """``seq`` datagrams one at a time (each one's delay), then a burst of 100."""
    pytest.importorskip("fnfqueue")
    agent_py = str(ROOT / "lab" / "netfault" / "agent.py")
    script = QUEUE.replace("PARAMS", repr(params)).replace("AGENT", repr(agent_py))
    return in_netns(script.replace("SEQ", str(seq)))


def test_the_queue_agent_delays_with_jitter_and_lets_packets_through_when_gone() -> None:
    out = run_queue({"delay_ms": 80, "jitter_ms": 20}, seq=40)
    assert out["run"] == [] and out["clean"] == [] and out["agent_exit"] == 0
    lat = [float(x) for x in out["lat"]]  # type: ignore[attr-defined]
    assert len(lat) == 40
    assert min(lat) >= 0.055 and max(lat) <= 0.2, (min(lat), max(lat))
    assert max(lat) - min(lat) >= 0.015  # jitter spreads them
    assert sorted(out["burst"]) == list(range(100))  # type: ignore[call-overload]
    assert float(out["bypass_s"]) < 0.05  # type: ignore[arg-type]


def test_the_queue_agent_reorders_a_share_of_packets() -> None:
    out = run_queue({"delay_ms": 50, "reorder": 30})
    burst = [int(x) for x in out["burst"]]  # type: ignore[attr-defined]
    assert sorted(burst) == list(range(100))  # none lost
    overtaken = sum(1 for a, b in itertools.pairwise(burst) if b < a)
    assert overtaken >= 10, burst


def test_the_queue_agent_corrupts_a_share_that_the_receiver_discards() -> None:
    out = run_queue({"corrupt": 50})
    burst = [int(x) for x in out["burst"]]  # type: ignore[attr-defined]
    # a flipped bit fails the UDP checksum: the receiver drops about half
    assert 30 <= 100 - len(burst) <= 70, len(burst)
