"""grenache-lab: a chaos lab for Grenache-style service discovery and peer-to-peer RPC."""

__version__ = "0.1.0"
