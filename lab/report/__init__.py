"""HTML recovery reports: a page per run and an index of runs, re-rendered from disk.

``render_report(run_dir)`` and ``render_index(reports_dir)`` are the entry points (the
runner calls the first after every run); ``model``, ``timelines`` and ``charts`` are
pure.
"""
