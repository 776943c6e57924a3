"""Shared plumbing for typed service settings: flags that fall back to environment variables.

Each service keeps its own frozen settings dataclass (``lab/grape/settings.py`` and so on);
this module is the only place that reads ``os.environ`` for them, so a bad value is
reported once, naming the variable, before anything starts.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from lab.errors import SettingsError

T = TypeVar("T")


def parse_duration(text: str) -> float:
    """Parse ``"250ms"``, ``"1.5s"``, ``"2m"`` or a bare number of seconds into seconds."""
    s = str(text).strip().lower()
    try:
        if s.endswith("ms"):
            return float(s[:-2]) / 1000.0
        if s.endswith("s"):
            return float(s[:-1])
        if s.endswith("m"):
            return float(s[:-1]) * 60.0
        return float(s)
    except ValueError:
        raise SettingsError(f"not a duration: {text!r} (try 250ms, 1.5s, 2m)") from None


def parse_bool(text: str) -> bool:
    s = str(text).strip().lower()
    if s in {"1", "true", "yes", "on"}:
        return True
    if s in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"not a boolean: {text!r} (try true or false)")


def env_default(
    env: str,
    parse: Callable[[str], T],
    default: T,
    environ: Mapping[str, str] | None = None,
) -> T:
    """The value of environment variable ``env`` parsed, or ``default`` when unset."""
    source = os.environ if environ is None else environ
    raw = source.get(env)
    if raw is None or raw == "":
        return default
    try:
        return parse(raw)
    except (ValueError, SettingsError) as exc:
        raise SettingsError(f"environment variable {env}={raw!r}: {exc}") from None


def add_option(
    parser: argparse.ArgumentParser | Any,
    flag: str,
    *,
    env: str,
    parse: Callable[[str], Any],
    default: Any,
    help: str,
    metavar: str | None = None,
) -> None:
    """Add ``flag`` whose default comes from ``env`` (then ``default``); help shows both."""
    value = env_default(env, parse, default)

    def checked(text: str) -> Any:
        try:
            return parse(text)
        except (ValueError, SettingsError) as exc:
            raise argparse.ArgumentTypeError(f"{flag}: {exc}") from None

    parser.add_argument(
        flag,
        type=checked,
        default=value,
        metavar=metavar,
        help=f"{help} [env {env}; default {default!r}]",
    )
