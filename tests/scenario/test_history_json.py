"""The request record's JSON form: what clients page out and the journal keeps."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from lab.history import (
    Attempt,
    ClientEvent,
    JournalWriter,
    Outcome,
    RequestRecord,
    RunMeta,
    read_journal,
    request_from_json,
    request_to_json,
)

RECORDS = [
    RequestRecord("client-a", "adaptive", 1, 10.0, 10.5, Outcome.REJECTED, (), "no peer"),
    RequestRecord(
        "client-a",
        "adaptive",
        2,
        11.0,
        11.2,
        Outcome.OK,
        (
            Attempt("10.0.0.2:1337", 11.0, 11.1, Outcome.TIMEOUT, "attempt timeout"),
            Attempt("10.0.0.3:1337", 11.05, 11.2, Outcome.OK, None, hedge=True),
        ),
    ),
]


@pytest.mark.parametrize("record", RECORDS)
def test_the_json_form_is_the_dataclass_fields_in_order(record: RequestRecord) -> None:
    generic = asdict(record) | {"type": "request"}
    assert json.dumps(request_to_json(record)) == json.dumps(generic)
    assert request_from_json(json.loads(json.dumps(request_to_json(record)))) == record


def test_a_batch_is_written_whole_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    writer = JournalWriter(path)
    writer.write(RunMeta("run-1", "partition", 7, 0.0, 0.0, 60.0))
    event = ClientEvent("client-a", "adaptive", 11.1, "breaker", "10.0.0.2:1337", {"to": "open"})
    writer.write_many(RECORDS)
    writer.write_many([event])
    writer.write_many([])
    writer.close()
    assert len(path.read_text().splitlines()) == 4
    history = read_journal(path)
    assert history.requests == RECORDS
    assert history.events == [event]
