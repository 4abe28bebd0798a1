"""``reconciler check-config [FILE]``: check a daemon config file without starting the daemon.

FILE defaults to $RECONCILER_CONFIG, then /etc/reconciler/reconciler.yaml. The file goes
through the daemon's own loader, so what passes here is what ``reconciler run`` accepts.
Exit 0 when the config is valid; 1 with one line per problem, each naming the file, line
and field (``reconciler.yaml:4:3: repo.poll_intervl: unknown field ...``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reconciler.daemon.config import DEFAULT_CONFIG_PATH, ConfigError, config_path, load_config

EXIT_VALID = 0
EXIT_INVALID = 1


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        nargs="?",
        type=Path,
        default=None,
        help=f"the config file (default: $RECONCILER_CONFIG, else {DEFAULT_CONFIG_PATH})",
    )


def run(args: argparse.Namespace) -> int:
    path = config_path(args.file) or DEFAULT_CONFIG_PATH
    try:
        config = load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem.format(), file=sys.stderr)
        print(
            f"reconciler check-config: {path}: {len(exc.problems)} problem(s); "
            "the daemon would refuse to start",
            file=sys.stderr,
        )
        return EXIT_INVALID
    api = (
        f"API on {config.api.listen}"
        if "api" in config.model_fields_set  # what `reconciler run` serves by
        else "no HTTP API: add an api: section to serve one"
    )
    print(f"{path}: valid (branch {config.repo.branch}, state_dir {config.state_dir}, {api})")
    return EXIT_VALID
