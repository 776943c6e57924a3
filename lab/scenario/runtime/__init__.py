"""The runtime: what brings the lab's nodes up and down (Jepsen's *db*).

One protocol and its two implementations (the Compose lab, local processes), plus the
watcher that notices a node dying on its own. This package file imports nothing.
"""
