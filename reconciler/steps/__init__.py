"""Step implementations, picked by type from a registry."""
