"""The verdict as files: summary.json and JUnit XML.

This package file imports nothing, so importing one module does not import its siblings.
"""
