"""Docker Swarm as a second engine for the lab: its state, a local multi-node swarm, the stack.

``lab.swarm`` may import ``lab.stack``, ``lab.errors`` and ``lab.netfault``; it never imports
``lab.scenario`` (the scenario runtime imports it, so the other direction would be a cycle).
"""
