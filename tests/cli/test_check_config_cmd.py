"""``reconciler check-config FILE``: the daemon's own config loader, without starting it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.cli.main import main

REPO = Path(__file__).parents[2]
EXAMPLE_CONFIG = REPO / "systemd" / "reconciler.yaml"

GOOD = """\
repo:
  url: /srv/state-repo
  branch: main
state_dir: /var/lib/reconciler
"""

BAD = """\
repo:
  url: /srv/state-repo
  poll_intervl: 30s
resync_interval: 5 minutes
"""


def test_a_valid_config_exits_0(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "reconciler.yaml"
    config.write_text(GOOD)
    assert main(["check-config", str(config)]) == 0
    out = capsys.readouterr().out
    assert out == (
        f"{config}: valid (branch main, state_dir /var/lib/reconciler, no HTTP API: add an "
        "api: section to serve one)\n"
    )


def test_the_api_is_reported_on_only_when_the_config_serves_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "reconciler.yaml"
    config.write_text(GOOD + "api: {}\n")
    assert main(["check-config", str(config)]) == 0
    assert capsys.readouterr().out == (
        f"{config}: valid (branch main, state_dir /var/lib/reconciler, API on 127.0.0.1:8080)\n"
    )


def test_every_problem_names_file_line_and_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "reconciler.yaml"
    config.write_text(BAD)
    assert main(["check-config", str(config)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"{config}:3:3: repo.poll_intervl: unknown field 'poll_intervl' "
        "(known fields: url, branch, paths, poll_interval)",
        f"{config}:4:18: resync_interval: invalid duration '5 minutes': use a number and a "
        "unit (ms, s, m, h, d), e.g. '30s'",
        f"reconciler check-config: {config}: 2 problem(s); the daemon would refuse to start",
    ]


def test_a_missing_file_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["check-config", str(tmp_path / "nope.yaml")]) == 1
    assert "cannot read the config file" in capsys.readouterr().err


def test_the_file_defaults_to_reconciler_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "from-env.yaml"
    config.write_text(GOOD)
    monkeypatch.setenv("RECONCILER_CONFIG", str(config))
    assert main(["check-config"]) == 0
    assert capsys.readouterr().out.startswith(f"{config}: valid")


def test_the_shipped_example_config_is_valid() -> None:
    """systemd/reconciler.yaml, checked the way its comment tells users to, as a process
    (it must not start a daemon: the call returns on its own)."""
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "check-config", str(EXAMPLE_CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stdout
