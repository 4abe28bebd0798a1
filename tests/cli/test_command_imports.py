"""The command line imports only the module of the subcommand it runs: ``--version`` and
the top-level help import none (they took ~2 s of CPU when they imported all twelve),
``status`` imports its own and not the daemon's. In a fresh interpreter each time, since
the test process has imported everything already."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from reconciler.cli.main import COMMANDS

PROBE = """
import json, sys
from reconciler.cli.main import main
code = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m.startswith("reconciler.cli.") and m.endswith("_cmd"))
daemon = "reconciler.daemon.service" in sys.modules
print(json.dumps({"code": code, "loaded": loaded, "daemon": daemon}))
"""


def _probe(*argv: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize("argv", [["--version"], ["--help"], [], ["no-such-command"]])
def test_the_top_level_imports_no_subcommand(argv: list[str]) -> None:
    result = _probe(*argv)
    assert result["loaded"] == []
    assert result["daemon"] is False
    assert result["code"] == (0 if argv in (["--version"], ["--help"]) else 1)


def test_a_subcommand_imports_its_own_module_only() -> None:
    result = _probe("status", "--help")
    assert result["loaded"] == [f"reconciler.cli.{COMMANDS['status'][0]}"]
    assert result["daemon"] is False
