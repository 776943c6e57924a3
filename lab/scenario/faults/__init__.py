"""The nemesis: fault kinds, the faults that act on the lab through a runtime, and their rollback.

This package file imports nothing, so importing one module does not import its siblings.
"""
