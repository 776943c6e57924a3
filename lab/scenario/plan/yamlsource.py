"""YAML with line numbers: the reader under ``spec.py``.

Why a loader subclass: a scenario error must name the file, the line and the field
(``scenarios/x.yaml:12: timeline[1].at: ...``), and plain ``yaml.safe_load`` forgets
where each value came from. :class:`LineLoader` is PyYAML's ``SafeLoader`` (no
arbitrary objects) whose mappings and sequences remember the line of each key and item.
:class:`Field` then carries (file, line, dotted path) down the validator so every
message is built in one place.

Limits, because a scenario file may come from anyone and ``lab validate`` must answer
within a second with a ``file:line`` error, never a traceback or gigabytes of memory:
the file's size (:data:`MAX_BYTES`), nesting depth (:data:`MAX_DEPTH`, PyYAML composes
recursively), number of nodes (:data:`MAX_NODES`), digits of an integer
(:data:`MAX_INT_DIGITS`); no anchors or aliases (``&a``/``*a``: with merge keys they
expand exponentially, and a scenario has no use for them); values quoted in messages
are cut to :data:`QUOTE_CHARS`, and no did-you-mean is computed for a word longer than
:data:`MAX_SUGGEST_CHARS` (difflib indexes the word: 50 MB took 22 s and 2.2 GB).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import Node

from lab.errors import ScenarioError

MAX_BYTES = 128 * 1024
"""A scenario file's size limit: the library's largest is ~2 KB; PyYAML reads ~1 MB/s."""
MAX_DEPTH = 32
"""Nesting limit: a scenario needs 4 levels (timeline, step, chaos kinds, params)."""
MAX_NODES = 5_000
"""Values in one file (every scalar, list and mapping)."""
MAX_INT_DIGITS = 30
"""Digits of an integer: ints beyond 2**63 are refused by the schema anyway."""
QUOTE_CHARS = 60
"""A value quoted in an error message is cut to this many characters."""
MAX_SUGGEST_CHARS = 64
"""No did-you-mean for longer words: no schema word is close to them."""


class YMap(dict[Any, Any]):
    """A mapping that knows its own line and the line of each of its values."""

    line: int = 0
    lines: dict[Any, int]

    def __init__(self) -> None:
        super().__init__()
        self.lines = {}
        self.duplicates: list[tuple[Any, int]] = []


class YList(list[Any]):
    """A sequence that knows its own line and the line of each item."""

    line: int = 0
    lines: list[int]

    def __init__(self) -> None:
        super().__init__()
        self.lines = []


class LineLoader(yaml.SafeLoader):
    """``SafeLoader`` building :class:`YMap` / :class:`YList` with line numbers (1-based).

    Errors raised while composing or constructing are ``ScenarioError("line N: ...")``;
    :func:`load_text` puts the file's label in front.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1 if event.start_mark is not None else 1
        if isinstance(event, AliasEvent) or getattr(event, "anchor", None):
            raise ScenarioError(f"line {line}: anchors and aliases (&name, *name) are not allowed")
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise ScenarioError(f"line {line}: more than {MAX_NODES} values in one file")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise ScenarioError(f"line {line}: nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        """A value PyYAML cannot build (a day 31 of February, ...) is a ScenarioError too."""
        try:
            return super().construct_object(node, deep=deep)
        except ScenarioError:
            raise
        except (ValueError, OverflowError, TypeError) as exc:
            line = node.start_mark.line + 1
            what, why = quote(str(node.value)), quote_text(str(exc))
            raise ScenarioError(f"line {line}: cannot read {what}: {why}") from None

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        digits = sum(ch.isdigit() for ch in str(node.value))
        if digits > MAX_INT_DIGITS:
            raise ScenarioError(
                f"line {node.start_mark.line + 1}: an integer of {digits} digits; "
                f"at most {MAX_INT_DIGITS}"
            )
        return int(super().construct_yaml_int(node))


def _construct_map(loader: LineLoader, node: yaml.MappingNode) -> Iterator[YMap]:
    data = YMap()
    data.line = node.start_mark.line + 1
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise ScenarioError(
                f"line {key_node.start_mark.line + 1}: a mapping key must be a plain value"
            ) from None
        line = key_node.start_mark.line + 1
        if key in data:
            data.duplicates.append((key, line))
        data[key] = loader.construct_object(value_node, deep=True)
        data.lines[key] = line


def _construct_seq(loader: LineLoader, node: yaml.SequenceNode) -> Iterator[YList]:
    data = YList()
    data.line = node.start_mark.line + 1
    yield data
    for item in node.value:
        data.append(loader.construct_object(item, deep=True))
        data.lines.append(item.start_mark.line + 1)


LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
LineLoader.add_constructor("tag:yaml.org,2002:int", LineLoader.construct_yaml_int)


def load_text(text: str, label: str) -> Any:
    """Parse YAML text; syntax errors become ``ScenarioError("<label>:<line>: ...")``."""
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_BYTES:
        raise ScenarioError(
            f"{label}:1: {size} bytes; a scenario file may have at most {MAX_BYTES} "
            f"({MAX_BYTES // 1024} KiB)"
        )
    deep = flow_too_deep(text)
    if deep is not None:
        raise ScenarioError(f"{label}:{deep}: nested deeper than {MAX_DEPTH} levels")
    try:
        return yaml.load(text, Loader=LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "invalid YAML"
        raise ScenarioError(f"{label}:{line}: invalid YAML: {quote_text(problem)}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{label}:1: invalid YAML: {quote_text(str(exc))}") from None
    except RecursionError:  # the depth limit should make this unreachable; never a traceback
        raise ScenarioError(f"{label}:1: nested too deeply") from None
    except ScenarioError as exc:
        raise ScenarioError(f"{label}:{str(exc).removeprefix('line ')}") from None


def flow_too_deep(text: str) -> int | None:
    """The line where ``[``/``{`` nesting passes :data:`MAX_DEPTH`, or None.

    Why before PyYAML: its scanner keeps a possible simple key per open bracket and
    rescans them all for each token, so 5,000 ``[`` on one line took 0.2-0.8 s before
    the composer's depth check could see the 33rd level. Quoted text and comments are
    skipped (roughly: a quote or comment ends at the line's end).
    """
    depth, line, quote_char, comment = 0, 1, "", False
    prev = " "
    for ch in text:
        if ch == "\n":
            line, quote_char, comment = line + 1, "", False
        elif comment:
            pass
        elif quote_char:
            if ch == quote_char:
                quote_char = ""
        elif ch in "'\"" and prev in " \t[{,:":
            quote_char = ch
        elif ch == "#" and prev in " \t":
            comment = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line
        elif ch in "]}":
            depth = max(0, depth - 1)
        prev = ch
    return None


def read_file(path: Path) -> str:
    """The file's text; one more byte than :data:`MAX_BYTES` is read at most."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise ScenarioError(
                f"{path}:1: more than {MAX_BYTES} bytes ({MAX_BYTES // 1024} KiB), "
                "the most a scenario file may have"
            )
        return raw.decode("utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'target'?)"`` when a choice is close, else ``""``."""
    if len(word) > MAX_SUGGEST_CHARS:
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def describe(value: Any) -> str:
    """A value as an error message quotes it: ``'soon'``, ``3``, ``a list``."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**QUOTE_CHARS:
        return f"an integer of {len(str(abs(value)))} digits"
    return quote_text(repr(value))


def quote(value: str) -> str:
    """A string as a message quotes it: ``'text'``, cut to :data:`QUOTE_CHARS`."""
    return quote_text(repr(value))


def quote_text(text: str) -> str:
    """``text`` cut to :data:`QUOTE_CHARS` characters (with how much was left out)."""
    if len(text) <= QUOTE_CHARS:
        return text
    return f"{text[:QUOTE_CHARS]}... ({len(text)} characters)"


@dataclass(frozen=True, slots=True)
class Field:
    """Where a value sits: file label, line and dotted path; builds the error messages."""

    file: str
    line: int
    path: str

    def error(self, message: str) -> ScenarioError:
        where = f"{self.path}: " if self.path else ""
        return ScenarioError(f"{self.file}:{self.line}: {where}{message}")

    def key(self, parent: YMap, name: str) -> Field:
        path = f"{self.path}.{name}" if self.path else name
        return Field(self.file, parent.lines.get(name, parent.line or self.line), path)

    def item(self, parent: YList, index: int) -> Field:
        line = parent.lines[index] if index < len(parent.lines) else parent.line or self.line
        return Field(self.file, line, f"{self.path}[{index}]")


class Section:
    """Reads the keys of one mapping; :meth:`done` rejects any key nobody asked for."""

    def __init__(self, value: Any, at: Field, what: str = "a mapping") -> None:
        if not isinstance(value, YMap):
            raise at.error(f"expected {what}, got {describe(value)}")
        if value.duplicates:
            key, line = value.duplicates[0]
            where = Field(at.file, line, at.key(value, str(key)).path)
            raise where.error(f"duplicate key {quote(str(key))}")
        self.map = value
        self.at = at
        self.known: list[str] = []

    def has(self, name: str) -> bool:
        self.known.append(name)
        return name in self.map

    def get(self, name: str, default: Any = None) -> tuple[Any, Field]:
        """The value (or ``default``) and its field; the line is the mapping's when absent."""
        self.known.append(name)
        return self.map.get(name, default), self.at.key(self.map, name)

    def need(self, name: str) -> tuple[Any, Field]:
        self.known.append(name)
        if name not in self.map or self.map[name] is None:
            raise self.at.key(self.map, name).error("is required")
        return self.map[name], self.at.key(self.map, name)

    def extra_keys(self) -> list[str]:
        return [str(k) for k in self.map if k not in self.known]

    def done(self) -> None:
        for key in self.map:
            if key not in self.known:
                name = str(key)
                raise self.at.key(self.map, key).error(
                    f"unknown key {quote(name)}{did_you_mean(name, self.known)}"
                )
