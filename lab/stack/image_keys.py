"""Content keys for the lab's image tags: a hash of everything that goes into an image.

Why content keys: a warm ``lab up`` finds every tag present and builds nothing, and any
change to a Dockerfile, script, source file or base image makes a new tag.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path


def digest(parts: Iterable[bytes | str], length: int = 12) -> str:
    """A short sha256 of ``parts``, each ended by a NUL so that where one part ends counts."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()[:length]


def file_digest(paths: Iterable[Path], root: Path, extra: Iterable[str] = ()) -> str:
    """A hash of file names (relative to ``root``) and contents, plus ``extra`` strings."""
    parts: list[bytes | str] = list(extra)
    for p in sorted(set(paths)):
        parts += [str(p.relative_to(root)), p.read_bytes()]
    return digest(parts)


def package_files(root: Path) -> list[Path]:
    """Everything that goes into the project's wheel: pyproject.toml and lab/ (no caches)."""
    files = [root / "pyproject.toml"]
    for p in (root / "lab").rglob("*"):
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in {".pyc", ".pyo"}:
            files.append(p)
    return files
