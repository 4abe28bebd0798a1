"""``reconciler validate [PATH...]``: every problem of a spec repo, one line each.

Output: ``path:line:col: error|warning: message (kind/name)``; ``--format json`` gives
the same records. PATH is a folder (every spec under it, paths shown relative to it;
default ``.``) or one or more files, as editors and pre-commit hooks pass them: a file
inside a repo (the nearest folder above it holding ``.reconciler/`` or ``.git``, or
``--repo DIR``) is checked against every spec of that repo, so its references to objects
in other files resolve, and only that file's problems are shown, under the path as given.
Exit 0 when valid (warnings allowed), 1 on any error: an invalid spec, a usage error, or
PATH holding no spec file at all (a mistyped path must not pass CI; ``--allow-empty``
accepts an empty repo). Works offline; ``--host-checks`` adds the warnings only the
daemon's host can give (secrets present, model paths on disk).
"""

from __future__ import annotations

import argparse
import dataclasses
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
from reconciler.core.validation.repo import ValidateOptions, validate_parsed
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
    parser.add_argument(
        "paths",
        nargs="*",
        default=[],
        metavar="PATH",
        help="a spec repo folder (default .), or spec files",
    )
    parser.add_argument(
        "--repo",
        type=Path,
        default=None,
        metavar="DIR",
        help="the repo the given files belong to (default: the nearest folder above each "
        "holding .reconciler/ or .git)",
    )
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


def _folder_sources(target: Path, limits: LoadLimits) -> tuple[list[SourceFile], list[Diagnostic]]:
    walk = spec_files.walk_spec_files(target, max_size=limits.max_file_bytes)
    sources = [SourceFile(f.path, f.data) for f in walk.files]
    return sources, [_refused(r.path, r.reason) for r in walk.refused]


def _file_source(path: Path, shown: str, limits: LoadLimits) -> SourceFile | Diagnostic:
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        reason = (
            f"file is {size} bytes, above the limit of {limits.max_file_bytes} bytes "
            f"({flag_of('max_file_bytes')})"
        )
        return _refused(shown, reason)
    return SourceFile(shown, path.read_bytes())


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


def repo_of(file: Path) -> Path | None:
    """The repo a spec file belongs to: the nearest folder above it that holds
    ``.reconciler/`` (made by ``reconciler init``) or ``.git``; None outside any."""
    for folder in file.resolve().parents:
        if (folder / ".reconciler").is_dir() or (folder / ".git").exists():
            return folder
    return None


@dataclasses.dataclass
class _Checked:
    """One validation run: the sources parsed, and which files it reports on.

    ``shown`` maps the source path of each file reported on to the path printed; None
    reports every file (a folder, paths relative to it).
    """

    sources: list[SourceFile] = dataclasses.field(default_factory=list)
    refused: list[Diagnostic] = dataclasses.field(default_factory=list)
    shown: dict[str, str] | None = None
    context: str | None = None


def _check_folder(target: Path, limits: LoadLimits) -> _Checked:
    sources, refused = _folder_sources(target, limits)
    return _Checked(sources, refused)


def _check_files(files: list[Path], repo: Path | None, limits: LoadLimits) -> list[_Checked]:
    """The given files, each read with the rest of its repo (one run per repo); only
    they are reported. Files outside any repo are checked together."""
    by_repo: dict[Path | None, list[Path]] = {}
    for file in files:
        by_repo.setdefault(repo.resolve() if repo else repo_of(file), []).append(file)
    runs = []
    for top, members in by_repo.items():
        checked = _Checked(shown={})
        if top is not None:
            checked.sources, _ = _folder_sources(top, limits)  # the others' problems aren't ours
            checked.context = f"{len(checked.sources)} file(s) of {top}"
        have = {s.path for s in checked.sources}
        for file in members:
            key = str(file) if top is None else _relative(file, top)
            assert checked.shown is not None
            if key in checked.shown:
                continue
            checked.shown[key] = str(file)
            found = _file_source(file, key, limits)
            if isinstance(found, Diagnostic):
                checked.refused.append(found)
            elif key not in have:  # not among the repo's spec files (hidden, say)
                checked.sources.append(found)
        runs.append(checked)
    return runs


def _relative(file: Path, top: Path) -> str:
    try:
        return file.resolve().relative_to(top).as_posix()
    except ValueError:  # --repo that does not hold the file: check it as one more file
        return str(file)


def _validate(
    checked: _Checked, args: argparse.Namespace, limits: LoadLimits
) -> tuple[list[Diagnostic], int, int]:
    """The problems of the files ``checked`` reports on, their count and their objects'."""
    host = None
    if args.host_checks:
        host = _HostFacts(SecretResolver(secrets_dir=args.secrets_dir))
    parsed = parse_sources(checked.sources, limits=limits, parser=args.parser, jobs=args.jobs)
    result = validate_parsed(
        parsed, options=ValidateOptions(implicit_projects=args.implicit_projects), host=host
    )
    found = name_cli_flags([*checked.refused, *result.diagnostics])
    shown = checked.shown
    if shown is None:
        return found, len(checked.sources), len(result.objects)
    mine = [dataclasses.replace(d, path=shown[d.path]) for d in found if d.path in shown]
    return mine, len(shown), sum(obj.path in shown for obj in result.objects)


def run(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.paths] or [Path(".")]
    for path in paths:
        if not path.exists():
            return _error(f"{path} does not exist")
    folders = [p for p in paths if p.is_dir()]
    if folders and len(paths) > 1:
        return _error(f"give one folder, or spec files, not both ({folders[0]} is a folder)")
    if args.repo is not None and not args.repo.is_dir():
        return _error(f"--repo {args.repo} is not a folder")
    try:
        limits = limits_from(args)
    except ValueError as e:
        return _error(str(e))
    if folders:
        runs = [_check_folder(folders[0], limits)]
        if not runs[0].sources and not runs[0].refused and not args.allow_empty:
            return _error(
                f"no spec files in {folders[0]} (*.yaml or *.yml, outside status/ and hidden "
                "folders); check the path, or give --allow-empty if an empty repo is intended"
            )
    else:
        runs = _check_files(paths, args.repo, limits)
    diagnostics: list[Diagnostic] = []
    files = objects = 0
    for checked in runs:
        found, file_count, object_count = _validate(checked, args, limits)
        diagnostics += found
        files += file_count
        objects += object_count
    diagnostics.sort(key=lambda d: (d.path, d.line, d.col, d.message))
    context = [checked.context for checked in runs if checked.context]
    _print(args.format, diagnostics, files, objects, context)
    return EXIT_ERROR if any(d.severity == "error" for d in diagnostics) else EXIT_VALID


def _print(
    fmt: str,
    diagnostics: list[Diagnostic],
    file_count: int,
    object_count: int,
    context: list[str],
) -> None:
    errors = sum(d.severity == "error" for d in diagnostics)
    warnings = len(diagnostics) - errors
    if fmt == "json":
        # The same records as the text lines, one JSON object each, in the same order.
        print(json.dumps([d.to_json() for d in diagnostics], indent=2))
    else:
        for diagnostic in diagnostics:
            print(diagnostic.format())
    against = f" (references checked against {', '.join(context)})" if context else ""
    print(
        f"{errors} error(s), {warnings} warning(s) in {file_count} file(s), "
        f"{object_count} object(s){against}",
        file=sys.stderr,
    )
