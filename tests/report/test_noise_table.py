"""The report's noise table reads summary.json's ``noise`` section as it is."""

from __future__ import annotations

from lab.report.tables import noise_table

NOISE = {
    "load": {"cpus": 2, "samples": 30, "mean_1m": 1.25, "max_1m": 2.5},
    "cgroups": {
        "worker-2": {"cpu_s": 3.5, "nr_periods": 300, "nr_throttled": 12,
                     "throttled_ms": 340.0, "quota_cpus": 0.5},
        "grape-1": {"cpu_s": 0.5, "nr_periods": 0, "nr_throttled": 0,
                    "throttled_ms": 0.0, "quota_cpus": None},
    },
    "oracle": {"client": "client-oracle",
               "before": {"requests": 2500, "p50_ms": 2.4, "p99_ms": 8.1, "p999_ms": 15.0}},
    "slow_clusters": {"slow_ms": 25.0, "count": 3, "median_interval_s": 3.4,
                      "interval_cv": 0.05, "largest_gap_s": 3.6},
}  # fmt: skip


def test_every_part_of_the_noise_section_has_a_row() -> None:
    t = noise_table({"noise": NOISE})
    rows = {r.name: r.cells[0].text for r in t.rows}
    assert rows["host load (1 min)"] == "mean 1.25, max 2.50 on 2 CPUs"
    assert rows["oracle steady state (before)"].startswith("p50 2.40 ms, p99 8.10 ms")
    assert "3; median interval 3.40 s, cv 0.05" in rows["slow clusters (> 25 ms)"]
    assert rows["cgroup worker-2"] == ("CPU 3.50 s, throttled 12 periods (340 ms), quota 0.50 CPUs")
    assert rows["cgroup grape-1"].endswith("quota none")


def test_an_old_summary_without_noise_gives_an_empty_table() -> None:
    assert noise_table({}).rows == ()
