"""``reconciler plan [PATH] --base REV [--head REV]``: what a change to the specs will do.

Loads the specs under PATH at the base revision and at the head (a revision, or by
default the work tree), and prints each object as create, update (field by field),
delete or unchanged, in dependency order, with the steps each change will run.
``--format markdown`` gives a ready pull-request comment, ``--format json`` stable keys.

Exit codes (terraform's -detailed-exitcode): 0 nothing to do, 2 changes present,
1 an error (the head specs do not validate, a bad revision, PATH not in a git repo).
A usage error also exits 2, as for every command.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence
from pathlib import Path

from reconciler.cli.spec_loading import parse_sources
from reconciler.core import plan_render
from reconciler.core.diagnostics import Diagnostic
from reconciler.core.diff import ObjectState, diff_states, states_by_key
from reconciler.core.plan import Plan, plan_changes
from reconciler.core.validation.repo import ValidateOptions, ValidationResult, validate_parsed
from reconciler.drivers import files as spec_files
from reconciler.drivers import git_source
from reconciler.load.documents import SourceFile
from reconciler.load.limits import LoadLimits

EXIT_NO_CHANGES = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
WORK_TREE = "work tree"


class PlanInputError(Exception):
    """PATH or a revision cannot be read; the message says what to fix."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path", nargs="?", default=".", help="a spec folder inside a git work tree (default: .)"
    )
    parser.add_argument("--base", required=True, metavar="REV", help="the revision to compare to")
    parser.add_argument(
        "--head", default=None, metavar="REV", help="the revision to plan (default: the work tree)"
    )
    parser.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    parser.add_argument(
        "--implicit-projects",
        action="store_true",
        help="a missing Project is created implicitly (daemon config projects.create_missing)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="parse files on N processes (default: every core, for 300 files or more)",
    )


def find_git_top(folder: Path) -> Path | None:
    """The top of the git work tree holding ``folder`` (where ``.git`` is), or None."""
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def _revision_sources(top: Path, revision: str, subdir: str) -> list[SourceFile]:
    try:
        blobs = git_source.read_tree_at(top, revision, subdir)
    except git_source.GitSourceError as e:
        raise PlanInputError(str(e)) from e
    return [SourceFile(blob.path, blob.data, blob.sha) for blob in blobs]


def _work_tree_sources(folder: Path) -> tuple[list[SourceFile], list[Diagnostic]]:
    try:
        walk = spec_files.walk_spec_files(folder)
    except spec_files.SpecDirectoryError as e:
        raise PlanInputError(str(e)) from e
    refused = [
        Diagnostic(path=r.path, line=1, col=1, severity="error", message=r.reason)
        for r in walk.refused
    ]
    return [SourceFile(f.path, f.data) for f in walk.files], refused


def _locate(path: str) -> tuple[Path, Path, str]:
    folder = Path(path).resolve()
    if not folder.is_dir():
        raise PlanInputError(f"{path} is not a folder; give a spec folder inside a git work tree")
    top = find_git_top(folder)
    if top is None:
        raise PlanInputError(
            f"{path} is not inside a git work tree; plan compares git revisions, "
            "so run it in a clone of the state repo"
        )
    relative = folder.relative_to(top).as_posix()
    return folder, top, "" if relative == "." else relative


def run(args: argparse.Namespace) -> int:
    try:
        return _plan(args)
    except PlanInputError as e:
        print(f"reconciler plan: error: {e}", file=sys.stderr)
        return EXIT_ERROR


def _plan(args: argparse.Namespace) -> int:
    loaded = _states(args)
    if loaded is None:
        return EXIT_ERROR
    desired, current, head_label, warnings = loaded
    for text in warnings:
        print(text, file=sys.stderr)
    plan = plan_changes(
        diff_states(desired, current), desired=desired, current=current, revision=head_label
    )
    sys.stdout.write(_render(args.format, plan, base=args.base, head=head_label, warnings=warnings))
    return EXIT_CHANGES if plan.has_changes else EXIT_NO_CHANGES


States = dict[str, ObjectState]


def _states(args: argparse.Namespace) -> tuple[States, States, str, list[str]] | None:
    """Both sides as plain states (None when the head does not validate).

    The validated documents stay inside this function, so their memory is freed before
    the plan is built and rendered: a third off the peak for a 10,000-spec plan.
    """
    folder, top, subdir = _locate(args.path)
    options = ValidateOptions(implicit_projects=args.implicit_projects)
    base = _validate(_revision_sources(top, args.base, subdir), options, args.jobs)
    refused: list[Diagnostic] = []
    if args.head is None:
        head_sources, refused = _work_tree_sources(folder)
    else:
        head_sources = _revision_sources(top, args.head, subdir)
    head = _validate(head_sources, options, args.jobs)
    head_problems = sorted(
        [*refused, *head.diagnostics], key=lambda d: (d.path, d.line, d.col, d.message)
    )
    head_label = args.head or WORK_TREE
    if any(d.severity == "error" for d in head_problems):
        _report_invalid_head(head_problems, head_label)
        return None
    # Loaded specs live until exit: keep the cyclic GC from re-walking them while the
    # states are built (about 0.3 s of planning 10,000 specs).
    gc.freeze()
    warnings = _warnings(base, head_problems, base_label=args.base)
    return states_by_key(head.objects), states_by_key(base.objects), head_label, warnings


def _validate(
    sources: Sequence[SourceFile], options: ValidateOptions, jobs: int | None
) -> ValidationResult:
    parsed = parse_sources(sources, limits=LoadLimits(), jobs=jobs)
    return validate_parsed(parsed, options=options)


def _report_invalid_head(problems: Sequence[Diagnostic], head_label: str) -> None:
    for problem in problems:
        print(problem.format(), file=sys.stderr)
    errors = sum(p.severity == "error" for p in problems)
    print(
        f"reconciler plan: error: the specs at {head_label} do not validate "
        f"({errors} error(s)); fix them, then plan again",
        file=sys.stderr,
    )


def _warnings(
    base: ValidationResult, head_problems: Sequence[Diagnostic], *, base_label: str
) -> list[str]:
    found = [problem.format() for problem in head_problems]
    base_errors = sum(d.severity == "error" for d in base.diagnostics)
    if base_errors:
        found.append(
            f"warning: the base revision {base_label} does not validate ({base_errors} error(s)); "
            "the plan compares the objects of it that did load"
        )
    return found


def _render(fmt: str, plan: Plan, *, base: str, head: str, warnings: Sequence[str]) -> str:
    if fmt == "json":
        return plan_render.render_json(plan, base=base, head=head, warnings=warnings)
    if fmt == "markdown":
        return plan_render.render_markdown(plan, base=base, head=head, warnings=warnings)
    return plan_render.render_text(plan)
