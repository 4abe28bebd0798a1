"""The command line imports only the module of the subcommand it runs: ``--version`` and
the top-level help import none (they took ~2 s of CPU when they imported all twelve),
``status`` imports its own and not the daemon's. The commands that only talk to the
daemon's API (status, trigger, explain) import neither the spec models (pydantic, ~0.25 s
of CPU) nor networkx (~0.3 s), and a chain or a plan imports networkx only once it draws
a graph. In a fresh interpreter each time, since the test process has imported
everything already."""

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
heavy = sorted(m for m in ("pydantic", "networkx") if m in sys.modules)
print(json.dumps({"code": code, "loaded": loaded, "daemon": daemon, "heavy": heavy}))
"""

MODULES_PROBE = """
import json, sys
for name in sys.argv[1:]:
    __import__(name)
print(json.dumps(sorted(m for m in ("pydantic", "networkx") if m in sys.modules)))
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


@pytest.mark.parametrize("command", ["status", "trigger", "explain"])
def test_an_api_client_command_imports_its_own_module_and_nothing_heavy(command: str) -> None:
    result = _probe(command, "--help")
    assert result["loaded"] == [f"reconciler.cli.{COMMANDS[command][0]}"]
    assert result["daemon"] is False
    assert result["heavy"] == []


def _heavy_after_importing(*modules: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", MODULES_PROBE, *modules], capture_output=True, text=True, check=True
    )
    found: list[str] = json.loads(done.stdout)
    return found


def test_a_chain_and_the_plan_import_networkx_only_when_they_draw_a_graph() -> None:
    modules = ("reconciler.core.chains", "reconciler.core.plan", "reconciler.engine.node_inputs")
    assert "networkx" not in _heavy_after_importing(*modules)
    assert _heavy_after_importing("reconciler.specs.registry", "networkx") == [
        "networkx",
        "pydantic",
    ]  # the probe does see them
