"""The plan: a scenario file read, validated and resolved into a timeline.

Pure: no I/O but reading the file, so a plan can be checked (``lab validate``) without a lab.
This package file imports nothing, so importing one module does not import its siblings.
"""
