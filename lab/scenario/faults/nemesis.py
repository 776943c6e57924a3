"""The nemesis: every fault kind by name, one class per kind (``inject``/``heal``/``undo``).

Three families:

- Toxiproxy (via :class:`~lab.toxiproxy_adapter.ToxiproxyAdapter`) on the proxy in front of
  a worker: latency (+jitter), partition (``timeout`` 0 on both streams: data dropped, the
  client hangs), one_way_partition (one stream), down (proxy disabled: refused, open
  connections closed), reset_peer, bandwidth, slow_close. Toxic names start with
  :data:`TOXIC_PREFIX`, so leftover cleanup removes ours and nobody else's.
- Runtime (via :class:`~lab.scenario.runtime.protocol.Runtime`) on a worker or grape: kill, stop,
  pause, restart, grape_partition (network disconnect).
- Worker control (``PUT /behaviour`` on the worker's control port): slow (application
  latency) and errors (error rate); heal restores the behaviour read before injecting.
  The antagonist (``PUT``/``DELETE /antagonist``) takes a share of the worker's CPU.

Composite faults (flapping, seeded chaos) arrive already expanded in the plan, so each step
here is one of these. Every call blocks; the runner runs them in a thread.
"""

from __future__ import annotations

from lab.scenario.faults.base import Fault
from lab.scenario.faults.container import GrapePartition, Kill, Pause, Restart, Stop
from lab.scenario.faults.toxic import (
    Bandwidth,
    Down,
    Latency,
    OneWayPartition,
    Partition,
    ResetPeer,
    SlowClose,
)
from lab.scenario.faults.worker import Antagonist, Errors, Slow

FAULT_KINDS: dict[str, type[Fault]] = {
    cls.kind: cls
    for cls in (
        Latency,
        Partition,
        OneWayPartition,
        ResetPeer,
        Bandwidth,
        SlowClose,
        Down,
        Kill,
        Stop,
        Pause,
        Restart,
        GrapePartition,
        Slow,
        Errors,
        Antagonist,
    )
}
