"""A process's CPU accounting from its cgroup, read on the host: use and CFS throttling.

Why: a CPU quota (``cpus:`` in Compose) lets a service spend its share of each 100 ms
CFS period and then stops it until the next period starts; a throttled client or worker
adds that stall to every request it holds, and nothing in the requests' own records says
so. The kernel counts it per cgroup (``nr_throttled``, throttled time), so the lab reads
it for each service before and after a run.

Where: ``/proc/<pid>/cgroup`` names the process's cgroup; cgroup v2 (one unified line
``0::/path``) keeps ``cpu.stat`` with ``usage_usec``, ``nr_periods``, ``nr_throttled``,
``throttled_usec``; cgroup v1 keeps ``cpu.stat`` (periods, throttling in ns) under the
``cpu`` controller and the usage in ``cpuacct.usage`` (ns). Either way the reading is a
:class:`CpuStat` in seconds, or None with the reason when the files are not readable
(a Docker engine in a VM, another user's process).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class CpuStat:
    """Cumulative CPU accounting of one cgroup at one moment."""

    usage_s: float | None  # CPU time used by every process of the cgroup
    nr_periods: int  # CFS periods with runnable tasks (0 when no quota is set)
    nr_throttled: int  # periods in which the quota ran out
    throttled_s: float  # time the cgroup's tasks waited for the next period
    quota_cpus: float | None  # the quota in CPUs, None when unlimited

    def since(self, before: CpuStat) -> CpuStat:
        """The accounting between ``before`` and this reading."""
        usage = None
        if self.usage_s is not None and before.usage_s is not None:
            usage = self.usage_s - before.usage_s
        return CpuStat(
            usage,
            self.nr_periods - before.nr_periods,
            self.nr_throttled - before.nr_throttled,
            self.throttled_s - before.throttled_s,
            self.quota_cpus,
        )


class CgroupUnreadable(Exception):
    """The cgroup files of a process could not be read (the message says which and why)."""


def _kv(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise CgroupUnreadable(f"{path}: {exc.strerror or exc}") from None


def cpu_stat(pid: int, root: Path = Path("/")) -> CpuStat:
    """The CPU accounting of the cgroup ``pid`` belongs to (``root``: for tests)."""
    lines = _read(root / "proc" / str(pid) / "cgroup").splitlines()
    by_controller: dict[str, str] = {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            by_controller[c] = path.lstrip("/")
    fs = root / "sys" / "fs" / "cgroup"
    if "cpu" in by_controller:  # v1
        cpu_dir = fs / "cpu" / by_controller["cpu"]
        if not cpu_dir.is_dir():
            cpu_dir = fs / "cpu,cpuacct" / by_controller["cpu"]
        stat = _kv(_read(cpu_dir / "cpu.stat"))
        acct = fs / "cpuacct" / by_controller.get("cpuacct", by_controller["cpu"])
        try:
            usage: float | None = int(_read(acct / "cpuacct.usage").strip()) / 1e9
        except (CgroupUnreadable, ValueError):
            usage = None
        quota = int(_read(cpu_dir / "cpu.cfs_quota_us").strip())
        period = int(_read(cpu_dir / "cpu.cfs_period_us").strip())
        return CpuStat(
            usage,
            stat.get("nr_periods", 0),
            stat.get("nr_throttled", 0),
            stat.get("throttled_time", 0) / 1e9,
            quota / period if quota > 0 and period > 0 else None,
        )
    if "" in by_controller:  # v2
        d = fs / by_controller[""]
        stat = _kv(_read(d / "cpu.stat"))
        try:
            q, _, p = _read(d / "cpu.max").strip().partition(" ")
            quota_cpus = int(q) / int(p) if q.isdigit() and p.isdigit() and int(p) else None
        except CgroupUnreadable:
            quota_cpus = None
        return CpuStat(
            stat["usage_usec"] / 1e6 if "usage_usec" in stat else None,
            stat.get("nr_periods", 0),
            stat.get("nr_throttled", 0),
            stat.get("throttled_usec", 0) / 1e6,
            quota_cpus,
        )
    raise CgroupUnreadable(f"pid {pid}: no cpu controller in /proc/{pid}/cgroup")
