"""The collector in memory: cursors, paging, evictions, stale records, a silent client.

The control plane is the in-memory lab client (held to the real API's contract by
tests/loadgen/test_lab_client.py), so these run without a socket or a Toxiproxy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.fake_lab_client import FakeLabClient
from lab.history import (
    ClientEvent,
    History,
    JournalWriter,
    Outcome,
    RequestRecord,
    RunMeta,
    event_to_json,
    read_journal,
    request_to_json,
)
from lab.scenario.run.collector import PAGE, Collector
from lab.scenario.runtime.protocol import Target

A = Target("client-a", "client", control_url="http://a:1", policy="adaptive")
META = RunMeta(run_id="r", scenario="s", seed=1, started_wall=0.0, started_mono=0.0, duration_s=1.0)
B = Target("client-b", "client", control_url="http://b:1", policy="random")


def _request(client: str, seq: int, issued: float) -> dict[str, object]:
    record = RequestRecord(client, "p", seq, issued, issued + 0.01, Outcome.OK)
    return request_to_json(record)


def _event(client: str, t: float) -> dict[str, object]:
    return event_to_json(ClientEvent(client, "p", t, "breaker", "10.0.0.1:1"))


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[JournalWriter]:
    writer = JournalWriter(tmp_path / "journal.jsonl")
    writer.write(META)
    yield writer
    writer.close()


def _collector(journal: JournalWriter, *clients: Target) -> Collector:
    return Collector(list(clients), journal, History(META))


async def test_skip_existing_leaves_an_earlier_runs_records_behind(journal: JournalWriter) -> None:
    lab = FakeLabClient()
    a = lab.add(A.control_url, records=[_request("client-a", i, 1.0) for i in range(7)])
    a.events = [_event("client-a", 1.0)]
    collector = _collector(journal, A)
    await collector.skip_existing(lab)
    a.records.append(_request("client-a", 7, 2.0))
    assert await collector.poll_once(lab) == 1
    assert [r.seq for r in collector.history.requests] == [7]
    assert collector.history.events == []


async def test_pages_until_caught_up_and_counts_what_the_ring_evicted(
    journal: JournalWriter,
) -> None:
    lab = FakeLabClient()
    served = PAGE * 2 + 3
    lab.add(
        A.control_url, records=[_request("client-a", i, 1.0) for i in range(served)], ring=PAGE * 2
    )
    collector = _collector(journal, A)
    got = await collector.poll_once(lab)
    assert got == PAGE * 2  # the first three were evicted before anyone read them
    assert collector.dropped() == {"client-a": 3}
    assert collector.history.requests[0].seq == 3
    journal.close()
    assert len(read_journal(journal.path).requests) == PAGE * 2


async def test_records_from_before_the_load_are_stale_not_ours(journal: JournalWriter) -> None:
    lab = FakeLabClient()
    lab.add(A.control_url, records=[_request("client-a", 0, 1.0), _request("client-a", 1, 5.0)])
    lab.clients[A.control_url].events = [_event("client-a", 0.5), _event("client-a", 6.0)]
    collector = _collector(journal, A)
    collector.not_before = 2.0
    assert await collector.poll_once(lab) == 2
    assert [r.seq for r in collector.history.requests] == [1]
    assert [e.t for e in collector.history.events] == [6.0]
    assert collector.stale() == {"client-a": 2}


async def test_a_silent_client_costs_a_poll_not_its_place(journal: JournalWriter) -> None:
    lab = FakeLabClient()
    a = lab.add(A.control_url, records=[_request("client-a", 0, 1.0)])
    lab.add(B.control_url, records=[_request("client-b", 0, 1.0)])
    collector = _collector(journal, A, B)
    a.down = True
    assert await collector.poll_once(lab) == 1  # B still read
    assert "refused" in collector.errors()["client-a"]
    a.down = False
    a.records.append(_request("client-a", 1, 2.0))
    assert await collector.poll_once(lab) == 2  # A from where it was: both of its records
    assert sorted((r.client, r.seq) for r in collector.history.requests) == [
        ("client-a", 0), ("client-a", 1), ("client-b", 0),
    ]  # fmt: skip


async def test_run_polls_until_stopped_then_once_more(journal: JournalWriter) -> None:
    lab = FakeLabClient()
    a = lab.add(A.control_url)
    collector = _collector(journal, A)
    collector.interval = 0.01
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(lab, stop))
    a.records.append(_request("client-a", 0, 1.0))
    stop.set()
    a.records.append(_request("client-a", 1, 1.0))  # before the final poll: still collected
    await asyncio.wait_for(task, 2.0)
    assert [r.seq for r in collector.history.requests] == [0, 1]
