"""Pure core: diagnostics, durations, substitution, validation, diff and plan (no I/O)."""
