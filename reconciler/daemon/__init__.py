"""The long-running daemon: configuration, the reconcile loop, status, systemd glue."""
