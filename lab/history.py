"""The run history: the single source of truth that checks and reports read.

Jepsen's lesson: record everything as it happens, judge afterwards. A client records
each request it issues (with every attempt, its peer and outcome); the scenario engine
records each fault with its confirmed start and end, and copies the clients' breaker
and gossip events. Checks (``lab.scenario.checks.recovery``) and reports (``lab.report``) are
pure functions of a :class:`History`.

Timestamps are seconds on CLOCK_MONOTONIC (see :mod:`lab.clock` for why the host and
the containers share it). The journal on disk is JSON lines, one record per line with
a ``"type"`` field, so an aborted run keeps every line it flushed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class Outcome(StrEnum):
    """How a request or one attempt ended."""

    OK = "ok"
    ERROR = "error"  # the worker replied with an error, or the connection failed
    TIMEOUT = "timeout"  # no answer within the attempt timeout / deadline: effect unknown
    REJECTED = "rejected"  # never sent: no peer admitted, or the retry budget said no
    CANCELLED = "cancelled"  # a hedge or attempt abandoned because another one won
    DROPPED = "dropped"  # never sent: the client fell behind its schedule past the deadline


NOT_SENT = frozenset({Outcome.REJECTED, Outcome.DROPPED})
"""Requests that never left the client: they have no latency to measure."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try of a request against one peer."""

    peer: str
    start: float
    end: float
    outcome: Outcome
    error: str | None = None
    hedge: bool = False


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One logical request as the client's user saw it."""

    client: str
    policy: str
    seq: int
    issued: float
    ended: float
    outcome: Outcome
    attempts: tuple[Attempt, ...] = ()
    error: str | None = None

    @property
    def latency(self) -> float:
        return self.ended - self.issued

    @property
    def retries(self) -> int:
        return sum(1 for a in self.attempts[1:] if not a.hedge)


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """A fault as the nemesis saw it; ``started``/``ended`` are *confirmed* times."""

    id: str
    kind: str  # e.g. "partition", "latency", "kill"
    target: str  # the service the scenario named, e.g. "worker-2"
    peers: tuple[str, ...]  # the peer addresses clients see for that target
    requested: float
    started: float | None = None
    ended: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ClientEvent:
    """Something a client reported besides requests: a breaker transition, a gossip hint."""

    client: str
    policy: str
    t: float
    kind: str  # "breaker" | "gossip_hint" | "gossip_sent" | "discovery"
    peer: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RunMeta:
    """What a report header needs: what ran, when, with what, and how it ended."""

    run_id: str
    scenario: str
    seed: int
    started_wall: float
    started_mono: float
    duration_s: float
    status: str = "running"  # running | completed | aborted
    abort_reason: str | None = None
    ended_mono: float | None = None
    versions: dict[str, str] = field(default_factory=dict)  # what ran: runtime, toxiproxy
    command: str = ""
    phases: list[dict[str, Any]] = field(default_factory=list)
    noise: dict[str, Any] = field(default_factory=dict)  # lab.scenario.checks.noise.NoiseMonitor
    # What the run noticed about itself. Each is written into the JSON ``versions`` object
    # (journal and summary.json) under its own name, as it always was (docs/contracts.md).
    clock: str | None = None  # the clock probe's finding, one line
    watch: str | None = None  # what the watch did, one line
    history_dropped: dict[str, int] | None = None  # per client, records the client dropped
    history_stale: dict[str, int] | None = None  # per client, records older than the run
    junit_error: str | None = None  # why junit.xml could not be written
    report_error: str | None = None  # why report.html could not be rendered

    def recorded_versions(self) -> dict[str, str]:
        """``versions`` as the JSON files carry it: the versions, then each note that is set.

        Why one flat object of strings: summary.json's ``versions`` and the journal's meta
        were written that way before the notes had fields of their own, and readers of
        either keep working.
        """
        out = dict(self.versions)
        for name in _NOTES:
            value = getattr(self, name)
            if value is not None:
                out[name] = json.dumps(value) if name in _COUNT_NOTES else value
        return out


# The order the notes land in ``versions``: the order a run finds them out.
_NOTES = ("clock", "watch", "history_dropped", "history_stale", "junit_error", "report_error")
_COUNT_NOTES = ("history_dropped", "history_stale")  # per-client counts, JSON in a string


@dataclass(slots=True)
class History:
    """Everything a run recorded."""

    meta: RunMeta
    requests: list[RequestRecord] = field(default_factory=list)
    faults: list[FaultRecord] = field(default_factory=list)
    events: list[ClientEvent] = field(default_factory=list)

    def requests_of(self, policy: str) -> list[RequestRecord]:
        return [r for r in self.requests if r.policy == policy]

    def policies(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.requests:
            seen.setdefault(r.policy, None)
        return list(seen)


# -- serialisation ---------------------------------------------------------------------


def group_clients(
    history: History, declared: Iterable[tuple[str, str]] = ()
) -> tuple[str, dict[str, str]]:
    """How a run's clients are keyed in its summary and report: ``("policy" | "client",
    client -> key)``.

    By policy when each policy has one client (the usual case, and the one the tables
    read best), else by client name. The clients are those ``declared`` (client, policy)
    and any that issued a request or reported an event. The one rule, so summary.json and
    the report cannot key the same run two ways.
    """
    policy_of = dict(declared)
    for r in history.requests:
        policy_of.setdefault(r.client, r.policy)
    for e in history.events:
        policy_of.setdefault(e.client, e.policy)
    if len(set(policy_of.values())) == len(policy_of):
        return "policy", dict(policy_of)
    return "client", {c: c for c in policy_of}


def request_to_json(r: RequestRecord) -> dict[str, Any]:
    """The record as JSON-ready dict, fields in declaration order (as ``asdict`` gives).

    Written out field by field: requests are the one record type serialised per request
    (each client's ``/history`` pages, the engine's journal), and ``asdict``'s generic
    deep copy cost more CPU than the rest of the collector while the lab was measuring.
    """
    return {
        "client": r.client,
        "policy": r.policy,
        "seq": r.seq,
        "issued": r.issued,
        "ended": r.ended,
        "outcome": r.outcome,
        "attempts": [
            {
                "peer": a.peer,
                "start": a.start,
                "end": a.end,
                "outcome": a.outcome,
                "error": a.error,
                "hedge": a.hedge,
            }
            for a in r.attempts
        ],
        "error": r.error,
        "type": "request",
    }


def _tagged(record: Any, type_: str) -> dict[str, Any]:
    """A record's fields plus the ``type`` a journal line is read back by."""
    d = asdict(record)
    d["type"] = type_
    return d


def fault_to_json(f: FaultRecord) -> dict[str, Any]:
    return _tagged(f, "fault")


def event_to_json(e: ClientEvent) -> dict[str, Any]:
    return _tagged(e, "event")


def request_from_json(d: dict[str, Any]) -> RequestRecord:
    return RequestRecord(
        client=str(d["client"]),
        policy=str(d["policy"]),
        seq=int(d["seq"]),
        issued=float(d["issued"]),
        ended=float(d["ended"]),
        outcome=Outcome(d["outcome"]),
        attempts=tuple(
            Attempt(
                peer=str(a["peer"]),
                start=float(a["start"]),
                end=float(a["end"]),
                outcome=Outcome(a["outcome"]),
                error=a.get("error"),
                hedge=bool(a.get("hedge", False)),
            )
            for a in d.get("attempts", ())
        ),
        error=d.get("error"),
    )


def fault_from_json(d: dict[str, Any]) -> FaultRecord:
    return FaultRecord(
        id=str(d["id"]),
        kind=str(d["kind"]),
        target=str(d["target"]),
        peers=tuple(d.get("peers", ())),
        requested=float(d["requested"]),
        started=None if d.get("started") is None else float(d["started"]),
        ended=None if d.get("ended") is None else float(d["ended"]),
        params=dict(d.get("params", {})),
        error=d.get("error"),
    )


def event_from_json(d: dict[str, Any]) -> ClientEvent:
    return ClientEvent(
        client=str(d["client"]),
        policy=str(d["policy"]),
        t=float(d["t"]),
        kind=str(d["kind"]),
        peer=d.get("peer"),
        detail=dict(d.get("detail", {})),
    )


def meta_to_json(m: RunMeta) -> dict[str, Any]:
    d = asdict(m)
    for name in _NOTES:
        del d[name]
    d["versions"] = m.recorded_versions()
    d["type"] = "meta"
    return d


def meta_from_json(d: dict[str, Any]) -> RunMeta:
    fields = {k: v for k, v in d.items() if k != "type"}
    versions = dict(fields.pop("versions", None) or {})
    notes: dict[str, Any] = {name: versions.pop(name) for name in _NOTES if name in versions}
    for name in _COUNT_NOTES:
        if name in notes:
            notes[name] = json.loads(notes[name])
    return RunMeta(**fields, versions=versions, **notes)


def _line(record: RequestRecord | FaultRecord | ClientEvent | RunMeta) -> str:
    if isinstance(record, RequestRecord):
        d = request_to_json(record)
    elif isinstance(record, FaultRecord):
        d = fault_to_json(record)
    elif isinstance(record, ClientEvent):
        d = event_to_json(record)
    else:
        d = meta_to_json(record)
    return json.dumps(d, separators=(",", ":")) + "\n"


class JournalWriter:
    """Appends records to ``journal.jsonl`` as they happen, flushing each line.

    Fault records are written twice (at injection and at heal); the reader keeps the last
    line per fault id. The meta line is written at start and again at the end.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fh = path.open("a", encoding="utf-8")

    def write(self, record: RequestRecord | FaultRecord | ClientEvent | RunMeta) -> None:
        self._fh.write(_line(record))
        self._fh.flush()

    def write_many(self, records: Iterable[RequestRecord | ClientEvent]) -> None:
        """One write and one flush for a batch (a collector's page), not one per line."""
        self._fh.write("".join(_line(r) for r in records))
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                # A run killed mid-write leaves at most one torn last line: skip it.
                continue


def read_journal(path: Path) -> History:
    """Rebuild a :class:`History` from a journal file (last meta and fault line win)."""
    meta: RunMeta | None = None
    faults: dict[str, FaultRecord] = {}
    requests: list[RequestRecord] = []
    events: list[ClientEvent] = []
    for d in _lines(path):
        kind = d.get("type")
        if kind == "request":
            requests.append(request_from_json(d))
        elif kind == "fault":
            f = fault_from_json(d)
            faults[f.id] = f
        elif kind == "event":
            events.append(event_from_json(d))
        elif kind == "meta":
            meta = meta_from_json(d)
    if meta is None:
        raise ValueError(f"{path}: no meta record; not a grenache-lab journal")
    requests.sort(key=lambda r: r.issued)
    events.sort(key=lambda e: e.t)
    return History(meta=meta, requests=requests, faults=list(faults.values()), events=events)
