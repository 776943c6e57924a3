"""The learning path: hands-on commands (lookup, call, peers) and the challenge ladder."""
