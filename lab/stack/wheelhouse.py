"""Wheelhouses: every Python package an image installs, downloaded on the host beforehand.

Why: the images' builds never need a package index (``lab up`` works where the containers
reach none), and a wheelhouse is made for the *target* image's Python and this machine's
architecture, not the host's: 3.12 for the upstream base, 3.11 (Debian bookworm) offline
and for the netfault helper. Each is kept under ``.cache/wheelhouse`` by a key of what
went into it and marked ``.complete`` only once whole.
"""

from __future__ import annotations

import platform
import shutil
import sys
import time
import tomllib
from pathlib import Path

from lab.stack.build_steps import BuildSteps
from lab.stack.image_keys import digest, file_digest

NETFAULT_PYTHON = "3.11"  # Debian bookworm's python3, which the helper image runs
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]


def manylinux_platforms(arch: str, glibc_minor: int = 36) -> list[str]:
    """``--platform`` flags for every manylinux tag a glibc 2.36 (bookworm) base accepts.

    pip expands only the legacy ``manylinux2014``/``2010`` names to older tags, not PEP 600
    ``manylinux_2_N``: name each one, newest first.
    """
    tags = [f"manylinux_2_{m}_{arch}" for m in range(glibc_minor, 16, -1)]
    tags.append(f"manylinux2014_{arch}")
    if arch in {"x86_64", "i686"}:
        tags += [f"manylinux2010_{arch}", f"manylinux1_{arch}"]
    return [flag for tag in tags for flag in ("--platform", tag)]


def download_argv(
    pyver: str, arch: str, dest: Path, reqs: Path, find_links: Path | None = None
) -> list[str]:
    """``pip download`` of binary wheels only, for CPython ``pyver`` on manylinux ``arch``."""
    links = ["--find-links", str(find_links)] if find_links is not None else []
    return [
        *PIP,
        "download",
        "--only-binary=:all:",
        "--dest",
        str(dest),
        *links,
        "--python-version",
        pyver,
        "--implementation",
        "cp",
        "--abi",
        "cp" + pyver.replace(".", ""),
        "--abi",
        "abi3",
        "--abi",
        "none",
        *manylinux_platforms(arch),
        "-r",
        str(reqs),
    ]


class Wheelhouse:
    """Fills the wheelhouses under ``<cache>/wheelhouse`` for the project rooted at ``root``."""

    def __init__(self, steps: BuildSteps, root: Path, cache: Path) -> None:
        self.steps = steps
        self.root = root
        self.cache = cache

    def for_services(self, pyver: str) -> Path:
        """Wheels of every dependency for CPython ``pyver`` on this machine's architecture.

        Two steps because some dependencies (kademlia, rpcudp, toxiproxy-python) ship only
        sdists: the host builds every wheel for its own Python, keeps the pure ones
        (``*-none-any``), and pip then downloads the binary wheels for the target Python
        with the pure ones offered through ``--find-links``.
        """
        deps = tomllib.loads((self.root / "pyproject.toml").read_text())["project"]["dependencies"]
        arch = platform.machine()
        key = digest([*deps, pyver, arch])
        home = self.cache / "wheelhouse" / f"cp{pyver.replace('.', '')}-{arch}-{key}"
        if (home / ".complete").is_file():
            return home
        t0 = time.monotonic()
        self.steps.log(f"images: filling the wheelhouse for Python {pyver} ({arch})")
        tmp = home.with_name(home.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "host").mkdir(parents=True)
        (tmp / "target").mkdir()
        reqs = tmp / "requirements.txt"
        reqs.write_text("\n".join(deps) + "\n")
        self.steps.run(
            [*PIP, "wheel", "--wheel-dir", str(tmp / "host"), "-r", str(reqs)],
            "wheelhouse (host wheels)",
            "wheelhouse.log",
        )
        for whl in (tmp / "host").glob("*-none-any.whl"):
            shutil.copy2(whl, tmp / "target" / whl.name)
        self.steps.run(
            download_argv(pyver, arch, tmp / "target", reqs, find_links=tmp / "target"),
            f"wheelhouse (Python {pyver} wheels)",
            "wheelhouse.log",
        )
        shutil.rmtree(home, ignore_errors=True)
        (tmp / "target").rename(home)
        shutil.rmtree(tmp, ignore_errors=True)
        (home / ".complete").write_text(f"{pyver} {arch}\n")
        self.steps.log(f"images: wheelhouse ready in {time.monotonic() - t0:.1f}s ({home.name})")
        return home

    def for_netfault(self, reqs: Path) -> Path:
        """Binary wheels of the helper's Python packages for bookworm's Python 3.11."""
        arch = platform.machine()
        home = self.cache / "wheelhouse" / f"netfault-{arch}-{file_digest([reqs], self.root)}"
        if (home / ".complete").is_file():
            return home
        tmp = home.with_name(home.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.steps.run(
            download_argv(NETFAULT_PYTHON, arch, tmp, reqs), "netfault wheels", "wheelhouse.log"
        )
        shutil.rmtree(home, ignore_errors=True)
        tmp.rename(home)
        (home / ".complete").write_text(f"{NETFAULT_PYTHON} {arch}\n")
        return home

    def project_wheel(self, dest: Path) -> None:
        """The project's own wheel (no dependencies: those are in the wheelhouse) into ``dest``."""
        self.steps.run(
            [*PIP, "wheel", "--no-deps", "--wheel-dir", str(dest), str(self.root)],
            "project wheel",
            "wheelhouse.log",
        )
