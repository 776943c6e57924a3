"""The load loop is open loop: it keeps its rate while replies are slow, and bounds overflow."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from lab.clock import SYSTEM_CLOCK
from lab.history import Outcome, RequestRecord
from lab.loadgen.load import LoadRunner, Sender
from lab.loadgen.schedule import LoadSpec


def _runner(sender: Sender, records: list[RequestRecord], limit: int = 100) -> LoadRunner:
    return LoadRunner(
        clock=SYSTEM_CLOCK,
        sender=sender,
        record=records.append,
        client="c1",
        policy="adaptive",
        service="rpc_test",
        max_in_flight=limit,
    )


async def _until(predicate: object, within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_slow_replies_do_not_slow_the_schedule(fake_sender: Callable[..., Any]) -> None:
    records: list[RequestRecord] = []
    sender = fake_sender(delay=0.2)
    runner = _runner(sender, records)
    start = await runner.start(LoadSpec(rate=200, duration_s=0.25, payload_bytes=5))
    await _until(lambda: not runner.running)
    assert runner.seq == 50  # every arrival issued though none had been answered yet
    await runner.aclose()
    assert len(records) == 50
    assert all(r.outcome is Outcome.OK for r in records)
    issued = sorted(r.issued for r in records)
    assert issued[0] == start and abs(issued[-1] - (start + 49 / 200)) < 1e-9
    assert sender.calls[0][0] == "rpc_test"
    assert sender.calls[0][1] == {"seq": 1, "pad": "xxxxx"}
    assert min(r.latency for r in records) >= 0.2


async def test_overflow_is_recorded_as_rejected(fake_sender: Callable[..., Any]) -> None:
    records: list[RequestRecord] = []
    runner = _runner(fake_sender(delay=0.3), records, limit=5)
    await runner.start(LoadSpec(rate=100, duration_s=0.1))
    await _until(lambda: not runner.running)
    await runner.aclose()
    rejected = [r for r in records if r.outcome is Outcome.REJECTED]
    assert len(records) == 10 and len(rejected) == 5
    assert runner.limit.rejected == 5


async def test_patch_changes_rate_and_stop_halts(fake_sender: Callable[..., Any]) -> None:
    records: list[RequestRecord] = []
    runner = _runner(fake_sender(), records)
    await runner.start(LoadSpec(rate=0.5))
    await _until(lambda: runner.seq >= 1)
    runner.patch(rate=200, payload_bytes=1)
    await _until(lambda: runner.seq >= 20)
    await runner.stop()
    issued = runner.seq
    await asyncio.sleep(0.05)
    assert runner.seq == issued
    await runner.aclose()
    assert runner.limit.in_flight == 0


async def test_aclose_cancels_requests_that_outlive_the_grace(
    fake_sender: Callable[..., Any],
) -> None:
    records: list[RequestRecord] = []
    runner = _runner(fake_sender(delay=10), records)
    await runner.start(LoadSpec(rate=100, duration_s=0.05, timeout_s=30))
    await _until(lambda: not runner.running)
    await runner.aclose(grace=0.05)
    assert records and all(r.outcome is Outcome.CANCELLED for r in records)


async def test_arrivals_past_their_deadline_are_dropped_not_sent_late(
    fake_sender: Callable[..., Any],
) -> None:
    """A stalled loop used to work its backlog off long after the load's end."""
    records: list[RequestRecord] = []
    sender = fake_sender()
    runner = _runner(sender, records, limit=1000)
    spec = LoadSpec(rate=200, duration_s=0.5, timeout_s=0.1)
    start = await runner.start(spec)
    await _until(lambda: runner.seq >= 1)
    # The client itself stalls (a blocking call on its loop, on purpose): ~60 arrivals
    # pass, most of them more than their 0.1 s deadline late.
    time.sleep(0.3)  # noqa: ASYNC251
    await _until(lambda: not runner.running)
    await runner.aclose()
    assert runner.seq == 100  # every arrival accounted for, exactly once
    dropped = [r for r in records if r.outcome is Outcome.DROPPED]
    assert dropped and runner.dropped == len(dropped) == runner.status()["dropped"]
    assert all(r.ended - r.issued >= spec.timeout_s and not r.attempts for r in dropped)
    assert len(sender.calls) == 100 - len(dropped)  # the dropped ones were never sent
    late_sent = [c for c in sender.calls if c[2] < 1e-3]
    assert not late_sent  # nothing went out with no time left
    assert max(r.issued for r in records) < start + 0.5


async def test_in_flight_cap_shrinks_for_large_payloads(fake_sender: Callable[..., Any]) -> None:
    runner = _runner(fake_sender(delay=5.0), [], limit=1000)
    await runner.start(LoadSpec(rate=1, payload_bytes=65536))
    assert runner.limit.limit == 256  # 16 MiB of payload in flight at most
    runner.patch(payload_bytes=64)
    assert runner.limit.limit == 1000
    await runner.aclose(grace=0.0)


async def test_concurrent_starts_leave_exactly_one_load_running(
    fake_sender: Callable[..., Any],
) -> None:
    """Two starts at once each found no loop to stop: the first loop ran on, orphaned."""
    runner = _runner(fake_sender(), [], limit=1000)

    def loops() -> int:  # loops that will go on issuing: not ended, not cancelled
        return sum(
            1
            for t in asyncio.all_tasks()
            if t.get_name() == "load:c1" and not t.done() and not t.cancelling()
        )

    await runner.start(LoadSpec(rate=5))
    await asyncio.gather(*(runner.start(LoadSpec(rate=5 + i)) for i in range(20)))
    assert loops() == 1 and runner.running
    await asyncio.gather(runner.stop(), runner.start(LoadSpec(rate=1)), runner.stop())
    await runner.aclose()
    assert loops() == 0
