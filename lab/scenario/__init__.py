"""The scenario engine: a YAML experiment becomes faults, load, a history and a verdict.

Jepsen's split: ``spec`` reads and validates the file and resolves its plan (pure);
the runtime and the nemesis (faults) act on the lab; ``checks``, ``steady`` and
``summary`` judge the recorded history afterwards (pure); ``junit`` and the report
present the verdict. This package file imports nothing, so its modules stay
independent of each other's start-up cost.
"""
