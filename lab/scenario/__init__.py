"""The scenario engine: a YAML experiment becomes faults, load, a history and a verdict.

Jepsen's split, one sub-package each: ``plan`` reads and validates the file and resolves
its timeline (pure); ``runtime`` and ``faults`` (the nemesis) act on the lab; ``checks``
judges the recorded history afterwards (pure); ``output`` writes the verdict (summary.json,
JUnit); ``run`` wires them together and is the only one that imports all the others. This
package file imports nothing, so its modules stay independent of each other's start-up
cost.
"""
