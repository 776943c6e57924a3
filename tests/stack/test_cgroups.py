"""``lab.stack.cgroups`` on cgroup trees laid out like the kernel's (v1 and v2) and on this host."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab.stack.cgroups import CgroupUnreadable, CpuStat, cpu_stat

V1_PROC = """12:pids:/docker/abc
4:cpu,cpuacct:/docker/abc
0::/docker/abc
"""


def write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def test_v1_reads_throttling_usage_and_the_quota(tmp_path: Path) -> None:
    write(tmp_path, "proc/42/cgroup", V1_PROC)
    d = "sys/fs/cgroup/cpu/docker/abc"
    write(tmp_path, f"{d}/cpu.stat", "nr_periods 100\nnr_throttled 7\nthrottled_time 350000000\n")
    write(tmp_path, f"{d}/cpu.cfs_quota_us", "50000\n")
    write(tmp_path, f"{d}/cpu.cfs_period_us", "100000\n")
    write(tmp_path, "sys/fs/cgroup/cpuacct/docker/abc/cpuacct.usage", "2500000000\n")
    s = cpu_stat(42, tmp_path)
    assert s == CpuStat(2.5, 100, 7, 0.35, 0.5)


def test_v1_without_a_quota_says_unlimited(tmp_path: Path) -> None:
    write(tmp_path, "proc/42/cgroup", V1_PROC)
    d = "sys/fs/cgroup/cpu/docker/abc"
    write(tmp_path, f"{d}/cpu.stat", "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n")
    write(tmp_path, f"{d}/cpu.cfs_quota_us", "-1\n")
    write(tmp_path, f"{d}/cpu.cfs_period_us", "100000\n")
    s = cpu_stat(42, tmp_path)
    assert s.quota_cpus is None and s.nr_throttled == 0 and s.usage_s is None


def test_v2_reads_the_unified_files(tmp_path: Path) -> None:
    write(tmp_path, "proc/7/cgroup", "0::/system.slice/docker-abc.scope\n")
    d = "sys/fs/cgroup/system.slice/docker-abc.scope"
    write(
        tmp_path,
        f"{d}/cpu.stat",
        "usage_usec 1500000\nuser_usec 1\nsystem_usec 1\nnr_periods 10\n"
        "nr_throttled 3\nthrottled_usec 120000\n",
    )
    write(tmp_path, f"{d}/cpu.max", "75000 100000\n")
    assert cpu_stat(7, tmp_path) == CpuStat(1.5, 10, 3, 0.12, 0.75)


def test_since_subtracts_counters_and_keeps_the_quota() -> None:
    a, b = CpuStat(1.0, 10, 1, 0.1, 0.5), CpuStat(3.0, 30, 4, 0.4, 0.5)
    d = b.since(a)
    assert d.usage_s == 2.0 and d.nr_periods == 20 and d.nr_throttled == 3
    assert d.throttled_s == pytest.approx(0.3) and d.quota_cpus == 0.5


def test_an_unknown_pid_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(CgroupUnreadable, match=r"proc/999/cgroup"):
        cpu_stat(999, tmp_path)


def test_this_process_can_be_read_on_this_host() -> None:
    try:
        s = cpu_stat(os.getpid())
    except CgroupUnreadable as exc:
        pytest.skip(f"no readable cgroup here: {exc}")
    assert s.nr_throttled >= 0 and (s.usage_s is None or s.usage_s > 0)
