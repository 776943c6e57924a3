"""The grape: a DHT node (kademlia routing) with Grenache's HTTP API.

Modules: ``settings`` (flags and environment), ``records`` (announcements with deadlines;
pure), ``bencode`` (immutable values and their keys), ``protocol`` (the kademlia protocol
with cluster-checked announce/lookup RPCs), ``node`` (the DHT node: join, announce,
lookup, put, get), ``api`` (the Grenache HTTP handlers, health and metrics) and
``command`` (the ``lab grape`` entry point). ``docs/grape.md`` says how it differs from
the Node.js grape.
"""
