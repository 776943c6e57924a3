"""YAML with line numbers: the reader under ``spec.py``.

Why a loader subclass: a scenario error must name the file, the line and the field
(``scenarios/x.yaml:12: timeline[1].at: ...``), and plain ``yaml.safe_load`` forgets
where each value came from. :class:`LineLoader` is PyYAML's ``SafeLoader`` (no
arbitrary objects) whose mappings and sequences remember the line of each key and item.
:class:`Field` then carries (file, line, dotted path) down the validator so every
message is built in one place.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lab.errors import ScenarioError


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
    """``SafeLoader`` building :class:`YMap` / :class:`YList` with line numbers (1-based)."""


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


def load_text(text: str, label: str) -> Any:
    """Parse YAML text; syntax errors become ``ScenarioError("<label>:<line>: ...")``."""
    try:
        return yaml.load(text, Loader=LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "invalid YAML"
        raise ScenarioError(f"{label}:{line}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{label}:1: invalid YAML: {exc}") from None
    except ScenarioError as exc:
        raise ScenarioError(f"{label}:{str(exc).removeprefix('line ')}") from None


def read_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'target'?)"`` when a choice is close, else ``""``."""
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
    return repr(value)


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
            raise Field(at.file, line, at.key(value, str(key)).path).error(f"duplicate key {key!r}")
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
                    f"unknown key {name!r}{did_you_mean(name, self.known)}"
                )
