"""The ``timeline`` section of a scenario: fault, heal, repeating and chaos steps, parsed.

Split from ``spec.py`` because it is the one part with cross-field rules of its own:
a heal names a fault by id or by target and must come after it; a repeating step
(``every``/``for``/``until``) or a chaos step expands to several faults, and a plan may
inject at most :data:`MAX_INJECTIONS`. The steps it returns are records of
:mod:`lab.scenario.plan.steps`; :mod:`lab.scenario.plan.intervals` expands them into the
faults of the plan and checks that two never hold one target at once.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lab.scenario.plan import nodekinds
from lab.scenario.plan.kinds import KINDS, KindInfo, Params, check_target_type, kind_info
from lab.scenario.plan.quantities import format_duration, parse_duration, parse_number
from lab.scenario.plan.steps import NAME, ChaosStep, FaultStep, HealStep, Step, Topology, repeats
from lab.scenario.plan.yamlsource import (
    Field,
    Section,
    YList,
    YMap,
    describe,
    did_you_mean,
    quote,
    quote_text,
)

CHAOS = "chaos"
# Every key a step may carry, for the did-you-mean of a misspelt one.
STEP_KEYS: tuple[str, ...] = tuple(
    dict.fromkeys(
        [
            "at",
            "fault",
            "heal",
            "target",
            "id",
            "for",
            "every",
            "until",
            "targets",
            "kinds",
            "count",
            "hold",
            *(p for k in KINDS.values() for p in k.params),
        ]
    )
)
MIN_FAULT_S = 0.1
"""The shortest a fault may be held (``for``, ``hold``): injecting and confirming one
takes milliseconds of API calls, so a 2 ms fault would measure the engine, not the lab."""
MAX_STEPS = 1000
"""Steps a timeline may list."""
MAX_INJECTIONS = 1000
"""Faults a plan may inject in all, repetitions and chaos included: a step repeating
every 2 ms once expanded to 28,000 injections."""


def _target(value: Any, at: Field, topology: Topology, info: KindInfo | None) -> str:
    services = topology.services()
    if info is not None and info.via == "node":
        return nodekinds.node_target(value, at, topology.nodes, services, info.name)
    if info is None and isinstance(value, str) and nodekinds.NODE_INDEX.match(value):
        return nodekinds.node_target(value, at, topology.nodes, services, "a node fault")
    if not isinstance(value, str) or value not in services:
        raise at.error(
            f"no service {describe(value)} in the topology{did_you_mean(str(value), services)}; "
            f"services: {', '.join(services)}"
        )
    if info is not None:
        check_target_type(info, topology.kind_of(value), value, at)
    return value


def parse_timeline(value: Any, at: Field, topology: Topology, duration: float) -> tuple[Step, ...]:
    if not isinstance(value, YList):
        raise at.error(f"expected a list of steps, got {describe(value)}")
    if len(value) > MAX_STEPS:
        raise at.error(f"{len(value)} steps; a timeline may have at most {MAX_STEPS}")
    raw: list[FaultStep | ChaosStep | tuple[int, float, str, Field]] = []
    auto = 0
    explicit: dict[str, Field] = {}
    for i, item in enumerate(value):
        iat = at.item(value, i)
        s = Section(item, iat, "a step like {at: 15s, fault: partition, target: worker-2}")
        at_v, at_at = s.need("at")
        t = parse_duration(at_v, at_at)
        if t >= duration:
            raise at_at.error(
                f"{format_duration(t)} is not within duration {format_duration(duration)}"
            )
        for key in s.extra_keys():
            if key not in STEP_KEYS:
                raise iat.key(s.map, key).error(
                    f"unknown key {quote(key)}{did_you_mean(key, STEP_KEYS)}"
                )
        is_fault, is_heal = s.has("fault"), s.has("heal")
        if is_fault == is_heal:
            raise iat.error("a step has either 'fault' or 'heal'")
        if is_heal:
            h_v, h_at = s.need("heal")
            if not isinstance(h_v, str):
                raise h_at.error(f"expected a fault id or a target, got {describe(h_v)}")
            s.done()
            raw.append((i, t, h_v, h_at))
            continue
        auto += 1
        fid = f"f{auto}"
        if s.has("id"):
            id_v, id_at = s.need("id")
            if not isinstance(id_v, str) or not NAME.match(id_v):
                raise id_at.error(f"expected an id of letters, digits, _ . -, got {describe(id_v)}")
            if id_v in topology.services():
                raise id_at.error(f"{id_v!r} is a service name; pick another id")
            if id_v in explicit:
                raise id_at.error(f"id {id_v!r} is used twice")
            explicit[id_v] = id_at
            fid = id_v
        f_v, f_at = s.need("fault")
        info = kind_info(f_v, f_at, extra=(CHAOS,))
        if info is None:
            raw.append(_chaos(s, iat, t, fid, topology, duration))
        else:
            raw.append(_fault(s, info, t, fid, topology, duration))
        s.done()
    ids = [r.id for r in raw if not isinstance(r, tuple)]
    for fid, id_at in explicit.items():
        if ids.count(fid) > 1:
            raise id_at.error(f"id {fid!r} is also the automatic id of another step")
    _check_injections(raw, at)
    return _resolve_heals(raw, duration)


def _check_injections(raw: list[Any], at: Field) -> None:
    """Refuse a plan of more than :data:`MAX_INJECTIONS` faults, naming the step that tips it."""
    total = 0
    for r in raw:
        if isinstance(r, ChaosStep):
            total += r.count
            line = r.line
        elif isinstance(r, FaultStep):
            assert r.until_s is not None or not r.repeating
            total += (
                repeats(r.at_s, r.every_s, r.until_s)
                if r.every_s is not None and r.until_s is not None
                else 1
            )
            line = r.line
        else:
            continue
        if total > MAX_INJECTIONS:
            raise Field(at.file, line, at.path).error(
                f"the plan would inject {total} faults by this step; at most {MAX_INJECTIONS}"
            )


def _fault(
    s: Section, info: KindInfo, t: float, fid: str, topology: Topology, duration: float
) -> FaultStep:
    tg_v, tg_at = s.need("target")
    target = _target(tg_v, tg_at, topology, info)
    every = for_ = until = None
    if s.has("for"):
        f_v, f_at = s.need("for")
        if info.instant:
            raise f_at.error(f"{info.name} heals itself; it takes no 'for'")
        for_ = parse_duration(f_v, f_at, allow_zero=False, low=MIN_FAULT_S)
    if s.has("every") or s.has("until"):
        e_v, e_at = s.need("every")
        every = parse_duration(e_v, e_at, allow_zero=False)
        if info.instant:
            raise e_at.error(f"{info.name} heals itself; repeat it with separate steps")
        if for_ is None:
            raise s.at.key(s.map, "for").error("a repeating step ('every') needs 'for'")
        if for_ >= every:
            raise s.at.key(s.map, "for").error(
                f"{format_duration(for_)} must be shorter than every {format_duration(every)}"
            )
        u_v, u_at = s.get("until", duration)
        until = parse_duration(u_v, u_at)
        if until <= t:
            raise u_at.error(f"{format_duration(until)} must be after at {format_duration(t)}")
        if until > duration:
            raise u_at.error(
                f"{format_duration(until)} is past duration {format_duration(duration)}"
            )
        n = repeats(t, every, until)
        last_end = t + (n - 1) * every + for_
        if last_end > duration:
            raise u_at.error(
                f"the last repetition (at {format_duration(last_end - for_)}) lasts until "
                f"{format_duration(last_end)}, past duration {format_duration(duration)}"
            )
    elif for_ is not None and t + for_ > duration:
        raise s.at.key(s.map, "for").error(
            f"the fault would last until {format_duration(t + for_)}, past duration "
            f"{format_duration(duration)}"
        )
    params = info.parse(s)
    return FaultStep(s.at.line, t, fid, info.name, target, params, for_, every, until)


def _chaos(
    s: Section, iat: Field, t: float, fid: str, topology: Topology, duration: float
) -> ChaosStep:
    tg_v, tg_at = s.get("targets")
    if tg_v is None:
        targets = tuple(f"worker-{i}" for i in range(1, topology.workers + 1))
    elif not isinstance(tg_v, YList) or not tg_v:
        raise tg_at.error(f"expected a non-empty list of services, got {describe(tg_v)}")
    else:
        targets = tuple(_target(x, tg_at.item(tg_v, j), topology, None) for j, x in enumerate(tg_v))
    k_v, k_at = s.need("kinds")
    if not isinstance(k_v, YList) or not k_v:
        raise k_at.error(f"expected a non-empty list of fault kinds, got {describe(k_v)}")
    kinds: list[tuple[str, Params]] = []
    for j, entry in enumerate(k_v):
        eat = k_at.item(k_v, j)
        if isinstance(entry, str):
            info = kind_info(entry, eat)
            assert info is not None
            params = info.parse(Section(_empty_map(eat), eat))
        else:
            es = Section(entry, eat, "a kind name or {kind: {params}}")
            if len(es.map) != 1:
                raise eat.error("expected one kind with its parameters, like {latency: {...}}")
            name = next(iter(es.map))
            info = kind_info(name, eat)
            assert info is not None
            p_v, p_at = es.get(name)
            params = info.parse(Section(p_v if p_v is not None else _empty_map(p_at), p_at))
            es.done()
        if info.instant:
            raise eat.error(f"{info.name} heals itself; chaos holds each fault for 'hold'")
        for target in targets:
            check_target_type(info, topology.kind_of(target), target, eat)
        kinds.append((info.name, params))
    c_v, c_at = s.need("count")
    count = int(parse_number(c_v, c_at, low=1, high=1000, integer=True))
    h_v, h_at = s.need("hold")
    hold = parse_duration(h_v, h_at, allow_zero=False, low=MIN_FAULT_S)
    e_v, e_at = s.get("every", format_duration(2 * hold))
    every = parse_duration(e_v, e_at, allow_zero=False)
    if every <= hold:
        raise e_at.error(
            f"{format_duration(every)} must be longer than hold {format_duration(hold)}"
        )
    end = t + (count - 1) * every + hold
    if end > duration:
        raise c_at.error(
            f"{count} faults every {format_duration(every)} held {format_duration(hold)} "
            f"last until {format_duration(end)}, past duration {format_duration(duration)}"
        )
    return ChaosStep(iat.line, t, fid, targets, tuple(kinds), count, hold, every)


def _empty_map(at: Field) -> YMap:
    m = YMap()
    m.line = at.line
    return m


def _resolve_heals(
    raw: list[FaultStep | ChaosStep | tuple[int, float, str, Field]], duration: float
) -> tuple[Step, ...]:
    """Give each heal step its fault id, and each healed fault its end time."""
    singles = {r.id: r for r in raw if isinstance(r, FaultStep) and not r.repeating}
    others = {r.id for r in raw if not isinstance(r, tuple)} - set(singles)
    ends: dict[str, float] = {
        f.id: f.at_s + f.for_s for f in singles.values() if f.for_s is not None
    }
    heals = sorted((r for r in raw if isinstance(r, tuple)), key=lambda h: (h[1], h[0]))
    resolved: dict[int, HealStep] = {}
    lines: dict[str, int] = {}
    for index, t, ref, h_at in heals:
        if ref in others:
            raise h_at.error(f"{ref} heals itself (a repeating or chaos step)")
        if ref in singles:
            f = singles[ref]
        else:
            on_target = [f for f in singles.values() if f.target == ref]
            if not on_target:
                known = sorted(set(singles) | {f.target for f in singles.values()})
                raise h_at.error(
                    f"no fault {quote(ref)} to heal{did_you_mean(ref, known)}; fault ids and "
                    f"targets: {', '.join(quote_text(k) for k in known) or 'none'}"
                )
            active = [f for f in on_target if f.at_s < t and f.id not in ends]
            if not active:
                first = min(on_target, key=lambda f: f.at_s)
                if first.at_s >= t:
                    raise h_at.error(
                        f"heal at {format_duration(t)} comes before its fault {first.id} at "
                        f"{format_duration(first.at_s)}"
                    )
                raise h_at.error(f"no fault on {ref} is active at {format_duration(t)}")
            f = max(active, key=lambda f: f.at_s)
        if KINDS[f.kind].instant:
            raise h_at.error(f"{f.id} ({f.kind}) heals itself")
        if f.at_s >= t:
            raise h_at.error(
                f"heal at {format_duration(t)} comes before its fault {f.id} at "
                f"{format_duration(f.at_s)}"
            )
        if f.for_s is not None:
            raise h_at.error(f"{f.id} already heals itself after 'for'")
        if f.id in ends:
            raise h_at.error(f"{f.id} is already healed at {format_duration(ends[f.id])}")
        ends[f.id] = t
        lines[f.id] = h_at.line
        resolved[index] = HealStep(h_at.line, t, ref, f.id)
    out: list[Step] = []
    for r in raw:
        if isinstance(r, tuple):
            out.append(resolved[r[0]])
        elif isinstance(r, FaultStep) and r.id in ends and r.for_s is None:
            out.append(dataclasses.replace(r, healed_at_s=ends[r.id], healed_line=lines[r.id]))
        else:
            out.append(r)
    return tuple(out)
