"""The Debian archive this machine's apt already uses: where the offline builds debootstrap from.

Why a module of its own: which mirror a machine may reach is site configuration, read from
apt's files, and nothing else in the image builds parses apt; the repository must never
carry a mirror host.
"""

from __future__ import annotations

import re
from pathlib import Path

from lab.errors import RuntimeUnavailable


def apt_mirror(etc: Path = Path("/etc/apt")) -> str:
    """The Debian archive URI apt already uses (deb822 ``.sources`` first, then ``.list``).

    Why read apt: the mirror a machine may reach is site configuration; the repository
    must never carry a mirror host. ``LAB_DEBIAN_MIRROR`` overrides (read by ``lab up``).
    """
    candidates: list[tuple[int, str]] = []
    for f in sorted((etc / "sources.list.d").glob("*.sources")):
        for block in re.split(r"\n\s*\n", f.read_text(errors="replace")):
            fields: dict[str, str] = {}
            for line in block.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if fields.get("enabled", "yes").lower() == "no":
                continue
            if "deb" not in fields.get("types", "").split():
                continue
            suites = fields.get("suites", "").split()
            uris = fields.get("uris", "").split()
            if uris and "main" in fields.get("components", "").split():
                candidates += [(_rank(uris[0], suites), uri) for uri in uris[:1]]
    for f in [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list"))]:
        if not f.is_file():
            continue
        for line in f.read_text(errors="replace").splitlines():
            words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(words) >= 4 and words[0] == "deb" and "main" in words[3:]:
                candidates.append((_rank(words[1], [words[2]]), words[1]))
    good = sorted((rank, uri) for rank, uri in candidates if rank < 9)
    if not good:
        raise RuntimeUnavailable(
            "no Debian archive in apt's configuration (/etc/apt/sources.list*) to debootstrap "
            "the offline base from: set LAB_DEBIAN_MIRROR=http://<mirror>/debian"
        )
    return good[0][1]


def _rank(uri: str, suites: list[str]) -> int:
    """Lower is better: a Debian archive serving bookworm; security/updates archives last."""
    if any(s.endswith(("-security", "/updates")) for s in suites) or "security" in uri:
        return 9
    if "bookworm" in suites:
        return 0
    if "/debian" in uri:
        return 1
    return 9
