"""The announcement table: service key -> {"host:port": deadline}.

Why not kademlia's own storage: it keeps one value per key (every write overwrites) and
republishes hourly, resetting ages. Service discovery needs many announcers per name,
each expiring on its own, as in BitTorrent's announce/get_peers (which Grenache uses).

Each announce sets the deadline to now + max_age x U(0.67, 1.33), as the upstream grape
does, so announcers that started together do not all expire in the same instant. Expired
entries are dropped on every read and by :meth:`prune`. The table is bounded (services
and announcers per service); when full, the entry closest to expiry makes room.

Pure: it takes a Clock and never awaits, so tests drive expiry with a FakeClock.
"""

from __future__ import annotations

import random

from lab.clock import Clock

JITTER = (0.67, 1.33)
"""An announcement lives max_age x a factor drawn uniformly from this range."""


class AnnouncementTable:
    """Announcers per service key, each with its own deadline."""

    def __init__(
        self,
        clock: Clock,
        max_age: float,
        *,
        rng: random.Random | None = None,
        max_services: int = 5000,
        max_per_service: int = 1000,
    ) -> None:
        if max_age <= 0:
            raise ValueError(f"max_age must be positive, not {max_age}")
        self._clock = clock
        self._max_age = max_age
        self._rng = rng or random.Random()
        self._max_services = max_services
        self._max_per_service = max_per_service
        self._table: dict[bytes, dict[str, float]] = {}

    @property
    def max_age(self) -> float:
        return self._max_age

    def announce(self, key: bytes, hostport: str) -> float:
        """Record (or refresh) ``hostport`` under ``key``; returns its new deadline."""
        now = self._clock.monotonic()
        deadline = now + self._max_age * self._rng.uniform(*JITTER)
        peers = self._table.get(key)
        if peers is None:
            if len(self._table) >= self._max_services:
                self.prune()
                if len(self._table) >= self._max_services:
                    self._evict_service()
            peers = self._table[key] = {}
        elif hostport not in peers and len(peers) >= self._max_per_service:
            self._drop_expired(key, peers, now)
            if len(peers) >= self._max_per_service:
                del peers[min(peers, key=peers.__getitem__)]
        peers[hostport] = deadline
        return deadline

    def lookup(self, key: bytes, limit: int = 100) -> list[str]:
        """Up to ``limit`` live announcers of ``key`` in random order."""
        peers = self._table.get(key)
        if not peers:
            return []
        self._drop_expired(key, peers, self._clock.monotonic())
        live = list(peers)
        if len(live) > limit:
            return self._rng.sample(live, limit)
        self._rng.shuffle(live)
        return live

    def prune(self) -> int:
        """Drop every expired announcement; returns how many went."""
        now = self._clock.monotonic()
        removed = 0
        for key, peers in list(self._table.items()):
            removed += self._drop_expired(key, peers, now)
        return removed

    def services(self) -> int:
        """How many keys have at least one announcer (expired ones may still count)."""
        return len(self._table)

    def __len__(self) -> int:
        """How many announcements are held (expired ones may still count until pruned)."""
        return sum(len(p) for p in self._table.values())

    def _drop_expired(self, key: bytes, peers: dict[str, float], now: float) -> int:
        dead = [hp for hp, deadline in peers.items() if deadline <= now]
        for hp in dead:
            del peers[hp]
        if not peers:
            self._table.pop(key, None)
        return len(dead)

    def _evict_service(self) -> None:
        """Room for a new key: drop the key whose newest announcement ends soonest."""
        victim = min(self._table, key=lambda k: max(self._table[k].values()))
        del self._table[victim]
