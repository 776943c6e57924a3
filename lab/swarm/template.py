"""A content-keyed image store that every node of a local swarm starts from.

Why: copying the lab's images into each node with ``docker save`` once and ``docker load``
per node took 24-54 s of a 26-57 s create on this 2-core machine, all of it CPU (the
loads decompress and unpack the same layers three times at once). Instead the images are
loaded ONCE into a throwaway engine's data root on disk; that engine is stopped cleanly,
everything but the image store is removed, and the result is kept as
``<data base>/template-<key>``. Each node's engine script copies it into the node's fresh
data root (``cp -a --preserve=all``: overlay2's whiteouts are device nodes and its opaque
directories ``trusted.overlay.*`` xattrs) before dockerd starts.

The key is a hash of the images' tags and IDs (from the host engine) and of the dockerd
version, so a rebuilt image or an upgraded engine makes a new template; only the newest
is kept. A template is written under ``template-<key>.partial`` and renamed when complete,
so a directory named ``template-<key>`` is always whole. ``python -m lab.swarm.template
purge [ROOT]`` removes every template of a checkout.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from lab.errors import RuntimeUnavailable
from lab.stack.engine import Paths
from lab.swarm import engines, images, netns, pids

Log = Callable[[str], None]
KEEP = frozenset({"image", "overlay2"})
"""What a template keeps of an engine's data root. The rest of a 20.10 data root must not
be shared (``swarm/``: node identity and raft; ``network/``: the local network db;
``containers/``, ``volumes/``, ``buildkit/``, ``tmp/``, ``runtimes/``, ``plugins/``,
``trust/``): a fresh engine creates it. The engine id lives in /etc/docker/key.json, which
each node has its own of anyway."""
BUILDER_INDEX = 0
"""The throwaway engine is "node 0": its directories match what ``leftovers`` looks for,
so a build that was killed halfway is found and removed by ``lab down``."""
STOP_GRACE = 30.0
"""SIGTERM to SIGKILL for the builder: a clean stop flushes its image metadata."""


def key(image_names: Sequence[str]) -> str:
    """16 hex digits from the images' tags and IDs on the host engine and the dockerd
    version; RuntimeUnavailable when the host engine lacks an image."""
    ids = _run(["docker", "image", "inspect", "--format", "{{.Id}}", *image_names],
               dict(os.environ), "docker image inspect")  # fmt: skip
    version = _run(["dockerd", "--version"], dict(os.environ), "dockerd --version")
    text = "\n".join([*image_names, ids.strip(), version.strip()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _run(argv: list[str], env: dict[str, str], what: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60,
                          check=False)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeUnavailable(f"{what} failed: {done.stderr.strip()}")
    return done.stdout


def templates(base: Path) -> list[Path]:
    """The complete and partial templates under ``base``, oldest first."""
    found = [p for p in base.glob("template-*") if p.is_dir()]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def prune(base: Path, keep: Path | None = None) -> list[Path]:
    """Remove every template under ``base`` but ``keep``; what was removed."""
    gone = [p for p in templates(base) if p != keep]
    for p in gone:
        shutil.rmtree(p, ignore_errors=True)
    return gone


def size_bytes(root: Path) -> int:
    """Bytes on disk under ``root`` (``du``'s view: hard links once, blocks not lengths)."""
    done = subprocess.run(["du", "-sB1", str(root)], capture_output=True, text=True,
                          check=False)  # fmt: skip
    return int(done.stdout.split()[0]) if done.returncode == 0 and done.stdout else 0


def strip(data_root: Path) -> None:
    """Delete what a stopped engine's data root holds besides the image store."""
    for entry in data_root.iterdir():
        if entry.name in KEEP:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def ensure(home: Path, base: Path, image_names: Sequence[str], env: Mapping[str, str],
           log: Log) -> Path:  # fmt: skip
    """The template for ``image_names``, built now unless a complete one exists; older
    templates are removed once a new one is complete. A failure removes the builder's
    engine, namespace and directories, and leaves the older templates alone."""
    dest = base / f"template-{key(image_names)}"
    if dest.is_dir():
        os.utime(dest)
        log(f"swarm: reusing image template {dest.name} ({size_bytes(dest) / 1e6:.0f} MB)")
        return dest
    t0 = time.monotonic()
    files = engines.engine_files(home, base, BUILDER_INDEX)
    partial = dest.with_name(dest.name + ".partial")
    held: list[int] = []
    with contextlib.ExitStack() as undo:
        undo.callback(_remove, files, partial)
        undo.callback(_stop, home, held)
        shutil.rmtree(partial, ignore_errors=True)
        held.append(netns.spawn_holder(env))
        held.append(engines.start(files, held[0], env))
        engines.wait_ready(files, held[1])
        _copy_in(image_names, files.docker_host)
        missing = images.missing_on(files.docker_host, image_names)
        if missing:
            raise RuntimeUnavailable(f"the template engine lacks {missing} after docker load")
        left = pids.stop([held[1]], home, STOP_GRACE)
        if left:
            raise RuntimeUnavailable(f"the template engine (pid {left[0]}) would not stop")
        _stop(home, held)
        strip(files.data_root)
        files.data_root.rename(partial)
        partial.rename(dest)
    prune(base, keep=dest)
    log(f"swarm: image template {dest.name} built in {time.monotonic() - t0:.1f}s "
        f"({size_bytes(dest) / 1e6:.0f} MB on disk)")  # fmt: skip
    return dest


def _copy_in(image_names: Sequence[str], docker_host: str) -> None:
    """``docker save`` from the host engine piped into ``docker load`` on ``docker_host``."""
    nice = ["nice", "-n", "19"]
    save = subprocess.Popen([*nice, "docker", "save", *image_names], env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        load = subprocess.Popen(
            [*nice, "docker", "-H", docker_host, "load", "-q"], env=images.client_env(),
            stdin=save.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
    finally:
        assert save.stdout is not None
        save.stdout.close()  # load holds the pipe now; save sees EPIPE if load dies
    try:
        images.finish(load, f"docker load into the template engine ({docker_host})")
    finally:
        if load.poll() is None:
            load.kill()
        images.finish(save, f"docker save {' '.join(image_names)}")


def _stop(home: Path, held: list[int]) -> None:
    """Stop the builder's engine (if still up) and namespace holder; containerd goes with
    its dockerd."""
    for pid in reversed(held):
        pids.stop([pid], home, STOP_GRACE if pid == held[-1] else 2.0)
    rest = [p for p in pids.marked_pids(home) if pids.command_line(p).startswith("containerd")]
    pids.stop(rest, home, 3.0)
    held.clear()


def _remove(files: engines.EngineFiles, partial: Path) -> None:
    for d in (files.home, files.data_root.parent, partial):
        shutil.rmtree(d, ignore_errors=True)


def main(argv: Sequence[str]) -> int:
    """``purge [ROOT]``: remove the image templates of the checkout at ROOT (default: the
    one containing the working directory)."""
    if not argv or argv[0] != "purge":
        print("usage: python -m lab.swarm.template purge [ROOT]", file=sys.stderr)
        return 2
    paths = Paths(Path(argv[1])) if len(argv) > 1 else Paths.find()
    home = (paths.cache / "swarm").resolve()
    for base in {home, engines.FALLBACK_DATA_BASE / pids.tag(home)}:
        for p in prune(base):
            print(f"removed {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
