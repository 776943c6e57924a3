"""Settings of ``lab client``: flags that fall back to ``LAB_CLIENT_*`` variables.

Validated once, before anything binds a socket, so a bad value is one clear sentence
naming the flag or variable (``lab.settings`` does the reading; this module only says
what the client accepts). The options are those of ``docs/contracts.md``; the extra
knobs at the end have defaults that suit the lab and rarely need touching.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from lab.balancer.policy_file import check_policy_ref, is_policy_ref
from lab.balancer.registry import POLICY_NAMES
from lab.errors import SettingsError
from lab.loadgen.limits import MAX_IN_FLIGHT
from lab.settings import (
    add_option,
    env_default,
    parse_bool,
    parse_duration,
    parse_grapes,
    parse_name,
    parse_port,
    parse_positive_int,
    reachable_host,
)

POLICIES = POLICY_NAMES

GOSSIP_KEY_ENV = "LAB_CLIENT_GOSSIP_KEY"
"""The lab's gossip key: an environment variable only, never a flag (a flag would show in
``ps`` to every user of the host). ``lab up`` and the local runtime set it."""

MIN_GOSSIP_KEY = 32


def parse_gossip_key(text: str) -> bytes:
    key = text.strip().encode()
    if len(key) < MIN_GOSSIP_KEY:
        raise SettingsError(f"must be at least {MIN_GOSSIP_KEY} characters (lab up makes 64)")
    return key


def parse_policy(text: str) -> str:
    """A built-in name, or ``path/to/file.py:ClassName`` (checked, not run, here)."""
    if is_policy_ref(text):
        return check_policy_ref(text).text
    name = text.strip().lower()
    if name not in POLICIES:
        raise SettingsError(f"unknown policy {text!r}; try one of: {', '.join(POLICIES)}")
    return name


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Everything ``lab client`` needs to start."""

    name: str = "client"
    policy: str = "adaptive"
    grapes: tuple[str, ...] = ("http://127.0.0.1:30001",)
    service: str = "rpc_test"
    bind: str = "0.0.0.0"
    control_port: int = 8500
    gossip_port: int = 7946
    gossip: bool = True
    seed: int = 0
    history_limit: int = 100_000
    # -- lab knobs beyond the contract ------------------------------------------------
    advertise: str | None = None  # the host other clients send gossip to; None: derived
    gossip_service: str = "lab_gossip"  # the name gossip members announce on the grapes
    lookup_interval: float = 0.5  # seconds between peer-set refreshes
    announce_interval: float = 1.0  # seconds between gossip-membership announces
    max_in_flight: int = MAX_IN_FLIGHT  # requests in flight before arrivals are REJECTED
    events_limit: int = 20_000  # breaker / gossip events kept for readers
    gossip_key: bytes | None = field(default=None, repr=False)  # None: no gossip at all

    def __post_init__(self) -> None:
        if self.policy not in POLICIES and not is_policy_ref(self.policy):
            raise SettingsError(f"policy: unknown {self.policy!r}")
        if self.lookup_interval <= 0 or self.announce_interval <= 0:
            raise SettingsError("lookup and announce intervals must be positive")
        if self.history_limit < 1 or self.events_limit < 1 or self.max_in_flight < 1:
            raise SettingsError("history, events and in-flight limits must be at least 1")

    def gossip_host(self) -> str:
        """The address announced for gossip: ``--advertise``, else one peers can reach.

        It is always sent with the announce extension ``{"host": ...}``: a grape would
        otherwise record the HTTP caller's source address, which on 127.0.0.x and behind
        NAT is not the address the gossip socket is bound to.
        """
        return reachable_host(self.bind, self.advertise)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``lab client``'s options to ``parser``."""
    d = ClientSettings()
    add_option(
        parser,
        "--name",
        env="LAB_CLIENT_NAME",
        parse=parse_name,
        default=d.name,
        help="this client's name in histories and metrics",
    )
    add_option(
        parser,
        "--policy",
        env="LAB_CLIENT_POLICY",
        parse=parse_policy,
        default=d.policy,
        help=f"peer choice: {' | '.join(POLICIES)} | path/to/file.py:ClassName",
    )
    add_option(
        parser,
        "--grape",
        env="LAB_CLIENT_GRAPES",
        parse=parse_grapes,
        default=d.grapes,
        help="grape API URLs, comma separated",
        metavar="URLS",
    )
    add_option(
        parser,
        "--service",
        env="LAB_CLIENT_SERVICE",
        parse=parse_name,
        default=d.service,
        help="the Grenache service requests go to",
    )
    add_option(
        parser,
        "--bind",
        env="LAB_CLIENT_BIND",
        parse=str,
        default=d.bind,
        help="address the control API and gossip socket bind to",
    )
    add_option(
        parser,
        "--control-port",
        env="LAB_CLIENT_CONTROL_PORT",
        parse=parse_port,
        default=d.control_port,
        help="TCP port of the control and metrics API",
    )
    add_option(
        parser,
        "--gossip-port",
        env="LAB_CLIENT_GOSSIP_PORT",
        parse=parse_port,
        default=d.gossip_port,
        help="UDP port for peer-health gossip",
    )
    add_option(
        parser,
        "--gossip",
        env="LAB_CLIENT_GOSSIP",
        parse=parse_bool,
        default=d.gossip,
        help="exchange peer-health hints with other clients",
    )
    add_option(
        parser,
        "--seed",
        env="LAB_CLIENT_SEED",
        parse=int,
        default=d.seed,
        help="seed of the policy's randomness",
    )
    add_option(
        parser,
        "--history-limit",
        env="LAB_CLIENT_HISTORY_LIMIT",
        parse=parse_positive_int,
        default=d.history_limit,
        help="request records kept for readers (older ones are dropped)",
    )
    add_option(
        parser,
        "--advertise",
        env="LAB_CLIENT_ADVERTISE",
        parse=str,
        default="",
        help="host other clients reach this one's gossip at (default: derived)",
    )
    add_option(
        parser,
        "--gossip-service",
        env="LAB_CLIENT_GOSSIP_SERVICE",
        parse=parse_name,
        default=d.gossip_service,
        help="service name gossip members announce",
    )
    add_option(
        parser,
        "--lookup-interval",
        env="LAB_CLIENT_LOOKUP_INTERVAL",
        parse=parse_duration,
        default=d.lookup_interval,
        help="seconds between peer-set refreshes",
    )
    add_option(
        parser,
        "--announce-interval",
        env="LAB_CLIENT_ANNOUNCE_INTERVAL",
        parse=parse_duration,
        default=d.announce_interval,
        help="seconds between gossip-membership announces",
    )
    add_option(
        parser,
        "--max-in-flight",
        env="LAB_CLIENT_MAX_IN_FLIGHT",
        parse=parse_positive_int,
        default=d.max_in_flight,
        help="requests in flight before new arrivals are recorded as rejected",
    )


def from_args(args: argparse.Namespace) -> ClientSettings:
    """The settings ``configure``'s parser produced, validated."""
    return ClientSettings(
        name=args.name,
        policy=args.policy,
        grapes=tuple(args.grape),
        service=args.service,
        bind=args.bind,
        control_port=args.control_port,
        gossip_port=args.gossip_port,
        gossip=args.gossip,
        seed=args.seed,
        history_limit=args.history_limit,
        advertise=args.advertise or None,
        gossip_service=args.gossip_service,
        lookup_interval=args.lookup_interval,
        announce_interval=args.announce_interval,
        max_in_flight=args.max_in_flight,
        gossip_key=env_default(GOSSIP_KEY_ENV, parse_gossip_key, None),
    )
