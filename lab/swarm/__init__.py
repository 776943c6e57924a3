"""The lab on Docker Swarm: a local N-node swarm, the stack derived from compose.yaml,
its deployment and removal."""
