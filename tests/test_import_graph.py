"""The import graph of ``lab``: no cycle between modules, no cycle dodged inside a function.

The rule: a module's imports point one way. Every import of a ``lab`` module counts, at the
top, under ``if TYPE_CHECKING:`` or inside a function, because moving an import into a
function hides a cycle from the interpreter but not from the reader. An import inside a
function is allowed for another reason (start-up time, an optional heavy dependency) and
then says so on its line with a ``# why:`` comment.

Reproduce by hand: ``.venv/bin/python -m pytest -q tests/test_import_graph.py``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.cli import SUBCOMMANDS

LAB = Path(__file__).resolve().parent.parent / "lab"
WHY_MARK = "# why:"


@dataclass(frozen=True)
class LabImport:
    """One import statement of a ``lab`` module, resolved to the modules it loads."""

    source: str
    targets: tuple[str, ...]
    path: Path
    line: int
    in_function: bool
    text: str


def module_name(path: Path) -> str:
    parts = path.relative_to(LAB.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def lab_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(LAB.rglob("*.py"))}


def _absolute(node: ast.ImportFrom, source: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = source.split(".")
    # The package a relative import starts from: the module itself for an __init__.
    anchor = base if is_package else base[:-1]
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join([*anchor, node.module] if node.module else anchor)


def _targets(
    node: ast.Import | ast.ImportFrom, source: str, path: Path, known: dict[str, Path]
) -> tuple[str, ...]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = _absolute(node, source, path.name == "__init__.py")
        # ``from lab.x import y`` loads lab.x, and lab.x.y too where y is a module.
        names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return tuple(n for n in dict.fromkeys(names) if n in known and n != source)


def _walk(node: ast.AST, in_function: bool) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
        yield child, inside
        yield from _walk(child, inside)


def imports_in(source: str, path: Path, text: str, known: dict[str, Path]) -> list[LabImport]:
    lines = text.splitlines()
    found: list[LabImport] = []
    for node, in_function in _walk(ast.parse(text, filename=str(path)), False):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        targets = _targets(node, source, path, known)
        if targets:
            line_text = " ".join(lines[node.lineno - 1 : node.end_lineno])
            found.append(LabImport(source, targets, path, node.lineno, in_function, line_text))
    return found


def lab_imports() -> list[LabImport]:
    known = lab_modules()
    return [
        imp
        for source, path in known.items()
        for imp in imports_in(source, path, path.read_text(encoding="utf-8"), known)
    ]


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def _graph(imports: list[LabImport]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {name: set() for name in lab_modules()}
    for imp in imports:
        edges[imp.source].update(imp.targets)
    return edges


def _package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 else module


def test_no_cycle_between_lab_modules() -> None:
    imports = lab_imports()
    cycles = find_cycles(_graph(imports))
    where = {
        (imp.source, target): f"{imp.path.relative_to(LAB.parent)}:{imp.line}"
        for imp in imports
        for target in imp.targets
    }
    explained = [
        " <-> ".join(cycle)
        + "\n    "
        + "\n    ".join(
            f"{where[(a, b)]}: {a} -> {b}" for a in cycle for b in cycle if (a, b) in where
        )
        for cycle in cycles
    ]
    assert not cycles, "import cycles between lab modules:\n" + "\n".join(explained)


def test_no_cycle_between_lab_packages() -> None:
    """Packages import one way too: the balancer below the client service, stack below
    scenario. The ``lab`` subcommands (``lab.cli.SUBCOMMANDS``) are the top floor by
    design, wherever their module lives: ``lab down`` may call the scenario's janitor."""
    commands = {cmd.module for cmd in SUBCOMMANDS}
    edges: dict[str, set[str]] = {}
    for imp in lab_imports():
        if imp.source in commands:
            continue
        source = _package_of(imp.source)
        for target in imp.targets:
            if _package_of(target) != source and target != "lab":
                edges.setdefault(source, set()).add(_package_of(target))
                edges.setdefault(_package_of(target), set())
    assert not find_cycles(edges), f"package cycles: {find_cycles(edges)}"


def test_function_local_lab_imports_say_why() -> None:
    unexplained = [
        f"{imp.path.relative_to(LAB.parent)}:{imp.line}: {imp.text.strip()}"
        for imp in lab_imports()
        if imp.in_function and WHY_MARK not in imp.text
    ]
    assert not unexplained, (
        f"imports of lab modules inside functions without a '{WHY_MARK}' comment "
        "(hoist them, or say on the line why they wait):\n" + "\n".join(unexplained)
    )


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"a"}}, []),
    ],
)
def test_find_cycles_sees_what_it_should(
    edges: dict[str, set[str]], expected: list[list[str]]
) -> None:
    assert find_cycles(edges) == expected


def test_the_walk_sees_local_relative_and_type_checking_imports() -> None:
    """The checker could pass by seeing nothing: it must find each kind of import."""
    known = {name: Path(name) for name in ("lab", "lab.a", "lab.a.b", "lab.a.c", "lab.d")}
    text = (
        "from typing import TYPE_CHECKING\n"
        "from . import c\n"
        "if TYPE_CHECKING:\n"
        "    from lab.d import Thing\n"
        "def late():\n"
        "    import lab.d  # why: start-up time\n"
        "    from .c import x\n"
    )
    found = imports_in("lab.a.b", Path("lab/a/b.py"), text, known)
    seen = [(imp.line, imp.targets, imp.in_function) for imp in found]
    assert seen == [
        (2, ("lab.a", "lab.a.c"), False),
        (4, ("lab.d",), False),
        (6, ("lab.d",), True),
        (7, ("lab.a.c",), True),
    ]
    assert [WHY_MARK in imp.text for imp in found] == [False, False, True, False]
