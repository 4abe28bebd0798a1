"""Command-line entry points: parse arguments, wire the parts, print results."""
