"""``reconciler init DIR``: a new state repo, ready to push, review and run.

DIR (new, or an empty folder) gets the files of ``state-repo-template/``: ``clusters/``,
``models/``, ``deployments/``, ``workflows/``, ``assets/``, a README for the repo's users,
``.reconciler/`` (a commented daemon config, the JSON Schemas of this version's kinds,
``ci.sh``) and CI for GitHub Actions and GitLab CI that runs ``reconciler validate`` and
``reconciler plan --format markdown`` on every pull request and keeps one plan comment
up to date. Each spec file's ``# yaml-language-server: $schema=`` line points at
``.reconciler/schemas/`` (or at ``--schema-url``). Then ``git init`` and one commit on
``main`` (``--no-commit`` leaves that to you). Exit 0 done, 1 on any error (DIR not
empty, git missing, a usage error).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from reconciler import __version__
from reconciler.drivers import git_init
from reconciler.specs import schema_export

TEMPLATE = Path(__file__).resolve().parents[2] / "state-repo-template"
"""The template, beside the package in a checkout (an editable install)."""
SCHEMA_FOLDER = ".reconciler/schemas"
TEMPLATE_MODELS_DIR = "/srv/reconciler/models"
"""Where the template's demo Model expects its files; ``--models-dir`` replaces it."""
PIP_SPEC_LINE = re.compile(r'^(\s*RECONCILER_PIP_SPEC:\s*)"[^"]*"\s*$', re.MULTILINE)
SCHEMA_LINE = re.compile(r"^# yaml-language-server: \$schema=\S*?([a-z]+\.schema\.json)$", re.M)
DEFAULT_PIP_SPEC = f"reconciler=={__version__}"


class InitError(Exception):
    """Nothing usable was made; the message says why and what to do."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, help="the new repo's folder (new, or empty)")
    parser.add_argument(
        "--branch", default="main", help="the branch of the first commit (default main)"
    )
    parser.add_argument(
        "--pip-spec",
        default=DEFAULT_PIP_SPEC,
        metavar="REQUIREMENT",
        help="what CI installs with pip (default %(default)s; e.g. a git+https:// URL "
        "of your reconciler at a tag)",
    )
    parser.add_argument(
        "--schema-url",
        default=None,
        metavar="URL",
        help="point $schema lines at published schemas under URL instead of writing "
        "copies to .reconciler/schemas/",
    )
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"where the demo model's files are (replaces {TEMPLATE_MODELS_DIR})",
    )
    parser.add_argument(
        "--no-commit", action="store_true", help="write the files only: no git init, no commit"
    )


def _target(folder: Path) -> Path:
    if folder.exists() and not folder.is_dir():
        raise InitError(f"{folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise InitError(f"{folder} is not empty; give a new or empty folder")
    return folder


def _schema_reference(spec_file: Path, top: Path, schema_url: str | None, name: str) -> str:
    if schema_url is not None:
        return f"{schema_url.rstrip('/')}/{name}"
    relative = os.path.relpath(top / SCHEMA_FOLDER / name, spec_file.parent)
    return Path(relative).as_posix()


def _point_schemas(top: Path, schema_url: str | None) -> None:
    for spec_file in sorted(top.rglob("*.y*ml")):
        if ".reconciler" in spec_file.relative_to(top).parts:
            continue
        text = spec_file.read_text(encoding="utf-8")

        def pointed_at(match: re.Match[str], spec_file: Path = spec_file) -> str:
            target = _schema_reference(spec_file, top, schema_url, match.group(1))
            return f"# yaml-language-server: $schema={target}"

        pointed = SCHEMA_LINE.sub(pointed_at, text)
        if pointed != text:
            spec_file.write_text(pointed, encoding="utf-8")


def _set_pip_spec(top: Path, pip_spec: str) -> None:
    if '"' in pip_spec or "\n" in pip_spec:
        raise InitError(f"--pip-spec {pip_spec!r}: a requirement without quotes or newlines")
    for ci_file in (top / ".github" / "workflows" / "reconciler.yml", top / ".gitlab-ci.yml"):
        text = ci_file.read_text(encoding="utf-8")
        changed, count = PIP_SPEC_LINE.subn(lambda m: f'{m.group(1)}"{pip_spec}"', text)
        if count != 1:
            raise InitError(f"{ci_file}: found no RECONCILER_PIP_SPEC line to set")
        ci_file.write_text(changed, encoding="utf-8")


def _set_models_dir(top: Path, models_dir: Path) -> None:
    for spec_file in sorted((top / "models").rglob("*.yaml")):
        text = spec_file.read_text(encoding="utf-8")
        if TEMPLATE_MODELS_DIR in text:
            spec_file.write_text(
                text.replace(TEMPLATE_MODELS_DIR, str(models_dir.resolve())), encoding="utf-8"
            )


def create(
    folder: Path,
    *,
    pip_spec: str = DEFAULT_PIP_SPEC,
    schema_url: str | None = None,
    models_dir: Path | None = None,
    template: Path = TEMPLATE,
) -> None:
    """Write the new repo's files into ``folder`` (new or empty)."""
    if not template.is_dir():
        raise InitError(
            f"the state repo template is not at {template}: run reconciler from a checkout "
            "of the project (./run.sh installs it so)"
        )
    _target(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".reconciler-init-", dir=folder.parent))
    try:
        shutil.copytree(template, stage, dirs_exist_ok=True)
        if schema_url is None:
            schema_export.write_schemas(stage / SCHEMA_FOLDER)
        _point_schemas(stage, schema_url)
        _set_pip_spec(stage, pip_spec)
        if models_dir is not None:
            _set_models_dir(stage, models_dir)
        folder.mkdir(exist_ok=True)
        for entry in sorted(stage.iterdir()):
            entry.rename(folder / entry.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


NEXT_STEPS = """\
Next:
  reconciler validate {dir}
  push it to your Git host, then review changes as pull requests: CI comments the plan
  run the daemon on it: see {dir}/README.md ("Running the daemon")"""


def run(args: argparse.Namespace) -> int:
    folder: Path = args.dir
    try:
        create(
            folder, pip_spec=args.pip_spec, schema_url=args.schema_url, models_dir=args.models_dir
        )
        commit = None
        if not args.no_commit:
            commit = git_init.init_and_commit(
                folder, branch=args.branch, message="Start from reconciler init"
            )
    except (InitError, git_init.GitInitError, OSError) as exc:
        print(f"reconciler init: error: {exc}", file=sys.stderr)
        return 1
    made = f"a new state repo in {folder}"
    if commit is not None:
        made += f" (branch {args.branch}, commit {commit[:12]})"
    print(made)
    print(NEXT_STEPS.format(dir=folder))
    return 0
