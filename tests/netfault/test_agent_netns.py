"""The agent and the rules against the real iptables and tc, in a throwaway namespace.

Each test runs a script under ``unshare --net`` (a fresh network namespace of its own, so
the host's rules are never touched): the rules the faults would install go in through the
agent, real datagrams cross ``lo`` and are counted, and the agent's ``clean`` must leave
the namespace as it found it. Needs root and iptables (skipped otherwise); the same rules
in the lab's containers, through the helper, are tested on the Compose lab.
"""

from __future__ import annotations

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
