"""``reconciler validate [PATH]``: every problem of a spec repo, one line each.

Output: ``path:line:col: error|warning: message (kind/name)``, paths relative to PATH;
``--format json`` gives the same records. Exit 0 when valid (warnings allowed), 1 on
any error: an invalid spec, a usage error, or PATH holding no spec file at all (a
mistyped path must not pass CI; ``--allow-empty`` accepts an empty repo). Works offline;
``--host-checks`` adds the warnings only the daemon's host can give (secrets present,
model paths on disk).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from reconciler.cli.spec_loading import (
    add_limit_flags,
    flag_of,
    limits_from,
    name_cli_flags,
    parse_sources,
)
from reconciler.core.diagnostics import Diagnostic
from reconciler.core.validation.repo import ValidateOptions, ValidationResult, validate_parsed
from reconciler.drivers import files as spec_files
from reconciler.drivers.secrets import SecretResolver
from reconciler.load.documents import SourceFile
from reconciler.load.limits import LoadLimits
from reconciler.load.nodes import available_parsers


class _HostFacts:
    """Host facts through the real secret resolver and file system."""

    def __init__(self, resolver: SecretResolver) -> None:
        self._resolver = resolver

    def secret_exists(self, name: str) -> bool:
        try:
            return self._resolver.exists(name)
        except (ValueError, OSError):  # not a usable name, or a folder we may not look in
            return False

    def path_exists(self, path: str) -> bool:
        return os.path.exists(path)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=".", help="a spec repo folder or one file")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="a PATH holding no spec file is valid (by default it is an error)",
    )
    add_limit_flags(parser)
    parser.add_argument(
        "--parser",
        choices=available_parsers(),
        default=None,
        help="YAML parser (default: libyaml when available)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="parse files on N processes (default: every core, for 300 files or more)",
    )
    parser.add_argument(
        "--host-checks",
        action="store_true",
        help="also warn about secrets and model paths missing on this host",
    )
    parser.add_argument(
        "--secrets-dir",
        type=Path,
        default=None,
        help="secrets folder for --host-checks (the daemon's secrets_dir)",
    )
    parser.add_argument(
        "--implicit-projects",
        action="store_true",
        help="a missing Project is created implicitly (daemon config projects.create_missing)",
    )


def _sources(target: Path, limits: LoadLimits) -> tuple[list[SourceFile], list[Diagnostic]]:
    if target.is_file():
        size = target.stat().st_size
        if size > limits.max_file_bytes:
            reason = (
                f"file is {size} bytes, above the limit of {limits.max_file_bytes} bytes "
                f"({flag_of('max_file_bytes')})"
            )
            return [], [_refused(target.name, reason)]
        return [SourceFile(target.name, target.read_bytes())], []
    walk = spec_files.walk_spec_files(target, max_size=limits.max_file_bytes)
    sources = [SourceFile(f.path, f.data) for f in walk.files]
    return sources, [_refused(r.path, r.reason) for r in walk.refused]


def _refused(path: str, reason: str) -> Diagnostic:
    subject = "file " if reason.startswith(("is ", "cannot ")) else ""
    if reason.startswith("is too large"):
        reason += f" ({flag_of('max_file_bytes')})"
    return Diagnostic(path=path, line=1, col=1, severity="error", message=subject + reason)


EXIT_VALID = 0
EXIT_ERROR = 1


def _error(message: str) -> int:
    print(f"reconciler validate: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def run(args: argparse.Namespace) -> int:
    target = Path(args.path)
    if not target.exists():
        return _error(f"{target} does not exist")
    try:
        limits = limits_from(args)
    except ValueError as e:
        return _error(str(e))
    sources, refused = _sources(target, limits)
    if not sources and not refused and not args.allow_empty:
        return _error(
            f"no spec files in {target} (*.yaml or *.yml, outside status/ and hidden "
            "folders); check the path, or give --allow-empty if an empty repo is intended"
        )
    host = None
    if args.host_checks:
        host = _HostFacts(SecretResolver(secrets_dir=args.secrets_dir))
    parsed = parse_sources(sources, limits=limits, parser=args.parser, jobs=args.jobs)
    result = validate_parsed(
        parsed, options=ValidateOptions(implicit_projects=args.implicit_projects), host=host
    )
    diagnostics = sorted(
        name_cli_flags([*refused, *result.diagnostics]),
        key=lambda d: (d.path, d.line, d.col, d.message),
    )
    _print(args.format, diagnostics, result, len(sources))
    return EXIT_ERROR if any(d.severity == "error" for d in diagnostics) else EXIT_VALID


def _print(
    fmt: str, diagnostics: list[Diagnostic], result: ValidationResult, file_count: int
) -> None:
    errors = sum(d.severity == "error" for d in diagnostics)
    warnings = len(diagnostics) - errors
    if fmt == "json":
        # The same records as the text lines, one JSON object each, in the same order.
        print(json.dumps([d.to_json() for d in diagnostics], indent=2))
    else:
        for diagnostic in diagnostics:
            print(diagnostic.format())
    print(
        f"{errors} error(s), {warnings} warning(s) in {file_count} file(s), "
        f"{len(result.objects)} object(s)",
        file=sys.stderr,
    )
