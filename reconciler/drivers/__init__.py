"""Drivers: the only code that talks to the outside (git, HTTP, files, secrets, clusters)."""
