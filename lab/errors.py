"""The one exception tree of grenache-lab.

Everything the lab raises on purpose derives from :class:`LabError`, so the CLI can
turn any of them into one clear sentence and an exit code. Third-party exceptions
(aiohttp, docker, toxiproxy-python, kademlia) are translated at the module that
talks to the library, never further up.

    LabError
    ├── SettingsError            bad flag or environment variable
    ├── DiscoveryError           grape / link trouble
    │   ├── GrapeError           a grape answered with an error string (ERR_GRAPE_*)
    │   └── LookupEmpty          no peer known for a service (ERR_GRAPE_LOOKUP_EMPTY)
    ├── RpcError                 an RPC attempt or request failed
    │   ├── RpcTimeout           (also a TimeoutError) the attempt or deadline ran out
    │   ├── RpcTransportError    connection refused / reset, non-2xx status
    │   ├── RpcReplyError        the worker replied with an error message
    │   ├── RpcProtocolError     the reply could not be parsed (ERR_REPLY_EMPTY)
    │   └── NoPeerAvailable      every peer is excluded (open breakers, no peers)
    ├── FaultError               a fault could not be injected or removed
    ├── RuntimeUnavailable       the Docker engine / a binary the runtime needs is missing
    └── ScenarioError            a scenario file is invalid (names file, line, field)
"""

from __future__ import annotations


class LabError(Exception):
    """Root of every error the lab raises on purpose."""


class SettingsError(LabError, ValueError):
    """A flag or environment variable has a value the service cannot use."""


class DiscoveryError(LabError):
    """Service discovery through the grapes failed."""


class GrapeError(DiscoveryError):
    """A grape answered with one of Grenache's error strings (e.g. ``ERR_GRAPE_LOOKUP``)."""

    def __init__(self, code: str, grape: str | None = None) -> None:
        self.code = code
        self.grape = grape
        where = f" from {grape}" if grape else ""
        super().__init__(f"{code}{where}")


class LookupEmpty(DiscoveryError):
    """No peer is known for a service; Grenache calls this ``ERR_GRAPE_LOOKUP_EMPTY``."""

    code = "ERR_GRAPE_LOOKUP_EMPTY"


class RpcError(LabError):
    """An RPC attempt or request failed."""


class RpcTimeout(RpcError, TimeoutError):
    """The attempt's timeout or the request's deadline ran out (Grenache: ``ERR_TIMEOUT``)."""


class RpcTransportError(RpcError, ConnectionError):
    """Network failure or non-2xx status (Grenache: ``ERR_REQUEST_GENERIC: <msg>``)."""


class RpcReplyError(RpcError):
    """The worker answered with an error message in the reply envelope."""


class RpcProtocolError(RpcError):
    """The reply was not a Grenache envelope (Grenache: ``ERR_REPLY_EMPTY``)."""


class NoPeerAvailable(RpcError):
    """No peer may be tried: none known, or every one excluded by its breaker or budget."""


class FaultError(LabError):
    """A fault could not be injected, confirmed or removed."""


class RuntimeUnavailable(LabError):
    """Something the runtime needs (Docker engine, Toxiproxy binary, image) is missing."""


class ScenarioError(LabError, ValueError):
    """A scenario file is invalid; the message names the file, line and field."""
