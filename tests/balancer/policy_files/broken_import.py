"""A policy file that fails while being imported."""

from lab.balancer.policies import Policy

SETTING = 1 / 0


class Never(Policy):
    name = "never"
