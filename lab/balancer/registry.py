"""Every policy by name: the one place that knows them all.

Its own module because it imports every policy, and each policy imports the
:class:`~lab.balancer.policies.Policy` interface: the interface stays below its
implementations, and the table above them.
"""

from __future__ import annotations

import random
from typing import Any

from lab.balancer.adaptive import AdaptivePolicy
from lab.balancer.c3 import C3Config, C3Policy
from lab.balancer.metrics import MetricsConfig
from lab.balancer.p2c_policies import LeastRequestPolicy, PeakEwmaPolicy
from lab.balancer.policies import OraclePolicy, Policy, RandomPolicy, RoundRobinPolicy
from lab.balancer.policy_file import fault_from, is_policy_ref, load_policy_class
from lab.balancer.policy_guard import guard_policy
from lab.balancer.prequal import PrequalConfig, PrequalPolicy
from lab.clock import Clock
from lab.errors import SettingsError

POLICY_NAMES: tuple[str, ...] = (
    "adaptive",
    "random",
    "round_robin",
    "oracle",
    "least_request",
    "peak_ewma",
    "prequal",
    "c3",
    "adaptive_hedged",
)
"""Every policy ``make_policy`` knows, in the order reports list them."""

VARIANTS: dict[str, tuple[str, dict[str, dict[str, Any]]]] = {
    "adaptive_hedged": ("adaptive", {"attempts": {"hedge": True}}),
}
"""Named settings of a policy: ``name -> (base policy, preset options)``.

A variant is a name, not per-client options in a scenario, because a name is what every
part of the lab already keys on (Compose's client services, expectations, report rows,
the policy comparison): two settings of one policy compared in the same run are two
rows, each readable on its own. A caller's options are merged over the preset, field by
field.
"""


def make_policy(name: str, *, clock: Clock, rng: random.Random, **options: Any) -> Policy:
    """The policy called ``name``; ``options`` are its config objects or knobs.

    ``adaptive`` takes ``metrics``, ``breaker``, ``budget``, ``slow_start``, ``gossip``,
    ``attempts`` (each a config object or a dict of its fields); ``prequal`` and ``c3``
    take ``config`` too (:class:`PrequalConfig`, :class:`C3Config`); the others take
    ``metrics`` only. A bad name or option raises :class:`SettingsError` naming it.
    ``name`` may also be ``path/to/file.py:ClassName`` (:mod:`lab.balancer.policy_file`):
    that class, built with ``clock`` and ``rng`` and guarded (:mod:`lab.balancer.policy_guard`).
    """
    if is_policy_ref(name):
        return _policy_from_file(name, clock=clock, rng=rng, options=options)
    if name in VARIANTS:
        base, preset = VARIANTS[name]
        merged: dict[str, Any] = {**preset, **options}
        for key, fields in preset.items():
            given = options.get(key)
            if isinstance(given, dict):
                merged[key] = {**fields, **given}
        variant = make_policy(base, clock=clock, rng=rng, **merged)
        variant.name = name  # type: ignore[misc]  # the label, per instance
        return variant
    classes: dict[str, type[Policy]] = {
        c.name: c
        for c in (
            AdaptivePolicy,
            RandomPolicy,
            RoundRobinPolicy,
            OraclePolicy,
            LeastRequestPolicy,
            PeakEwmaPolicy,
            PrequalPolicy,
            C3Policy,
        )
    }
    cls = classes.get(name)
    if cls is None:
        raise SettingsError(f"policy: unknown {name!r}; try one of: {', '.join(POLICY_NAMES)}")
    allowed: dict[str, type] = {"metrics": MetricsConfig}
    if cls is AdaptivePolicy:
        allowed = dict(AdaptivePolicy.OPTIONS)
    elif cls is PrequalPolicy:
        allowed["config"] = PrequalConfig
    elif cls is C3Policy:
        allowed["config"] = C3Config
    built: dict[str, Any] = {}
    for key, value in options.items():
        config_type = allowed.get(key)
        if config_type is None:
            raise SettingsError(
                f"{name} policy: unknown option {key!r}; try one of: {', '.join(allowed)}"
            )
        if isinstance(value, dict):
            try:
                value = config_type(**value)
            except TypeError as exc:
                raise SettingsError(f"{name} policy: {key}: {exc}") from None
            except ValueError as exc:
                raise SettingsError(f"{name} policy: {key}.{exc}") from None
        elif not isinstance(value, config_type):
            raise SettingsError(f"{name} policy: {key}: expected {config_type.__name__}")
        built[key] = value
    return cls(clock=clock, rng=rng, **built)


def _policy_from_file(
    text: str, *, clock: Clock, rng: random.Random, options: dict[str, Any]
) -> Policy:
    """The learner's policy class from its file, built and guarded.

    Its ``name`` becomes the reference as written, so histories, reports and expectations
    name it the way the scenario did.
    """
    if options:
        raise SettingsError(f"{text}: a policy from a file takes no options")
    ref, cls = load_policy_class(text)
    try:
        policy: Policy = cls(clock=clock, rng=rng)
    except Exception as exc:
        raise fault_from(exc, ref.path.resolve(), f"{ref.class_name}(...) raised") from None
    policy.name = ref.text  # type: ignore[misc]  # the label, per instance
    return guard_policy(policy, ref.path)[0]
