"""The client service ``lab client``: open-loop load, a recorder, and its control API.

A client process drives requests at a scheduled rate through one balancing policy
(adaptive, random, round_robin or oracle), records every request with its attempts, and
serves the records, its breaker and gossip events, and Prometheus metrics on a small
control API so the scenario engine can judge it afterwards.

Modules: ``limits`` (the load a client accepts; the scenario loader uses it too),
``schedule`` (pure arrival times and the in-flight bound), ``recorder`` (bounded
rings read with cursors), ``settings`` (flags and environment), ``load`` (the load loop),
``metrics`` (the per-app Prometheus registry), ``control`` (HTTP handlers), ``app``
(wiring and lifecycle), ``command`` (the ``lab client`` entry point) and
``local_cluster`` (grapes, workers, Toxiproxy and clients as local processes).
"""
