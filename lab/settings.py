"""Shared plumbing for typed service settings: flags that fall back to environment variables.

Each service keeps its own frozen settings dataclass (``lab/grape/settings.py`` and so on);
this module is the only place that reads ``os.environ`` for them, so a bad value is
reported once, naming the variable, before anything starts.
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from lab.errors import SettingsError

T = TypeVar("T")
N = TypeVar("N", int, float)


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


def one_of(choices: Sequence[str], fold: Callable[[str], str]) -> Callable[[str], str]:
    """A parser of one of ``choices``, compared after ``fold`` (the case they are in)."""

    def parse(text: str) -> str:
        value = fold(text.strip())
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {text!r}")
        return value

    return parse


# -- parsers the services share (addresses, ports, names) --------------------------------

WILDCARDS = frozenset({"0.0.0.0", "::", ""})


def parse_grapes(text: str) -> tuple[str, ...]:
    """``http://host:port,...`` into a tuple of base URLs (a bare ``host:port`` gets http)."""
    urls: list[str] = []
    for part in text.split(","):
        part = part.strip().rstrip("/")
        if not part:
            continue
        url = part if "://" in part else f"http://{part}"
        split = urlsplit(url)
        if split.scheme != "http" or not split.hostname or split.port is None:
            raise SettingsError(f"not a grape address: {part!r} (try http://127.0.0.1:30001)")
        urls.append(url)
    if not urls:
        raise SettingsError("no grape address given (try http://127.0.0.1:30001)")
    return tuple(urls)


def within(
    convert: Callable[[str], N], low: N, high: N | None, message: str
) -> Callable[[str], N]:
    """A parser of a number (``convert``: int or float) from ``low`` to ``high`` (None:
    no bound); out of range, a SettingsError of ``message`` and the text (NaN too)."""

    def parse(text: str) -> N:
        value = convert(text)
        if not (low <= value and (high is None or value <= high)):
            raise SettingsError(f"{message}: {text!r}")
        return value

    return parse


parse_port = within(int, 0, 65535, "not a port")
parse_positive_int = within(int, 1, None, "must be at least 1")


def parse_name(text: str) -> str:
    name = text.strip()
    if not name:
        raise SettingsError("must not be empty")
    return name


def reachable_host(bind: str, advertise: str | None = None) -> str:
    """The address other hosts reach this process at: ``advertise``, else derived.

    Derived: the bind address when it is a specific one, else the address of the
    interface that routes outwards (found with an unconnected UDP socket; no packet is
    sent), else the host name's address. A grape records it for announces and a client
    announces its gossip socket at it; a loopback answer would strand both.
    """
    if advertise:
        return advertise
    if bind not in WILDCARDS:
        return bind
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.254.254.254", 9))
            return str(s.getsockname()[0])
        except OSError:
            pass
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
