"""Validation of a spec repository: every problem of every file in one run."""
