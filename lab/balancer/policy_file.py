"""Bring-your-own policy: a class in a Python file, named ``path/to/file.py:ClassName``.

Wherever a policy is named (a scenario's ``clients:``, ``lab client --policy``, ``lab call
--policy``, ``lab challenge --policy``), a built-in name or such a reference is accepted.

Two steps, kept apart on purpose:

- :func:`check_policy_ref` reads the file and parses it (``ast``) without running it: the
  file exists, is Python, and defines the class at top level. ``lab validate`` and
  ``lab run`` use only this, because the learner's code runs only inside a lab client.
- :func:`load_policy_class` runs the file (only in the client process that uses it) and
  checks that the class derives from :class:`lab.balancer.policies.Policy`. An exception
  while importing becomes a :class:`PolicyFault` with the traceback and ``file:line``.

A relative path is relative to the working directory of the process that reads it: the
local runtime's clients share ``lab run``'s; the Compose clients see the repository's
``policies/`` folder mounted at the same relative path.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from lab.balancer.policies import Policy
from lab.errors import LabError, SettingsError

MAX_POLICY_FILE_BYTES = 1_000_000
"""A policy is a page of code; a larger file is a mistake (a data file named by accident)."""


class PolicyFault(LabError):
    """The learner's policy raised, hung, or answered something the client cannot use.

    ``where`` is the ``file:line`` in the learner's file closest to the fault (None when
    the fault is a wrong answer rather than a crash); ``trace`` the formatted traceback.
    """

    def __init__(self, message: str, *, where: str | None = None, trace: str = "") -> None:
        self.where = where
        self.trace = trace
        text = message if where is None else f"{where}: {message}"
        super().__init__(text)

    def report(self) -> str:
        """The message and, when there is one, the traceback: what a learner needs."""
        return f"{self}\n{self.trace}".rstrip() if self.trace else str(self)


@dataclass(frozen=True, slots=True)
class PolicyRef:
    """A policy named by file and class; ``text`` is the reference as written."""

    text: str
    path: Path
    class_name: str


def is_policy_ref(text: str) -> bool:
    """True when ``text`` has the ``file.py:ClassName`` form (built-in names never do)."""
    head, sep, _ = text.partition(":")
    return bool(sep) and head.endswith(".py")


def parse_policy_ref(text: str) -> PolicyRef:
    """Split ``path/to/file.py:ClassName``; a malformed reference names what is wrong."""
    head, sep, cls = text.strip().rpartition(":")
    if not sep or not head.endswith(".py"):
        raise SettingsError(f"policy {text!r}: expected a name or path/to/file.py:ClassName")
    if not cls.isidentifier():
        raise SettingsError(f"policy {text!r}: {cls!r} after the ':' is not a class name")
    return PolicyRef(text.strip(), Path(head), cls)


def check_policy_ref(text: str, base: Path | None = None) -> PolicyRef:
    """Parse the reference and its file without running it (see the module docstring).

    ``base``: the folder a relative path is read from (default: the working directory).
    The Compose lab reads its learner's policy from the repository's ``policies/``
    whatever directory ``lab run`` was started in, so its check passes the repository.
    """
    ref = parse_policy_ref(text)
    source = _read(ref, base)
    try:
        tree = ast.parse(source, filename=str(ref.path))
    except SyntaxError as exc:
        raise SettingsError(
            f"{ref.path}:{exc.lineno}: policy file is not valid Python: {exc.msg}"
        ) from None
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    if ref.class_name not in classes:
        found = ", ".join(classes) or "none"
        raise SettingsError(
            f"{ref.path}: no class {ref.class_name!r} at top level (classes found: {found})"
        )
    return ref


def load_policy_class(text: str) -> tuple[PolicyRef, type]:
    """Run the policy file and return its class (a :class:`Policy` subclass)."""

    ref = check_policy_ref(text)
    module = _import(ref)
    cls = getattr(module, ref.class_name, None)
    if not isinstance(cls, type) or not issubclass(cls, Policy):
        raise SettingsError(
            f"{ref.path}: {ref.class_name} must be a class deriving from "
            "lab.balancer.policies.Policy (see policies/template.py)"
        )
    if getattr(cls, "__abstractmethods__", None):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise SettingsError(f"{ref.path}: {ref.class_name} does not define {missing}")
    return ref, cls


def _read(ref: PolicyRef, base: Path | None = None) -> str:
    path = ref.path if base is None else base / ref.path
    try:
        size = path.stat().st_size
        if size > MAX_POLICY_FILE_BYTES:
            raise SettingsError(f"{ref.path}: {size} bytes; a policy file is at most 1 MB")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(
            f"policy {ref.text!r}: no file {ref.path} (relative to {base or Path.cwd()})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"policy {ref.text!r}: cannot read {ref.path}: {exc}") from None


def _import(ref: PolicyRef) -> ModuleType:
    """Import the file under a private module name, so two files never collide."""
    resolved = ref.path.resolve()
    name = f"lab_user_policy_{abs(hash(str(resolved))):x}"
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise SettingsError(f"{ref.path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and typing look the module up by name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise fault_from(exc, resolved, f"importing {ref.path} failed") from None
    return module


def fault_from(exc: BaseException, path: Path, what: str) -> PolicyFault:
    """A :class:`PolicyFault` for ``exc`` raised by the code in ``path``.

    ``where`` is the deepest frame of the traceback that lies in ``path`` (the learner's
    line, not the lab's); the traceback keeps only the frames from the learner's first.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if Path(f.filename).resolve() == path]
    if isinstance(exc, SyntaxError) and exc.lineno is not None:
        where: str | None = f"{path}:{exc.lineno}"
    else:
        where = f"{mine[-1].filename}:{mine[-1].lineno}" if mine else None
    first = frames.index(mine[0]) if mine else 0
    trace = "Traceback (most recent call last):\n" + "".join(traceback.format_list(frames[first:]))
    trace += "".join(traceback.format_exception_only(type(exc), exc))
    return PolicyFault(f"{what}: {type(exc).__name__}: {exc}", where=where, trace=trace)
