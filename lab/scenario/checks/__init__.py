"""The checker: recovery figures, the oracle control, steady state and noise.

Pure functions of a run's recorded history, so a verdict can be recomputed from a journal.
This package file imports nothing, so importing one module does not import its siblings.
"""
