"""YAML loading with positions and safety limits: bytes in, plain values out."""
