"""``lab worker``: a Grenache RPC service with application-level fault knobs.

settings.py (flags/env), behaviour.py (latency, errors, CPU work; pure and seeded),
metrics.py (Prometheus), control.py (the control HTTP app), app.py (wiring and
lifecycle), command.py (the subcommand).
"""
