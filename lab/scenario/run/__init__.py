"""Running a scenario: the runner and its commands, collector, progress, lock, repeats.

The only sub-package that may import all the others: it wires plan, runtime, faults,
checks and output together. This package file imports nothing.
"""
