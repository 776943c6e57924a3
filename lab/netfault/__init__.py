"""Network faults inside lab containers' namespaces: rules, the helper container, its agent."""
