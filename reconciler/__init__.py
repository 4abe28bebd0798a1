"""reconciler: a GitOps reconciler daemon for the ML model lifecycle on GPU clusters.

Git holds the intent (YAML specs); the daemon loads, validates, diffs, plans and runs the
step chains that bring clusters in line, then commits status back to Git.
"""

__version__ = "0.1.0"
