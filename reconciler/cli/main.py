"""The ``reconciler`` command: one subcommand module each, wired here.

Exit codes: 0 success, 1 a problem with the input (invalid specs, failed run), 2 a usage
error (argparse's convention; ``plan`` also uses 2 for "changes present", terraform's
-detailed-exitcode, and says so in its help).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol

from reconciler import __version__


class Command(Protocol):
    """A subcommand module: registers its parser and runs with the parsed arguments."""

    def register(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


COMMAND_MODULES = ("validate_cmd", "plan_cmd", "run_cmd")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reconciler",
        description="GitOps reconciler for the ML model lifecycle on GPU clusters.",
    )
    parser.add_argument("--version", action="version", version=f"reconciler {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"reconciler.cli.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"reconciler.cli.{module_name}":
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = args.handler
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
