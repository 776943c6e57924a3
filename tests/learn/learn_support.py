"""Running ``lab`` as a learner does: a subprocess in the repository, output captured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.loadgen.local_cluster import find_toxiproxy

ROOT = Path(__file__).resolve().parents[2]


def toxiproxy_env() -> dict[str, str]:
    found = find_toxiproxy(ROOT)
    if found is None:
        pytest.skip("no Toxiproxy server binary (make images builds one)")
    return {**os.environ, "LAB_TOXIPROXY_BIN": str(found), "COLUMNS": "100"}


def lab(*argv: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """``lab ARGV`` from the repository root, as the guide's commands are run."""
    return subprocess.run(
        [sys.executable, "-m", "lab", *argv],
        cwd=ROOT, env=toxiproxy_env(), capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
