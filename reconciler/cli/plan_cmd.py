"""``reconciler plan [PATH] --base REV [--head REV]``: what a change to the specs will do.

Loads the specs under PATH at the base revision and at the head (a revision, or by
default the work tree), and prints each object as create, update (field by field),
delete or unchanged, in dependency order, with the steps each change will run.
``--format markdown`` gives a ready pull-request comment (per object the field diff, the
steps, the sizing against each SLO, its findings; the last security scan of each Model
when a status branch is at hand, ``--status-ref``), ``--format json`` stable keys; both
show each revision as given and the commit it resolved to. When there is no plan (the
specs do not validate), ``--format json`` prints ``{"error": ...}`` and ``--format
markdown`` a comment listing the problems, so CI can post it.

Exit codes (terraform's -detailed-exitcode): 0 nothing to do, 2 changes present,
1 any error (the head specs do not validate, a bad revision, PATH not in a git repo, a
usage error such as an unknown flag).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from reconciler.cli.spec_loading import add_limit_flags, limits_from, name_cli_flags, parse_sources
from reconciler.core import plan_markdown, plan_render
from reconciler.core.diagnostics import Diagnostic
from reconciler.core.diff import ObjectState, diff_states, states_by_key
from reconciler.core.plan import Plan, plan_changes
from reconciler.core.validation.repo import ValidateOptions, ValidationResult, validate_parsed
from reconciler.drivers import files as spec_files
from reconciler.drivers import git_source
from reconciler.load.documents import SourceFile
from reconciler.load.limits import LoadLimits

STATUS_REFS = ("origin/reconciler/status", "reconciler/status")
"""Where ``--status-ref auto`` looks for the daemon's status branch, in order."""

EXIT_NO_CHANGES = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
WORK_TREE = "work tree"


class PlanInputError(Exception):
    """PATH or a revision cannot be read; the message says what to fix."""

    def __init__(self, message: str, diagnostics: Sequence[Diagnostic] = ()) -> None:
        super().__init__(message)
        self.diagnostics = tuple(diagnostics)


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
        "--status-ref",
        default="auto",
        metavar="REF",
        help="the daemon's status branch, for each Model's last scan in the markdown plan "
        f"(default auto: {' or '.join(STATUS_REFS)} when present; none: never)",
    )
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
    add_limit_flags(parser)


def find_git_top(folder: Path) -> Path | None:
    """The top of the git work tree holding ``folder`` (where ``.git`` is), or None."""
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def resolve_revision(top: Path, revision: str) -> str:
    """The commit ``revision`` names in the repository at ``top``, resolved once, so both
    the specs read and the commit shown are those of that one commit."""
    try:
        repo = git_source.open_or_init_bare(top, create=False)
        if repo is None:
            raise PlanInputError(f"{top} is not a git repository")
        try:
            return git_source.resolve_commit(repo, revision)
        finally:
            repo.close()
    except git_source.GitSourceError as e:
        raise PlanInputError(str(e)) from e


def _revision_sources(top: Path, commit: str, subdir: str) -> list[SourceFile]:
    try:
        blobs = git_source.read_tree_at(top, commit, subdir)
    except git_source.GitSourceError as e:
        raise PlanInputError(str(e)) from e
    return [SourceFile(blob.path, blob.data, blob.sha) for blob in blobs]


def _work_tree_sources(
    folder: Path, limits: LoadLimits
) -> tuple[list[SourceFile], list[Diagnostic]]:
    try:
        walk = spec_files.walk_spec_files(folder, max_size=limits.max_file_bytes)
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
        for problem in e.diagnostics:
            print(problem.format(), file=sys.stderr)
        print(f"reconciler plan: error: {e}", file=sys.stderr)
        if args.format == "json":
            sys.stdout.write(plan_render.render_json_error(str(e), e.diagnostics))
        if args.format == "markdown":
            head = args.head or WORK_TREE
            sys.stdout.write(
                plan_markdown.render_markdown_error(
                    str(e), e.diagnostics, base=args.base, head=head
                )
            )
        return EXIT_ERROR


def _plan(args: argparse.Namespace) -> int:
    try:
        limits = limits_from(args)
    except ValueError as e:
        raise PlanInputError(str(e)) from e
    sides = _states(args, limits)
    for text in sides.warnings:
        print(text, file=sys.stderr)
    plan = plan_changes(
        diff_states(sides.desired, sides.current),
        desired=sides.desired,
        current=sides.current,
        revision=sides.head_label,
        size=True,
    )
    sys.stdout.write(_render(args, plan, sides))
    return EXIT_CHANGES if plan.has_changes else EXIT_NO_CHANGES


States = dict[str, ObjectState]


@dataclasses.dataclass(frozen=True)
class _Sides:
    """Both sides of the plan as plain states, and what the output says about them."""

    desired: States
    current: States
    base_label: str
    base_commit: str
    head_label: str
    head_commit: str | None
    warnings: list[str]
    head_problems: list[Diagnostic]
    notes: list[str]
    """What the plan says besides the head's problems (the base does not validate)."""
    top: Path


def _states(args: argparse.Namespace, limits: LoadLimits) -> _Sides:
    """Both sides as plain states; PlanInputError when the head does not validate.

    The validated documents stay inside this function, so their memory is freed before
    the plan is built and rendered: a third off the peak for a 10,000-spec plan.
    """
    folder, top, subdir = _locate(args.path)
    options = ValidateOptions(implicit_projects=args.implicit_projects)
    base_commit = resolve_revision(top, args.base)
    head_commit = None if args.head is None else resolve_revision(top, args.head)
    base = _validate(_revision_sources(top, base_commit, subdir), options, args.jobs, limits)
    refused: list[Diagnostic] = []
    if head_commit is None:
        head_sources, refused = _work_tree_sources(folder, limits)
    else:
        head_sources = _revision_sources(top, head_commit, subdir)
    head = _validate(head_sources, options, args.jobs, limits)
    head_problems = sorted(
        name_cli_flags([*refused, *head.diagnostics]),
        key=lambda d: (d.path, d.line, d.col, d.message),
    )
    head_label = args.head or WORK_TREE
    if any(d.severity == "error" for d in head_problems):
        errors = sum(p.severity == "error" for p in head_problems)
        raise PlanInputError(
            f"the specs at {head_label} do not validate ({errors} error(s)); "
            "fix them, then plan again",
            head_problems,
        )
    notes = _base_notes(base, base_label=args.base)
    # Loaded specs live until exit: keep the cyclic GC from re-walking them while the
    # states are built (about 0.3 s of planning 10,000 specs).
    gc.freeze()
    return _Sides(
        desired=states_by_key(head.objects),
        current=states_by_key(base.objects),
        base_label=args.base,
        base_commit=base_commit,
        head_label=head_label,
        head_commit=head_commit,
        warnings=[p.format() for p in head_problems] + notes,
        head_problems=head_problems,
        notes=notes,
        top=top,
    )


def _validate(
    sources: Sequence[SourceFile], options: ValidateOptions, jobs: int | None, limits: LoadLimits
) -> ValidationResult:
    parsed = parse_sources(sources, limits=limits, jobs=jobs)
    return validate_parsed(parsed, options=options)


def _base_notes(base: ValidationResult, *, base_label: str) -> list[str]:
    base_errors = sum(d.severity == "error" for d in base.diagnostics)
    if not base_errors:
        return []
    return [
        f"warning: the base revision {base_label} does not validate ({base_errors} error(s)); "
        "the plan compares the objects of it that did load"
    ]


def _scans(
    args: argparse.Namespace, top: Path
) -> tuple[dict[str, plan_markdown.ScanSummary], str | None]:
    """Each Model's last scan from the status branch, and which commit it was read at."""
    if args.status_ref == "none":
        return {}, None
    candidates = STATUS_REFS if args.status_ref == "auto" else (args.status_ref,)
    for ref in candidates:
        try:
            commit = resolve_revision(top, ref)
        except PlanInputError:
            if args.status_ref != "auto":
                print(f"warning: --status-ref {ref} not found; no scan results shown",
                      file=sys.stderr)  # fmt: skip
            continue
        try:
            blobs = git_source.read_tree_at(top, commit, "status/models")
        except git_source.GitSourceError as e:
            print(f"warning: cannot read {ref}: {e}", file=sys.stderr)
            return {}, None
        return _scan_summaries(blobs), f"{ref} at {commit[:12]}"
    return {}, None


def _scan_summaries(blobs: list[git_source.SourceBlob]) -> dict[str, plan_markdown.ScanSummary]:
    found: dict[str, plan_markdown.ScanSummary] = {}
    for blob in blobs:
        try:
            document = yaml.safe_load(blob.data)
        except yaml.YAMLError:
            continue
        if not isinstance(document, Mapping) or document.get("kind") != "Model":
            continue
        scan = document.get("scan")
        if not isinstance(scan, Mapping) or not isinstance(document.get("name"), str):
            continue
        findings = scan.get("findings")
        found[f"Model/{document['name']}"] = plan_markdown.ScanSummary(
            result=str(scan.get("result", "unknown")),
            findings=tuple(f for f in findings or () if isinstance(f, Mapping)),
        )
    return found


def _render(args: argparse.Namespace, plan: Plan, sides: _Sides) -> str:
    if args.format == "text":
        return plan_render.render_text(plan)
    labels = {
        "base": sides.base_label,
        "head": sides.head_label,
        "base_commit": sides.base_commit,
        "head_commit": sides.head_commit,
    }
    if args.format == "json":
        return plan_render.render_json(plan, warnings=sides.warnings, **labels)
    scans, status_source = _scans(args, sides.top)
    context = plan_markdown.PlanContext(
        desired=sides.desired,
        findings=sides.head_problems,
        scans=scans,
        status_source=status_source,
    )
    return plan_markdown.render_markdown(plan, warnings=sides.notes, context=context, **labels)
