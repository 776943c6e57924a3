"""Settings of ``lab grape``: flags that fall back to ``LAB_GRAPE_*`` variables.

Validated once, before a socket is bound, so a bad value is one clear sentence naming the
flag or variable (``lab.settings`` reads the environment; this module says what a grape
accepts). The options are those of ``docs/contracts.md``.

Bootstrap peers are kept as ``(host, port)`` here and resolved to IPs by the node at each
join attempt, not now: in Compose the peers start in any order, so ``grape-2`` may not
have a DNS name yet when ``grape-1`` starts, and kademlia records peers under the IP a
datagram came from (a name would never match).
"""

from __future__ import annotations

import argparse
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lab.errors import SettingsError
from lab.settings import WILDCARDS, add_option, parse_duration, reachable_host

_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,251}[A-Za-z0-9])?$")


def parse_port(text: str) -> int:
    """A TCP/UDP port, 1..65535."""
    try:
        port = int(str(text).strip())
    except ValueError:
        raise SettingsError(f"not a port: {text!r} (try 20001)") from None
    if not 1 <= port <= 65535:
        raise SettingsError(f"port out of range 1..65535: {text!r}")
    return port


def parse_host(text: str) -> str:
    """An IPv4 address or a DNS name (no scheme, no port)."""
    host = str(text).strip()
    if host in WILDCARDS:
        return host
    try:
        ipaddress.IPv4Address(host)
        return host
    except ValueError:
        pass
    if not _HOST.match(host):
        raise SettingsError(f"not a host name or IPv4 address: {text!r}")
    return host


def parse_bind(text: str) -> str:
    """The local IPv4 address to bind (``0.0.0.0`` for every interface)."""
    host = str(text).strip() or "0.0.0.0"
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        raise SettingsError(f"not an IPv4 address to bind: {text!r} (try 0.0.0.0)") from None
    return host


def parse_peers(text: str) -> tuple[tuple[str, int], ...]:
    """``host:port,host:port`` (empty: no bootstrap peers, this grape is the first)."""
    peers: list[tuple[str, int]] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        host, sep, port = part.rpartition(":")
        if not sep or not host:
            raise SettingsError(f"not host:port: {part!r} (try grape-2:20001)")
        try:
            peers.append((parse_host(host), parse_port(port)))
        except SettingsError as exc:
            raise SettingsError(f"in {part!r}: {exc}") from None
    return tuple(peers)


def parse_positive_duration(text: str) -> float:
    seconds = parse_duration(text)
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise SettingsError(f"must be a positive duration: {text!r}")
    return seconds


def parse_cluster(text: str) -> str:
    cluster = str(text).strip()
    if not cluster or len(cluster) > 64:
        raise SettingsError(f"cluster id must be 1..64 characters: {text!r}")
    return cluster


def parse_advertise(text: str) -> str | None:
    host = str(text).strip()
    if not host:
        return None
    if host in WILDCARDS:
        raise SettingsError(f"cannot advertise a wildcard address: {text!r}")
    return parse_host(host)


@dataclass(frozen=True, slots=True)
class GrapeSettings:
    """Everything ``lab grape`` needs to start."""

    bind: str = "0.0.0.0"
    dht_port: int = 20001
    api_port: int = 30001
    bootstrap: tuple[tuple[str, int], ...] = ()
    peer_max_age: float = 120.0
    cluster_id: str = "grenache-lab"
    advertise: str | None = None
    rpc_timeout: float = 0.5
    ksize: int = 20
    max_payload: int = 8192

    def __post_init__(self) -> None:
        if not 0.1 <= self.peer_max_age <= 86_400:
            raise SettingsError(f"peer_max_age: {self.peer_max_age}s is outside 0.1s..24h")
        if not 0.01 <= self.rpc_timeout <= 30:
            raise SettingsError(f"rpc_timeout: {self.rpc_timeout}s is outside 10ms..30s")
        if self.ksize < 1:
            raise SettingsError(f"ksize: must be at least 1, not {self.ksize}")

    def advertised_host(self) -> str:
        """The address other hosts reach this grape at (``lab.settings.reachable_host``)."""
        return reachable_host(self.bind, self.advertise)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``lab grape``'s options to ``parser``."""
    d = GrapeSettings()
    options: list[tuple[str, str, Callable[[str], Any], Any, str | None, str]] = [
        ("--bind", "LAB_GRAPE_BIND", parse_bind, d.bind, None,
         "IPv4 address to bind the DHT (UDP) and API (TCP) sockets to"),
        ("--dht-port", "LAB_GRAPE_DHT_PORT", parse_port, d.dht_port, None,
         "UDP port of the DHT"),
        ("--api-port", "LAB_GRAPE_API_PORT", parse_port, d.api_port, None,
         "TCP port of the Grenache HTTP API"),
        ("--bootstrap", "LAB_GRAPE_BOOTSTRAP", parse_peers, d.bootstrap, "HOST:PORT,...",
         "DHT ports of other grapes; names are resolved at each join attempt"),
        ("--peer-max-age", "LAB_GRAPE_PEER_MAX_AGE", parse_positive_duration,
         d.peer_max_age, "DURATION",
         "announcements live 0.67-1.33 x this after the last announce (120s, 5s, 500ms)"),
        ("--cluster-id", "LAB_GRAPE_CLUSTER_ID", parse_cluster, d.cluster_id, None,
         "carried in every DHT message; grapes of another cluster are ignored"),
        ("--advertise", "LAB_GRAPE_ADVERTISE", parse_advertise, d.advertise, "HOST",
         "address other hosts reach this grape at (default: derived from --bind)"),
        ("--rpc-timeout", "LAB_GRAPE_RPC_TIMEOUT", parse_positive_duration, d.rpc_timeout,
         "DURATION", "wait for one DHT reply (each RPC is sent twice before giving up)"),
    ]  # fmt: skip
    for flag, env, parse, default, metavar, text in options:
        add_option(parser, flag, env=env, parse=parse, default=default, help=text, metavar=metavar)


def from_args(args: argparse.Namespace) -> GrapeSettings:
    """The settings from parsed arguments; cross-field checks raise SettingsError."""
    return GrapeSettings(
        bind=args.bind,
        dht_port=args.dht_port,
        api_port=args.api_port,
        bootstrap=tuple(args.bootstrap),
        peer_max_age=args.peer_max_age,
        cluster_id=args.cluster_id,
        advertise=args.advertise,
        rpc_timeout=args.rpc_timeout,
    )
