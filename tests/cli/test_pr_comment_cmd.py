"""``reconciler pr-comment``: what it says when it cannot post, and the size limit."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from reconciler.cli import pr_comment_cmd
from reconciler.cli.main import main
from tests.cli.forge_double import running_forge

TOKEN = "ghs-test-token-77aa"


def _args(file: Path, provider: str = "auto") -> argparse.Namespace:
    return argparse.Namespace(file=file, provider=provider, marker=None)


def _github(url: str, **extra: str) -> dict[str, str]:
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_API_URL": url,
        "GITHUB_REPOSITORY": "acme/specs",
        "GITHUB_REF": "refs/pull/9/merge",
        "GITHUB_TOKEN": TOKEN,
        **extra,
    }


def test_a_refusal_says_what_the_token_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.md"
    plan.write_text("### reconciler plan\n")
    with running_forge(TOKEN) as forge:
        forge.deny = True
        assert pr_comment_cmd.run(_args(plan), environ=_github(forge.url)) == 1
    err = capsys.readouterr().err
    assert "403" in err and "pull-requests: write" in err and TOKEN not in err


def test_a_long_plan_is_cut_to_what_github_takes(tmp_path: Path) -> None:
    plan = tmp_path / "plan.md"
    plan.write_text("### reconciler plan\n" + "| row |\n" * 20_000)
    with running_forge(TOKEN) as forge:
        assert pr_comment_cmd.run(_args(plan), environ=_github(forge.url)) == 0
        (comment,) = forge.thread("acme/specs#9")
    assert len(comment["body"]) <= pr_comment_cmd.GITHUB_BODY_LIMIT
    assert comment["body"].endswith("the whole plan is in the CI job's log)\n")


def test_markers_keep_two_plans_apart(tmp_path: Path) -> None:
    plan = tmp_path / "plan.md"
    plan.write_text("### reconciler plan\n")
    with running_forge(TOKEN) as forge:
        for marker in ("east", "west", "east"):
            args = argparse.Namespace(file=plan, provider="github", marker=marker)
            assert pr_comment_cmd.run(args, environ=_github(forge.url)) == 0
        bodies = [c["body"].splitlines()[0] for c in forge.thread("acme/specs#9")]
    assert bodies == ["<!-- reconciler-plan:east -->", "<!-- reconciler-plan:west -->"]


def test_outside_ci_it_asks_for_a_provider(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("GITHUB_ACTIONS", "GITLAB_CI"):
        monkeypatch.delenv(name, raising=False)
    plan = tmp_path / "plan.md"
    plan.write_text("x")
    assert main(["pr-comment", str(plan)]) == 1
    assert "not in GitHub Actions or GitLab CI" in capsys.readouterr().err


def test_a_push_build_has_no_pull_request_to_comment_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.md"
    plan.write_text("x")
    env = _github("http://127.0.0.1:9", GITHUB_REF="refs/heads/main")
    assert pr_comment_cmd.run(_args(plan), environ=env) == 1
    assert "no pull request number" in capsys.readouterr().err
