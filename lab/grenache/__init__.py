"""Grenache's wire protocol in Python: envelopes, HTTP transport, RPC server, grape link.

Wire facts follow the Node.js originals (grenache-nodejs-http 1.0.2, -link 1.0.2) so the
real Node client and server interoperate with ours; see ``docs/grenache.md``.
"""
