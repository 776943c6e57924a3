"""A scripted transport whose peers also report their load, as load-dependent workers do.

Each peer has a scripted load (``rif[peer]`` requests in flight from other clients,
``queue[peer]`` of them waiting) and a service time; its latency is the service time x
(1 + queue), so a loaded peer is slow for the reason it reports; a scripted latency (a stalled
peer) is what it reports as its latency. Replies go to
``on_load`` (C3's feedback) and :meth:`answer_probe` answers a probe at once, in zero
fake time (Prequal's probes are asynchronous; on one fake clock they land before the
next request).
"""

from __future__ import annotations

from typing import Any

from scripted_transport import ScriptedTransport

from lab.balancer.feedback import ProbeDriven
from lab.clock import FakeClock
from lab.grenache.load import LoadReport


class LoadScriptedTransport(ScriptedTransport):
    """:class:`ScriptedTransport` with per-peer load and load reports (module docstring)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.queue: dict[str, int] = {}
        self.service_s: dict[str, float] = {}
        self.on_load: Any = None
        self.probes: list[str] = []

    def report(self, peer: str) -> LoadReport:
        service = self.service_s.get(peer, 0.002)
        queue = self.queue.get(peer, 0)
        latency = self.latency.get(peer, service * (1 + queue))
        return LoadReport(queue + 1, queue, service, latency)

    def sync_latency(self, peers: list[str]) -> None:
        """Latency from load: service x (1 + queue), unless a test scripted its own."""
        for peer in peers:
            self.latency[peer] = self.service_s.get(peer, 0.002) * (1 + self.queue.get(peer, 0))

    async def request(
        self,
        peer: str,
        key: str,
        payload: Any,
        *,
        timeout: float,  # noqa: ASYNC109 (the transport contract)
        compress: bool = False,
    ) -> Any:
        value = await super().request(peer, key, payload, timeout=timeout, compress=compress)
        if self.on_load is not None:
            self.on_load(peer, self.report(peer))
        return value

    def answer_probes_for(self, policy: ProbeDriven) -> None:
        """Make ``policy``'s probes answer at once from the scripted state."""

        def probe(peer: str) -> None:
            self.probes.append(peer)
            if self.mode.get(peer, "ok") == "ok":
                policy.take_probe(peer, self.report(peer))
            else:
                policy.probe_failed(peer)

        policy.set_prober(probe)
