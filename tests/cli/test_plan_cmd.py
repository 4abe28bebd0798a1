"""``reconciler plan``: a real git repo, base specs committed, the work tree or a branch edited.

Runs the command in-process through ``reconciler.cli.main.main`` (exact output and exit
codes 0/1/2 for each format) and once as a real subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from reconciler.cli.main import main

SPEC_FIXTURES = Path(__file__).parents[1] / "plan" / "fixtures" / "repo"
PROJECT_ROOT = Path(__file__).parents[2]

PHI_CHAT_WORKERS = ("  workers: null ", "  workers: 2    ")
PHI_MODEL_REVISION = ("    revision: main ", "    revision: v2   ")
ANTHROPIC = """\
apiVersion: reconciler/v1
kind: Credential
metadata:
  name: anthropic-prod
spec:
  provider: anthropic
  secret: anthropic-api-key
"""


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repo whose ``specs/`` folder holds the fixture specs, committed on main.

    ``other/`` holds a spec outside the planned folder, which plan must never read.
    """
    empty = tmp_path / "gitconfig"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test Writer")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "writer@example.test")
    top = tmp_path / "state"
    shutil.copytree(SPEC_FIXTURES, top / "specs")
    (top / "other").mkdir()
    (top / "other" / "extra.yaml").write_text(ANTHROPIC.replace("anthropic-prod", "elsewhere"))
    git(top, "init", "--quiet", "--initial-branch=main")
    git(top, "add", "-A")
    git(top, "commit", "--quiet", "-m", "base specs")
    monkeypatch.chdir(top)
    return top


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def plan(capsys: pytest.CaptureFixture[str], args: Sequence[str]) -> tuple[int, str, str]:
    code = main(["plan", *args])
    out, err = capsys.readouterr()
    return code, out, err


def edit_work_tree(top: Path) -> None:
    replace_in(top / "specs" / "deployments.yaml", *PHI_CHAT_WORKERS)
    replace_in(top / "specs" / "models.yaml", *PHI_MODEL_REVISION)
    (top / "specs" / "credentials.yaml").write_text(ANTHROPIC)


UNCHANGED_LINE = (
    "= unchanged: Credential/hf-token, Credential/openai-prod, Project/research, "
    "Cluster/local, Cluster/xeon-dev, DeploymentTemplate/chat-low-latency, "
    "Model/gpt-4o-mini, Model/minilm, Model/tiny-gguf, Deployment/gpt-mini-endpoint, "
    "Workflow/nightly-eval"
)
CHANGED_TEXT = [
    "+ create Credential/anthropic-prod",
    "    steps: check_secret",
    "~ update Model/phi-3-5-mini",
    '    spec.source.revision: "main" -> "v2"',
    "    steps: add_model -> scan_model",
    "~ update Deployment/phi-chat (Model phi-3-5-mini changed)",
    "    spec.workers: null -> 2",
    "    steps: deploy_model",
    "    sizing: not estimated here: Model phi-3-5-mini gives no parameters and dtype in its "
    "spec (the daemon sizes it from the model's files when it deploys)",
    "    after: Model/phi-3-5-mini",
    UNCHANGED_LINE,
    "",
    "Plan: 1 to create, 2 to update, 0 to delete, 11 unchanged.",
]


def test_no_changes_exits_0(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = plan(capsys, ["specs", "--base", "main"])

    assert code == 0
    assert out.splitlines()[-2:] == [
        "No changes.",
        "Plan: 0 to create, 0 to update, 0 to delete, 13 unchanged.",
    ]
    assert err == ""


def test_work_tree_changes_exit_2_with_text(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit_work_tree(repo)

    code, out, err = plan(capsys, ["specs", "--base", "main"])

    assert (code, err) == (2, "")
    assert out.splitlines() == CHANGED_TEXT


def test_path_defaults_to_the_current_folder(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    edit_work_tree(repo)
    monkeypatch.chdir(repo / "specs")

    code, out, _ = plan(capsys, ["--base", "main", "--format", "text"])

    assert code == 2
    assert out.splitlines() == CHANGED_TEXT


def test_json_format(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit_work_tree(repo)

    code, out, _ = plan(capsys, ["specs", "--base", "main", "--format", "json"])
    document = json.loads(out)

    assert code == 2
    assert (document["base"], document["head"], document["has_changes"]) == (
        "main",
        "work tree",
        True,
    )
    assert (document["base_commit"], document["head_commit"]) == (
        git(repo, "rev-parse", "main"),
        None,
    )
    assert document["summary"] == {"create": 1, "update": 2, "delete": 0, "unchanged": 11}
    changed = [
        (item["action"], item["object"], [f["path"] for f in item["fields"]])
        for item in document["items"]
        if item["action"] != "unchanged"
    ]
    assert changed == [
        ("create", "Credential/anthropic-prod", []),
        ("update", "Model/phi-3-5-mini", ["spec.source.revision"]),
        ("update", "Deployment/phi-chat", ["spec.workers"]),
    ]
    assert document["warnings"] == []


def test_json_without_changes_exits_0(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = plan(capsys, ["specs", "--base", "main", "--format", "json"])
    assert code == 0
    assert json.loads(out)["has_changes"] is False


def test_markdown_format(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit_work_tree(repo)

    code, out, _ = plan(capsys, ["specs", "--base", "main", "--format", "markdown"])
    lines = out.splitlines()

    assert code == 2
    assert lines[:9] == [
        "### reconciler plan",
        "",
        f"Base <code>main</code> (<code>{git(repo, 'rev-parse', 'main')[:12]}</code>) → head "
        "<code>work tree</code>",
        "",
        "**Plan: 1 to create, 2 to update, 0 to delete, 11 unchanged.**",
        "",
        "| | Object | Action | Steps | Notes |",
        "|---|---|---|---|---|",
        "| + | <code>Credential/anthropic-prod</code> | create | <code>check_secret</code> |  |",
    ]
    assert "<details><summary>11 unchanged</summary>" in lines


def test_markdown_without_changes_exits_0(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = plan(capsys, ["specs", "--base", "main", "--format", "markdown"])
    assert code == 0
    assert "No changes." in out.splitlines()


def test_head_revision_is_read_from_git_not_the_work_tree(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git(repo, "switch", "--quiet", "-c", "feature")
    edit_work_tree(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "change")
    (repo / "specs" / "models.yaml").write_text("this: [is not read")

    code, out, _ = plan(capsys, ["specs", "--base", "main", "--head", "feature"])

    assert code == 2
    assert out.splitlines()[:-1] == CHANGED_TEXT[:-1]
    assert out.splitlines()[-1] == CHANGED_TEXT[-1]


def test_deleted_files_are_deletes_in_reverse_order(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "specs" / "workflows.yaml").unlink()
    (repo / "specs" / "deployments.yaml").unlink()
    (repo / "specs" / "extra.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Project\nmetadata: {name: research}\n"
        "spec: {description: Research endpoints, permissions: "
        "[{role: admin, access: full}, {role: data-scientist, access: [execute, edit]}, "
        "{role: viewer, access: view}]}\n"
        "---\napiVersion: reconciler/v1\nkind: Credential\nmetadata: {name: hf-token}\n"
        "spec: {provider: hugging_face, secret: hf-token}\n"
    )

    code, out, _ = plan(capsys, ["specs", "--base", "main"])
    actions = [line for line in out.splitlines() if line.startswith(("+", "~", "-"))]

    assert code == 2
    assert actions == [
        "- delete Workflow/nightly-eval",
        "- delete Deployment/phi-chat",
        "- delete Deployment/gpt-mini-endpoint",
        "- delete DeploymentTemplate/chat-low-latency",
        "- delete Credential/openai-prod",
    ]


def test_invalid_head_exits_1_with_validate_lines(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    replace_in(repo / "specs" / "deployments.yaml", "model: phi-3-5-mini ", "model: phi-3-5-mni  ")

    code, out, err = plan(capsys, ["specs", "--base", "main"])

    assert (code, out) == (1, "")
    assert err.splitlines() == [
        "deployments.yaml:8:10: error: Model 'phi-3-5-mni' does not exist "
        "(did you mean 'phi-3-5-mini'?) (Deployment/phi-chat)",
        "reconciler plan: error: the specs at work tree do not validate (1 error(s)); "
        "fix them, then plan again",
    ]


def test_invalid_base_is_a_warning_and_the_plan_goes_on(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = (repo / "specs" / "models.yaml").read_text()
    (repo / "specs" / "models.yaml").write_text(good.replace("modality: embedding", "modality: 3d"))
    git(repo, "commit", "--quiet", "-am", "break minilm")
    (repo / "specs" / "models.yaml").write_text(good)

    code, out, err = plan(capsys, ["specs", "--base", "HEAD"])

    assert code == 2
    assert err.splitlines() == [
        "warning: the base revision HEAD does not validate (1 error(s)); "
        "the plan compares the objects of it that did load"
    ]
    assert "+ create Model/minilm" in out.splitlines()
    assert out.splitlines()[-1] == "Plan: 1 to create, 0 to update, 0 to delete, 12 unchanged."


def test_head_warnings_go_to_stderr_and_into_the_markdown(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    replace_in(repo / "specs" / "workflows.yaml", "endpoint: phi-chat", "endpoint: phi-chat-2")

    code, out, err = plan(capsys, ["specs", "--base", "main", "--format", "markdown"])

    warning = (
        "workflows.yaml:37:25: warning: Deployment 'phi-chat-2' (from spec.user_params) does "
        "not exist (did you mean 'phi-chat'?); it must be given at execution time "
        "(Workflow/nightly-eval)"
    )
    assert code == 2
    assert err.splitlines() == [warning]
    lines = out.splitlines()
    block = lines.index(
        "<details open><summary>~ <code>Workflow/nightly-eval</code>: update (1 field(s))</summary>"
    )
    end = lines.index("</details>", block)
    assert (
        "- warning: <code>workflows.yaml:37:25</code> Deployment 'phi-chat-2' (from "
        "spec.user_params) does not exist (did you mean 'phi-chat'?); it must be given at "
        "execution time"
    ) in lines[block:end]


def test_a_head_that_does_not_validate_still_gives_a_markdown_comment(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    replace_in(repo / "specs" / "deployments.yaml", "cluster: xeon-dev ", "cluster: xeon-dv  ")

    code, out, _ = plan(capsys, ["specs", "--base", "main", "--format", "markdown"])

    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "### reconciler plan"
    assert lines[4].startswith("**No plan: the specs at work tree do not validate (")
    assert "| File | Problem | Object |" in lines


def test_unknown_revision_exits_1(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = plan(capsys, ["specs", "--base", "no-such-branch"])

    assert (code, out) == (1, "")
    assert err.startswith("reconciler plan: error: revision 'no-such-branch' is not a commit in ")


def _commit_work_tree(repo: Path, message: str) -> str:
    git(repo, "commit", "--quiet", "-am", message)
    return git(repo, "rev-parse", "HEAD")


def test_relative_revisions_show_the_commit_they_resolved_to(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """HEAD~1 means another commit tomorrow: a PR comment must say which one it was."""
    base_sha = git(repo, "rev-parse", "HEAD")
    edit_work_tree(repo)
    git(repo, "add", "specs")
    head_sha = _commit_work_tree(repo, "edit")

    revisions = ["specs", "--base", "HEAD~1", "--head", "HEAD"]
    code, out, _ = plan(capsys, [*revisions, "--format", "json"])
    document = json.loads(out)
    assert code == 2
    assert (document["base"], document["base_commit"]) == ("HEAD~1", base_sha)
    assert (document["head"], document["head_commit"]) == ("HEAD", head_sha)

    code, out, _ = plan(capsys, [*revisions, "--format", "markdown"])
    assert code == 2
    assert out.splitlines()[2] == (
        f"Base <code>HEAD~1</code> (<code>{base_sha[:12]}</code>) → "
        f"head <code>HEAD</code> (<code>{head_sha[:12]}</code>)"
    )


def test_json_with_an_invalid_head_prints_a_json_error(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    replace_in(repo / "specs" / "deployments.yaml", "model: phi-3-5-mini ", "model: phi-3-5-mni  ")

    code, out, err = plan(capsys, ["specs", "--base", "main", "--format", "json"])

    assert code == 1
    document = json.loads(out)
    assert document["error"] == (
        "the specs at work tree do not validate (1 error(s)); fix them, then plan again"
    )
    assert document["diagnostics"] == [
        {
            "path": "deployments.yaml",
            "line": 8,
            "col": 10,
            "severity": "error",
            "message": "Model 'phi-3-5-mni' does not exist (did you mean 'phi-3-5-mini'?)",
            "kind": "Deployment",
            "name": "phi-chat",
        }
    ]
    assert "reconciler plan: error: the specs at work tree do not validate" in err


def test_json_with_an_unknown_revision_prints_a_json_error(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = plan(capsys, ["specs", "--base", "main", "--head", "nope", "--format", "json"])

    assert code == 1
    document = json.loads(out)
    assert document["error"].startswith("revision 'nope' is not a commit in ")
    assert document["diagnostics"] == []


def test_a_limit_names_its_flag_not_a_daemon_config_key(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = plan(capsys, ["specs", "--base", "main", "--max-documents", "1"])

    assert code == 1
    assert "more than 1 documents in one file (--max-documents)" in err
    assert "load." not in err


def test_a_folder_outside_git_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "loose"
    shutil.copytree(SPEC_FIXTURES, folder)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))

    code, out, err = plan(capsys, [str(folder), "--base", "main"])

    assert (code, out) == (1, "")
    assert err == (
        f"reconciler plan: error: {folder} is not inside a git work tree; plan compares git "
        "revisions, so run it in a clone of the state repo\n"
    )


def test_a_missing_folder_exits_1(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = plan(capsys, ["nowhere", "--base", "main"])
    assert code == 1
    assert "nowhere is not a folder" in err


@pytest.mark.parametrize(
    "args", [["specs"], ["specs", "--base", "main", "--format", "yaml"], ["--bogus"]]
)
def test_usage_errors_exit_1_not_2_which_means_changes(
    repo: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    edit_work_tree(repo)  # changes present: a plan that ran would exit 2
    assert main(["plan", *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("usage: reconciler plan ")
    assert "error: " in err


def test_an_unknown_flag_after_valid_ones_exits_1_with_plan_usage(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_work_tree(repo)
    assert main(["plan", "specs", "--base", "HEAD", "--bogus"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("usage: reconciler plan ")
    assert err.rstrip().endswith("reconciler plan: error: unrecognized arguments: --bogus")


def test_as_a_subprocess(repo: Path) -> None:
    edit_work_tree(repo)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}

    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "plan", "specs", "--base", "main"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )

    assert (done.returncode, done.stderr) == (2, "")
    assert done.stdout.splitlines() == CHANGED_TEXT


SCANNED = """\
apiVersion: reconciler/v1
kind: Model
name: phi-3-5-mini
phase: Ready
scan:
  result: findings
  findings:
    - {path: pytorch_model.bin, severity: high, reason: "imports os.system", scanner: picklescan}
"""


def test_the_markdown_shows_the_last_scan_from_the_status_branch(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git(repo, "checkout", "--quiet", "--orphan", "reconciler/status")
    git(repo, "rm", "-r", "--quiet", "--cached", ".")
    status = repo / "status" / "models"
    status.mkdir(parents=True)
    (status / "phi-3-5-mini.yaml").write_text(SCANNED)
    git(repo, "add", "status")
    git(repo, "commit", "--quiet", "-m", "status")
    status_commit = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "--quiet", "--force", "main")
    assert not (repo / "status").exists()
    replace_in(repo / "specs" / "models.yaml", *PHI_MODEL_REVISION)

    code, out, _ = plan(capsys, ["specs", "--base", "main", "--format", "markdown"])

    assert code == 2
    lines = out.splitlines()
    assert (
        "Last security scan of <code>Model/phi-3-5-mini</code> (reconciler/status at "
        f"{status_commit[:12]}): 1 finding(s)"
    ) in lines
    assert "- high: <code>pytorch_model.bin</code> imports os.system" in lines

    code, out, _ = plan(
        capsys, ["specs", "--base", "main", "--format", "markdown", "--status-ref", "none"]
    )
    assert code == 2 and "Last security scan" not in out
