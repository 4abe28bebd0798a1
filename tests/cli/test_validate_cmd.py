"""``reconciler validate [PATH]``: output lines, JSON records, exit codes, host checks."""

# ruff: noqa: E501  (expected output lines are kept whole, as validate prints them)

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.cli.main import main

REPO = Path(__file__).parents[2]
EXAMPLES = REPO / "examples"
FIXTURES = REPO / "tests" / "validate" / "fixtures"

REFERENCE_ERRORS = [
    "deployments.yaml:6:12: error: Project 'reserch' does not exist (did you mean 'research'?); add the Project, or set projects.create_missing in the daemon config (Deployment/typos)",
    "deployments.yaml:7:10: error: Model 'phi-3-5-mni' does not exist (did you mean 'phi-3-5-mini'?) (Deployment/typos)",
    "deployments.yaml:8:12: error: Cluster 'xeon-dv' does not exist (did you mean 'xeon-dev'?) (Deployment/typos)",
    "deployments.yaml:9:13: error: DeploymentTemplate 'chat-low-latncy' does not exist (did you mean 'chat-low-latency'?) (Deployment/typos)",
    "deployments.yaml:10:15: error: Credential 'hf-tokens' does not exist (did you mean 'hf-token'?) (Deployment/typos)",
    "deployments.yaml:19:10: error: Model 'phi-3-5-mini' is self-hosted (hugging_face): the Deployment needs a cluster (Deployment/no-cluster)",
    "deployments.yaml:29:10: error: Model 'zzzz' does not exist (Deployment/nothing-close)",
    "targets.yaml:33:17: error: Credential 'hf-tokn' does not exist (did you mean 'hf-token'?) (Model/phi-3-5-mini)",
]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["validate", *args])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def test_the_examples_are_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, str(EXAMPLES))
    assert (code, out) == (0, [])
    assert "0 error(s), 0 warning(s) in 4 file(s), 13 object(s)" in err


def test_one_line_per_problem_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, str(FIXTURES / "references"))
    assert code == 1
    assert out == REFERENCE_ERRORS
    assert "8 error(s), 0 warning(s) in 2 file(s)" in err


def test_paths_are_relative_to_path_whatever_the_working_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(FIXTURES / "references", tmp_path / "repo" / "specs" / "ml")
    monkeypatch.chdir(tmp_path)
    code, out, _ = _run(capsys, "repo")
    assert code == 1
    assert out == [f"specs/ml/{line}" for line in REFERENCE_ERRORS]


def test_status_and_hidden_folders_are_not_specs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    shutil.copytree(EXAMPLES, tmp_path, dirs_exist_ok=True)
    for folder in ("status", ".github"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "junk.yaml").write_text("not: [a, spec\n")
    code, out, _ = _run(capsys, str(tmp_path))
    assert (code, out) == (0, [])


def test_a_single_file_outside_any_repo(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(FIXTURES / "duplicate_key" / "credential.yaml", tmp_path / "credential.yaml")
    monkeypatch.chdir(tmp_path)
    code, out, _ = _run(capsys, "credential.yaml")
    assert (code, out) == (1, ["credential.yaml:8:3: error: duplicate key 'provider'"])


def _repo(top: Path, marker: str) -> Path:
    """The examples as a repo: a folder per kind, marked by ``.git`` or ``.reconciler/``."""
    for source in EXAMPLES.glob("*.yaml"):
        (top / source.stem).mkdir(parents=True)
        shutil.copy(source, top / source.stem / source.name)
    (top / marker).mkdir()
    return top


@pytest.mark.parametrize("marker", [".git", ".reconciler"])
def test_a_file_inside_a_repo_resolves_references_against_the_repo(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    marker: str,
) -> None:
    top = _repo(tmp_path / "specs", marker)
    monkeypatch.chdir(top / "deployments")
    code, out, err = _run(capsys, "deployments.yaml")
    assert (code, out) == (0, [])
    assert f"in 1 file(s), 6 object(s) (references checked against 4 file(s) of {top})" in err


def test_only_the_given_files_problems_are_shown_under_the_path_as_given(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    top = _repo(tmp_path / "specs", ".git")
    models = top / "models" / "models.yaml"
    models.write_text(models.read_text().replace("credential: hf-token", "credential: hf-tokn"))
    deployments = top / "deployments" / "deployments.yaml"
    text = deployments.read_text()
    deployments.write_text(text.replace("cluster: xeon-dev", "cluster: xeon-dv", 1))
    monkeypatch.chdir(top)
    code, out, err = _run(capsys, "deployments/deployments.yaml")
    assert code == 1
    assert len(out) == 1 and out[0].startswith("deployments/deployments.yaml:"), out
    assert "Cluster 'xeon-dv' does not exist (did you mean 'xeon-dev'?)" in out[0]
    assert "1 error(s), 0 warning(s) in 1 file(s)" in err
    # as a pre-commit hook passes them: several files, each reported under its own path
    code, out, _ = _run(capsys, "deployments/deployments.yaml", str(models))
    assert code == 1
    assert sorted(line.split(":", 1)[0] for line in out) == sorted(
        ["deployments/deployments.yaml", str(models)]
    )


def test_files_and_a_folder_together_are_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _run(capsys, str(EXAMPLES), str(EXAMPLES / "models.yaml"))
    assert (code, out) == (1, [])
    assert "give one folder, or spec files, not both" in err


def test_json_gives_the_same_records(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--format", "json", str(FIXTURES / "references"))
    assert code == 1
    records = json.loads("\n".join(out))
    assert sum(r["severity"] == "error" for r in records) == 8
    assert [
        f"{r['path']}:{r['line']}:{r['col']}: {r['severity']}: {r['message']} ({r['kind']}/{r['name']})"
        for r in records
    ] == REFERENCE_ERRORS
    assert records[1] == {
        "path": "deployments.yaml",
        "line": 7,
        "col": 10,
        "severity": "error",
        "message": "Model 'phi-3-5-mni' does not exist (did you mean 'phi-3-5-mini'?)",
        "kind": "Deployment",
        "name": "typos",
    }


def test_json_for_a_valid_repo(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "--format", "json", str(EXAMPLES))
    assert code == 0
    assert json.loads("\n".join(out)) == []
    assert err.splitlines()[-1] == "0 error(s), 0 warning(s) in 4 file(s), 13 object(s)"


def test_warnings_alone_exit_0_and_secrets_are_looked_up_on_the_host(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "present-secret").write_text("value-never-printed")
    code, out, _ = _run(
        capsys, "--host-checks", "--secrets-dir", str(secrets), str(FIXTURES / "host_checks")
    )
    assert code == 0
    assert out == [
        "specs.yaml:9:40: warning: secret 'missing-secret' is not on this host (looked in $CREDENTIALS_DIRECTORY, the secrets directory and RECONCILER_SECRET_*); the daemon will report SecretNotFound (Credential/hf-token)",
        "specs.yaml:16:38: warning: model path /nonexistent/reconciler/models/minilm does not exist on this host (Model/on-disk)",
    ]
    monkeypatch.setenv("RECONCILER_SECRET_MISSING_SECRET", "from-the-environment")
    code, out, _ = _run(
        capsys, "--host-checks", "--secrets-dir", str(secrets), str(FIXTURES / "host_checks")
    )
    assert code == 0
    assert len(out) == 1 and "model path" in out[0]


def test_inline_secrets_are_errors_and_never_printed(capsys: pytest.CaptureFixture[str]) -> None:
    for fmt in ("text", "json"):
        code, out, err = _run(capsys, "--format", fmt, str(FIXTURES / "inline_secrets"))
        assert code == 1
        text = "\n".join(out) + err
        assert "inline secret value" in text
        for leaked in ("FAKEFAKE", "horse", "Hunter2", "plain-text-value"):
            assert leaked not in text


def test_the_file_size_limit_is_an_option(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    shutil.copytree(EXAMPLES, tmp_path, dirs_exist_ok=True)
    code, out, _ = _run(capsys, "--max-file-bytes", "1500", str(tmp_path))
    assert code == 1
    assert [line.split(":")[0] for line in out] == [
        "deployments.yaml",
        "models.yaml",
        "workflows.yaml",
    ]
    assert out[0].startswith(
        "deployments.yaml:1:1: error: file is too large (2404 bytes exceeds the limit of 1500 bytes)"
    )


def test_both_parsers_print_the_same(capsys: pytest.CaptureFixture[str]) -> None:
    outputs = [
        _run(capsys, "--parser", parser, str(FIXTURES / "workflow_graph"))[:2]
        for parser in ("libyaml", "ruamel")
    ]
    assert outputs[0] == outputs[1]
    assert outputs[0][0] == 1


@pytest.mark.parametrize(
    "args",
    [
        ["/nonexistent/specs"],
        ["--format", "xml", "."],
        ["--max-file-bytes", "0", "."],
        ["--max-documents", "-1", "."],
        ["--max-depth", "0", "."],
        ["--no-such-flag"],
        [".", "extra-argument"],
    ],
)
def test_usage_errors_exit_1_like_any_error(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    """1, never argparse's 2: ``plan`` gives 2 for "changes present", and CI must be able
    to tell a mistyped command from a plan with changes."""
    code = main(["validate", *args])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith(("usage: reconciler validate ", "reconciler validate: error: "))


def test_python_dash_m_reconciler_validate() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", str(FIXTURES / "duplicate_across_files")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "b-second.yaml:13:9: error: duplicate Credential/openai-prod: already defined at a-first.yaml:4:9 (Credential/openai-prod)"
    ]
    assert "Traceback" not in done.stderr


def test_a_folder_without_spec_files_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A mistyped path in CI must not pass as "0 file(s), valid"."""
    (tmp_path / "README.md").write_text("no specs here\n")
    code, out, err = _run(capsys, str(tmp_path))
    assert (code, out) == (1, [])
    assert err.startswith(f"reconciler validate: error: no spec files in {tmp_path} ")
    assert "--allow-empty" in err


def test_allow_empty_accepts_a_folder_without_spec_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = _run(capsys, "--allow-empty", str(tmp_path))
    assert (code, out) == (0, [])
    assert "0 error(s), 0 warning(s) in 0 file(s), 0 object(s)" in err


def test_a_limit_names_the_flag_that_raises_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "deep.yaml").write_text("a: [[[[1]]]]\n")
    code, out, _ = _run(capsys, "--max-depth", "3", str(tmp_path))
    assert code == 1
    assert out == ["deep.yaml:1:5: error: nesting deeper than 3 levels (--max-depth)"]


def test_a_file_over_the_size_limit_names_the_flag(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    shutil.copy(EXAMPLES / "models.yaml", tmp_path / "models.yaml")
    code, out, _ = _run(capsys, "--max-file-bytes", "100", str(tmp_path))
    assert code == 1
    assert len(out) == 1 and out[0].endswith("(--max-file-bytes)"), out


def test_help_is_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: reconciler validate ")
    assert "reconciler validate [PATH...]: every problem of a spec repo" in out
    assert "``" not in out


def test_an_unknown_flag_prints_the_subcommand_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--bogus"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("usage: reconciler validate [-h]")
    assert err.rstrip().endswith("reconciler validate: error: unrecognized arguments: --bogus")
