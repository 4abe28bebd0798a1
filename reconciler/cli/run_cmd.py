"""``reconciler run``: start the daemon from a config file or from a few flags.

``--config FILE`` (or ``$RECONCILER_CONFIG``) loads the config; without one,
``--repo URL_OR_PATH`` starts with defaults for everything else. Exit 1 on a bad config
(a clear error naming the file, line and field), on a usage error, or when the daemon
cannot start (another daemon holds the state directory, the API address is taken);
0 after a clean stop.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from reconciler.api.daemon_view import ApiListenError, serving
from reconciler.daemon.config import (
    Config,
    ConfigError,
    config_from_flags,
    config_path,
    load_config,
)
from reconciler.daemon.logs import configure_logging
from reconciler.daemon.service import Daemon, DaemonStartError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None, help="config file (reconciler.yaml)")
    parser.add_argument("--repo", default=None, help="state repo: a path or any URL git can fetch")
    parser.add_argument("--branch", default=None, help="branch to watch (default main)")
    parser.add_argument("--state-dir", default=None, help="where the daemon keeps its state")
    parser.add_argument(
        "--log-format",
        choices=("auto", "json", "text"),
        default=None,
        help="log lines as json, text, or auto (text on a terminal; default: config "
        "logging.format)",
    )
    parser.add_argument(
        "--listen", default=None, help="HOST:PORT for the HTTP API (else the config's api.listen)"
    )


def _config(args: argparse.Namespace) -> tuple[Config, Path | None]:
    path = config_path(args.config)
    if path is not None:
        if args.repo or args.branch or args.state_dir or args.listen:
            raise SystemExit(
                "reconciler run: error: give either --config or --repo/--branch/--state-dir/"
                "--listen, not both"
            )
        return load_config(path), path
    if not args.repo:
        raise SystemExit(
            "reconciler run: error: give --config FILE (or set RECONCILER_CONFIG) or --repo"
        )
    return (
        config_from_flags(
            repo=args.repo, branch=args.branch, state_dir=args.state_dir, listen=args.listen
        ),
        None,
    )


def run(args: argparse.Namespace) -> int:
    try:
        config, path = _config(args)
    except ConfigError as exc:
        print(f"reconciler run: invalid config:\n{exc}", file=sys.stderr)
        return 1
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 1
    serve = serving if "api" in config.model_fields_set else None  # api: section, --listen
    daemon = Daemon(config, config_file=path, serve=serve, owns_process=True)
    configure_logging(
        config.logging.level,
        redact=daemon.resolver.known_values,
        log_format=args.log_format or config.logging.format,
    )
    try:
        return asyncio.run(daemon.run())
    except (ApiListenError, DaemonStartError) as exc:
        print(f"reconciler run: error: {exc}", file=sys.stderr)
        return 1
