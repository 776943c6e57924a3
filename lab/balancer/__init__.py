"""The adaptive Grenache client: per-peer measurements, breakers, retry budget, gossip.

Pure parts (take ``now`` or a Clock, never await): :mod:`window`, :mod:`metrics`,
:mod:`breaker`, :mod:`budget`, :mod:`slowstart`, :mod:`scoring`, :mod:`gossip`,
:mod:`policies`, :mod:`attempts` and :mod:`adaptive`; :mod:`registry` knows every policy
by name and :mod:`stats` holds what they report (``GET /peers``, the client's gauges).
The shell: :mod:`client` (the request loop over a transport, with :mod:`request_state`
its records, :mod:`stall_judge` the verdicts net of the client's own stalls and
:mod:`hedging` the hedge race) and :mod:`gossip_net` (the UDP socket and its timer).
``docs/balancer.md`` gives the algorithm, its constants and why.
"""
