"""One rule for exit codes, everywhere: 0 success, 1 any error, usage errors included;
``plan`` alone uses 2, for "changes present". Every command's usage error exits 1, and
no help text, README line or doc page says otherwise."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.cli.main import COMMANDS, main

PROJECT = Path(__file__).parents[2]
# the ways a text states the code of a usage error: "a usage error exits 2", "usage errors
# return 2", "exit 2 on a usage error", "2 for usage errors", "exits 1 on an error, usage
# errors included"
_CLAIM = re.compile(
    r"usage errors? (?:exits?|returns?|gives?|is) (?:with |code )?(\d)\b"
    r"|\b(\d),? (?:on|for) (?:a |any )?usage errors?"
    r"|\bexits? (\d) on (?:an|any) error, usage errors included",
    re.IGNORECASE,
)


def _claims(text: str) -> list[str]:
    return ["".join(groups) for groups in _CLAIM.findall(" ".join(text.split()))]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_unknown_flag_exits_1_with_the_commands_usage(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--no-such-flag"]) == 1
    assert capsys.readouterr().err.startswith(f"usage: reconciler {command}")


def test_no_command_or_an_unknown_one_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 1
    assert main(["valdate"]) == 1
    assert "invalid choice: 'valdate'" in capsys.readouterr().err


def test_a_missing_required_argument_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan"]) == 1  # --base is required
    assert main(["init"]) == 1  # DIR is required
    assert "required" in capsys.readouterr().err


def test_as_a_process_too() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "run", "--bogus"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_no_help_text_claims_another_code_for_a_usage_error(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # In this process: argparse prints the same help wherever it runs, and a process per
    # command cost ~0.5 s of CPU each; test_as_a_process_too covers the real start.
    assert main([command, "--help"]) == 0
    help_text = capsys.readouterr().out
    assert help_text.startswith(f"usage: reconciler {command}")
    assert set(_claims(help_text)) <= {"1"}, help_text


def test_the_top_level_help_states_the_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "0 success, 1 any error (usage errors included); plan alone uses 2" in out


@pytest.mark.parametrize(
    "page",
    [PROJECT / "README.md", *sorted((PROJECT / "docs").glob("*.md"))],
    ids=lambda p: p.name,
)
def test_no_page_claims_another_code_for_a_usage_error(page: Path) -> None:
    assert set(_claims(page.read_text())) <= {"1"}


def test_the_rule_finds_a_wrong_claim() -> None:
    assert _claims("A bad config exits 1; a usage error exits 2.") == ["2"]
    assert _claims("argparse: 0 after --help, 2 on a usage error") == ["2"]
    assert _claims("Every command exits 1 on an error, usage errors included") == ["1"]
