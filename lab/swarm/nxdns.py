"""A DNS server for the local swarm's hub that answers every query "no such name" at once.

Why: tasks resolve through Docker's embedded DNS (127.0.0.11), which forwards names it does
not know to the engine's ``--dns`` servers. The node namespaces reach no real resolver, and
engine 20.10's embedded DNS sends the task no answer at all when its forwarders fail or
refuse, so glibc waits out its timeouts: ~20 s for every name that does not resolve, the
same stuck dial docs/lab.md describes. An immediate NXDOMAIN from the hub (.254:53) makes
such a lookup fail in milliseconds, as it would on a network with a working resolver.

Run as ``python -m lab.swarm.nxdns ADDRESS`` inside the hub's network namespace.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from lab.errors import RuntimeUnavailable
from lab.swarm import netns, pids

HEADER = struct.Struct(">HHHHHH")
NXDOMAIN = 3
QR, AA, RA = 0x8000, 0x0400, 0x0080
OPCODE_MASK, RD = 0x7800, 0x0100


def _question_end(query: bytes) -> int | None:
    """Offset just past the first question (name, type, class); None if malformed."""
    pos = HEADER.size
    while pos < len(query):
        length = query[pos]
        if length == 0:
            end = pos + 1 + 4
            return end if end <= len(query) else None
        if length & 0xC0:  # compression has no place in a question
            return None
        pos += 1 + length
    return None


def nxdomain_reply(query: bytes) -> bytes | None:
    """The NXDOMAIN answer to ``query`` (its id and question echoed); None for a packet that
    is not a one-question standard query (pure)."""
    if len(query) < HEADER.size:
        return None
    ident, flags, qdcount, _, _, _ = HEADER.unpack_from(query)
    if flags & QR or flags & OPCODE_MASK or qdcount != 1:
        return None
    end = _question_end(query)
    if end is None:
        return None
    reply_flags = QR | AA | RA | (flags & RD) | NXDOMAIN
    return HEADER.pack(ident, reply_flags, 1, 0, 0, 0) + query[HEADER.size : end]


def serve(address: str, port: int = 53) -> None:
    """Answer queries on ``address:port`` (UDP) forever."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((address, port))
        while True:
            query, peer = sock.recvfrom(4096)
            reply = nxdomain_reply(query)
            if reply is not None:
                sock.sendto(reply, peer)


def start(hub: int, env: Mapping[str, str], log: Path) -> int:
    """Start the responder in the namespace of ``hub`` on the hub's address; its pid."""
    lab_root = str(Path(__file__).resolve().parents[2])
    child_env = dict(env)
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (lab_root, env.get("PYTHONPATH")) if p)
    argv = netns.in_netns(hub, sys.executable, "-m", "lab.swarm.nxdns", netns.HUB_ADDRESS)
    try:
        return pids.spawn_detached(argv, child_env, log)
    except OSError as exc:
        raise RuntimeUnavailable(f"cannot start the hub's DNS responder: {exc}") from exc


def wait_ready(pid: int, timeout: float = 5.0) -> None:
    """Poll until the responder answers (the host reaches the hub through its veth);
    RuntimeUnavailable if it does not in time."""
    query = HEADER.pack(0xABCD, RD, 1, 0, 0, 0) + b"\x05probe\x00" + struct.pack(">HH", 1, 1)
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.1)
        while time.monotonic() < deadline:
            try:
                sock.sendto(query, (netns.HUB_ADDRESS, 53))
                if sock.recv(512)[:2] == query[:2]:
                    return
            except OSError:
                time.sleep(0.05)
    raise RuntimeUnavailable(
        f"the hub's DNS responder (pid {pid}) does not answer on {netns.HUB_ADDRESS}:53"
    )


if __name__ == "__main__":
    serve(sys.argv[1])
