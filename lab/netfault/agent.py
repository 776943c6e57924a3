#!/usr/bin/env python3
"""The network-fault agent: runs inside the helper container, in the target's namespace.

Copied as one file into the helper image (``/usr/local/bin/lab-netfault``), so it imports
only the standard library and, for ``queue``, ``fnfqueue``. The host decides every rule
(:mod:`lab.netfault.rules`); the agent only runs commands, removes what is ours and
reports what is there, so its behaviour stays small enough to check from outside.

    lab-netfault run JSON     {"commands": [[argv...], ...]}: run in order, stop at a failure
    lab-netfault clean JSON   {"chains": [...] | null, "dev": "eth0", "qdisc": true}: remove
                              our chains (all ``LAB-`` chains when null), their jumps, and
                              (qdisc true) our root qdisc
                              (run and clean then print what ``show`` prints)
    lab-netfault show         JSON of our chains with counters, their jumps, the root qdisc
    lab-netfault queue JSON   NFQUEUE loop (delay, jitter, reorder, corrupt) until SIGTERM

Why only ``iptables``/``tc`` may be run: the helper holds CAP_NET_ADMIN in a lab
container's namespace; nothing else should be reachable through it.
"""

from __future__ import annotations

import heapq
import json
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

CHAIN_PREFIX = "LAB-"
QDISC_HANDLE = "1717:"
HOOKS = ("INPUT", "OUTPUT")
ALLOWED = ("iptables", "tc")

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    if not argv or argv[0] not in ALLOWED:
        raise ValueError(f"refusing to run {list(argv)!r}: only {', '.join(ALLOWED)}")
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


def run_commands(commands: Sequence[Sequence[str]], runner: Runner = _run) -> list[str]:
    """Run each command; the first failure stops the rest. Returns error lines (empty: ok)."""
    for argv in commands:
        done = runner(argv)
        if done.returncode != 0:
            return [f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()[:300]}"]
    return []


def our_chains(rules_text: str) -> list[str]:
    """The ``LAB-`` chains defined in ``iptables -S`` output."""
    return [m for m in re.findall(r"^-N (\S+)$", rules_text, re.M) if m.startswith(CHAIN_PREFIX)]


def jumps_to(rules_text: str, chains: Sequence[str]) -> list[tuple[str, str]]:
    """(hook, rule spec after ``-A hook``) of every rule in a hook jumping to one of ``chains``."""
    out = []
    for line in rules_text.splitlines():
        m = re.match(r"^-A (\S+) (.*)$", line)
        if not m or m.group(1) not in HOOKS:
            continue
        j = re.search(r"(?:^| )-j (\S+)", m.group(2))
        if j and j.group(1) in chains:
            out.append((m.group(1), m.group(2)))
    return out


def clean(
    chains: Sequence[str] | None, dev: str, runner: Runner = _run, qdisc: bool = True
) -> list[str]:
    """Remove our chains (and every jump to them) and, with ``qdisc``, our root qdisc.

    Idempotent: what is already gone is no error, so a rollback and a later cleanup may
    both run it. Returns errors as lines.
    """
    errors: list[str] = []
    listing = runner(["iptables", "-w", "5", "-S"])
    if listing.returncode != 0:
        return [f"iptables -S: {listing.stderr.strip()[:300]}"]
    present = our_chains(listing.stdout)
    wanted = present if chains is None else [c for c in chains if c in present]
    for hook, spec in jumps_to(listing.stdout, wanted):
        done = runner(["iptables", "-w", "5", "-D", hook, *spec.split()])
        if done.returncode != 0:
            errors.append(f"iptables -D {hook} {spec}: {done.stderr.strip()[:200]}")
    for chain in wanted:
        for op in ("-F", "-X"):
            done = runner(["iptables", "-w", "5", op, chain])
            if done.returncode != 0:
                errors.append(f"iptables {op} {chain}: {done.stderr.strip()[:200]}")
    if qdisc and QDISC_HANDLE in root_qdisc(dev, runner):
        done = runner(["tc", "qdisc", "del", "dev", dev, "root"])
        if done.returncode != 0:
            errors.append(f"tc qdisc del dev {dev} root: {done.stderr.strip()[:200]}")
    return errors


def root_qdisc(dev: str, runner: Runner = _run) -> str:
    done = runner(["tc", "qdisc", "show", "dev", dev, "root"])
    return done.stdout.strip() if done.returncode == 0 else ""


def counters(chain: str, runner: Runner = _run) -> list[dict[str, Any]]:
    """Each rule of ``chain`` with its packet and byte counters (``iptables -L -v -x``)."""
    done = runner(["iptables", "-w", "5", "-L", chain, "-v", "-x", "-n"])
    rows = []
    for line in done.stdout.splitlines()[2:]:
        parts = line.split()
        if len(parts) >= 3 and parts[0].isdigit():
            rows.append({"packets": int(parts[0]), "bytes": int(parts[1]), "rule": line.strip()})
    return rows


def show(dev: str, runner: Runner = _run) -> dict[str, Any]:
    listing = runner(["iptables", "-w", "5", "-S"])
    chains = our_chains(listing.stdout)
    return {
        "chains": {c: counters(c, runner) for c in chains},
        "jumps": [f"{h} {s}" for h, s in jumps_to(listing.stdout, chains)],
        "qdisc": root_qdisc(dev, runner),
        "ok": listing.returncode == 0,
        "error": listing.stderr.strip()[:300],
    }


# -- NFQUEUE -------------------------------------------------------------------------


class Shaper:
    """What happens to one queued packet: when to release it and whether to corrupt it.

    Netem's semantics, in user space: each packet waits ``delay`` ± ``jitter`` (uniform);
    with ``reorder`` > 0 that share of packets goes at once, overtaking the delayed ones;
    ``corrupt`` flips one random bit of that share of packets past the IP header (the
    receiver's checksum then discards it, as a corrupted frame would be).
    """

    def __init__(self, params: dict[str, Any], rng: random.Random) -> None:
        self.delay = float(params.get("delay_ms", 0)) / 1000.0
        self.jitter = float(params.get("jitter_ms", 0)) / 1000.0
        self.reorder = float(params.get("reorder", 0)) / 100.0
        self.corrupt = float(params.get("corrupt", 0)) / 100.0
        self.rng = rng

    def wait(self) -> float:
        if self.reorder and self.rng.random() < self.reorder:
            return 0.0
        if not self.delay and not self.jitter:
            return 0.0
        return max(0.0, self.delay + self.rng.uniform(-self.jitter, self.jitter))

    def mangle(self, payload: bytes) -> bytes | None:
        """A corrupted copy of ``payload`` (an IPv4 packet), or None to leave it as it is."""
        if not self.corrupt or self.rng.random() >= self.corrupt or len(payload) < 21:
            return None
        header = (payload[0] & 0x0F) * 4
        if len(payload) <= header:
            return None
        data = bytearray(payload)
        i = self.rng.randrange(header, len(data))
        data[i] ^= 1 << self.rng.randrange(8)
        return bytes(data)


def queue(params: dict[str, Any]) -> int:
    import fnfqueue

    shaper = Shaper(params, random.Random(params.get("seed")))
    conn = fnfqueue.Connection()
    q = conn.bind(int(params["queue"]))
    q.set_mode(0xFFFF, fnfqueue.COPY_PACKET)
    held: list[tuple[float, int, Any]] = []
    lock = threading.Condition()
    stopping = threading.Event()

    def release() -> None:
        while not stopping.is_set():
            with lock:
                while not held and not stopping.is_set():
                    lock.wait(0.5)
                now = time.monotonic()
                due = []
                while held and held[0][0] <= now:
                    due.append(heapq.heappop(held)[2])
                wait = (held[0][0] - now) if held else 0.5
                for p in due:
                    _accept(p)
                if not due:
                    lock.wait(min(wait, 0.5))
        with lock:  # stopping: nothing stays held
            for _, _, p in held:
                _accept(p)
            held.clear()

    def stop(signum: int, frame: object) -> None:
        stopping.set()
        conn.close()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    releaser = threading.Thread(target=release, daemon=True)
    releaser.start()
    print("ready", flush=True)
    seq = 0
    try:
        while not stopping.is_set():
            try:
                for packet in conn:
                    changed = shaper.mangle(packet.payload)
                    if changed is not None:
                        packet.payload = changed
                    wait = shaper.wait()
                    with lock:
                        if wait <= 0:
                            _accept(packet, changed is not None)
                        else:
                            seq += 1
                            heapq.heappush(held, (time.monotonic() + wait, seq, (packet, changed)))
                            lock.notify()
            except fnfqueue.BufferOverflowException:
                # the kernel dropped what did not fit in the socket buffer: those packets
                # are lost (more loss than asked, under a burst), the queue goes on
                print("queue overflow: packets dropped", file=sys.stderr, flush=True)
            except Exception as exc:  # closed by stop(), or the queue failed
                if not stopping.is_set():
                    print(f"queue failed: {exc}", file=sys.stderr, flush=True)
                    return 1
            else:
                break  # the connection was closed
    finally:
        stopping.set()
        releaser.join(timeout=2.0)
    return 0


def _accept(item: Any, mangled: bool = False) -> None:
    import fnfqueue

    packet, changed = item if isinstance(item, tuple) else (item, mangled)
    try:
        packet.accept(fnfqueue.MANGLE_PAYLOAD if changed else 0)
    except Exception as exc:  # a packet whose verdict cannot be given is dropped by the kernel
        print(f"verdict failed: {exc}", file=sys.stderr, flush=True)


def main(argv: Sequence[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[0], [json.loads(a) for a in argv[1:2]]
    arg: dict[str, Any] = args[0] if args else {}
    if cmd == "run":
        errors = run_commands(arg["commands"])
    elif cmd == "clean":
        errors = clean(arg.get("chains"), str(arg.get("dev", "eth0")), qdisc=arg.get("qdisc", True))
    elif cmd == "show":
        print(json.dumps(show(str(arg.get("dev", "eth0")))))
        return 0
    elif cmd == "queue":
        return queue(arg)
    else:
        print(f"unknown command {cmd!r}", file=sys.stderr)
        return 2
    for e in errors:
        print(e, file=sys.stderr)
    # what is in place now, read in the same namespace: the host confirms from this
    print(json.dumps(show(str(arg.get("dev", "eth0")))))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
