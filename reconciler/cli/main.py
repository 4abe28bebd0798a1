"""The ``reconciler`` command: one module per subcommand, imported only when it runs.

Exit codes: 0 success, 1 any error, usage errors included (argparse's own 2 would read
as ``plan``'s "changes present", terraform's -detailed-exitcode, so CI could not tell
them apart). Importing only the chosen subcommand keeps
``reconciler validate`` from paying for the daemon's imports (aiohttp, git) on every run.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Sequence

from reconciler import __version__

COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("validate_cmd", "check the specs of a repo or file; exit 1 on any error"),
    "plan": (
        "plan_cmd",
        "show what a change to the specs will do; exit 0 none, 2 changes, 1 error",
    ),
    "run": ("run_cmd", "run the daemon: watch the state repo and reconcile"),
    "status": ("status_cmd", "what the running daemon thinks of the objects (via its API)"),
    "trigger": ("trigger_cmd", "run a Workflow now with parameters (via the daemon's API)"),
    "explain": ("explain_cmd", "why an object is not Ready, what it waits for, what to do"),
    "steps": ("steps_cmd", "list the step types a Workflow may use, with inputs and outputs"),
    "check-config": ("check_config_cmd", "check a daemon config file without starting"),
    "endpoints": ("endpoints_cmd", "list or stop the local model servers (daemon stopped)"),
    "init": ("init_cmd", "start a new state repo: specs, CI that comments plans, schemas"),
    "pr-comment": ("pr_comment_cmd", "keep one plan comment on a pull/merge request (CI)"),
    "shards": ("shards_cmd", "which replica holds which shard (via any replica's API)"),
}


EXIT_USAGE = 1
EXIT_CODES = (
    "Exit codes, every command: 0 success, 1 any error (usage errors included); "
    "plan alone uses 2, for changes present. `reconciler COMMAND --help` for each."
)
ONE_SHOT = frozenset({"validate", "plan"})
ONE_SHOT_GC_THRESHOLD = 50_000


def _fewer_collections() -> None:
    """Tune the cyclic GC for a one-shot command.

    What a one-shot command imports and loads lives until exit and is acyclic (reference
    counting frees it), yet with the default threshold the collector re-walks every
    loaded spec again and again: about 0.3 s of validating and 0.7 s of planning
    10,000 specs. The daemon keeps the default.
    """
    gc.freeze()
    gc.set_threshold(ONE_SHOT_GC_THRESHOLD, *gc.get_threshold()[1:])


def _chosen(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser; only the module of the subcommand ``argv`` names is imported. Without
    one (``--version``, ``--help``, a usage error) none is: the top level lists names and
    one-line helps, which need no module (importing all twelve took ~2 s of CPU)."""
    parser = argparse.ArgumentParser(
        prog="reconciler",
        description="GitOps reconciler for the ML model lifecycle on GPU clusters.",
        epilog=EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"reconciler {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    chosen = _chosen(argv)
    for name, (module_name, help_text) in COMMANDS.items():
        if name != chosen:
            subparsers.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(f"reconciler.cli.{module_name}")
        sub = subparsers.add_parser(
            name,
            help=help_text,
            description=(module.__doc__ or "").replace("``", ""),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.configure(sub)
        sub.set_defaults(handler=module.run, command_parser=sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(arguments)
    try:
        args, unknown = parser.parse_known_args(arguments)
        if unknown:  # the subcommand's usage, not the top level's
            chosen: argparse.ArgumentParser = getattr(args, "command_parser", parser)
            chosen.error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as stop:  # argparse: 0 after --help, 2 on a usage error
        return EXIT_USAGE if stop.code == 2 else int(stop.code or 0)
    if args.command in ONE_SHOT:
        _fewer_collections()
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
