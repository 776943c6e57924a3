"""The load a client accepts: one place for the limits the control API and scenarios share.

A client is one Python process in a 256 MiB container. One careless
``POST /load/start`` used to kill it (4 MiB payloads at 100/s: OOM in under a second)
or Toxiproxy behind it (100,000/s: ~2,000 connections). The limits below keep every
accepted load within what the process can carry; the scenario loader
(:mod:`lab.scenario.plan.spec`) checks a file's load against the same function, so a file
is refused by ``lab validate`` rather than by a client mid-run.

Why these numbers:

- :data:`MAX_RATE` 20,000/s: about twice what one client process issues on a free core
  (``benchmarks/bench_client_rate.py``: 8-9k/s; the lab runs 100); above it arrivals
  could only be dropped. Rate alone is not what endangers a process: connections,
  requests in flight and bytes per second have their own bounds below.
- :data:`MAX_PAYLOAD_BYTES` 64 KiB and :data:`MAX_BYTES_PER_S` 8 MiB/s (rate x payload):
  each request holds its body about four times (encoded, sent, echoed, decoded), and the
  echo crosses Toxiproxy twice; 1 MiB at 10,000/s would be 10 GiB/s.
- :data:`IN_FLIGHT_PAYLOAD_BYTES` 16 MiB: requests in flight are capped at this much
  payload (256 at 64 KiB; the configured cap, default 1,000, at small payloads), so a
  stalled peer cannot make pending bodies outgrow the container.
- :data:`MAX_CONNECTIONS` 256 (:data:`MAX_CONNECTIONS_PER_PEER` 128): the pool's bound,
  so one client can never open unbounded connections through Toxiproxy, and one stalled
  peer leaves half the pool to the others.
- :data:`MAX_DURATION_S` one day and :data:`MAX_TIMEOUT_S` 60 s (the scenario's bound).
- seeds: integers in the signed 64-bit range.
"""

from __future__ import annotations

from lab.errors import SettingsError

MAX_RATE = 20_000.0
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_BYTES_PER_S = 8 * 1024 * 1024
MAX_DURATION_S = 86_400.0
MAX_TIMEOUT_S = 60.0
SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1

MAX_IN_FLIGHT = 1_000
"""The default cap on requests in flight (``--max-in-flight``)."""

IN_FLIGHT_PAYLOAD_BYTES = 16 * 1024 * 1024

MAX_CONNECTIONS = 256
MAX_CONNECTIONS_PER_PEER = 128

CONNECTION_IDLE_S = 3.0
"""How long the client keeps an idle pooled connection: below the servers' 5 s idle
timeout (:mod:`lab.httplimits`; Toxiproxy closes our side when the worker closes its
side), so a server never closes a connection the client is about to reuse."""


def load_problem(rate: float, payload_bytes: int) -> tuple[str, str] | None:
    """``(field, why)`` when ``rate`` and ``payload_bytes`` together are refused, else None."""
    if not 0.0 <= rate <= MAX_RATE:
        return "rate", f"{rate!r} is not within 0..{MAX_RATE:g} requests per second"
    if not 0 <= payload_bytes <= MAX_PAYLOAD_BYTES:
        return "payload_bytes", f"{payload_bytes!r} is not within 0..{MAX_PAYLOAD_BYTES}"
    if rate * payload_bytes > MAX_BYTES_PER_S:
        return "payload_bytes", (
            f"{payload_bytes} bytes at {rate:g}/s is {rate * payload_bytes / 2**20:.1f} MiB/s; "
            f"rate x payload_bytes must stay within {MAX_BYTES_PER_S // 2**20} MiB/s"
        )
    return None


def check_load(rate: float, payload_bytes: int) -> None:
    """Raise :class:`SettingsError` naming the field when :func:`load_problem` finds one."""
    problem = load_problem(rate, payload_bytes)
    if problem is not None:
        raise SettingsError(f"{problem[0]}: {problem[1]}")


def in_flight_cap(max_in_flight: int, payload_bytes: int) -> int:
    """Requests allowed in flight: the configured cap, or fewer for large payloads."""
    by_bytes = IN_FLIGHT_PAYLOAD_BYTES // max(payload_bytes, 1)
    return max(1, min(max_in_flight, by_bytes))
