"""scripts/check_lock.py fails when pyproject.toml and the locks disagree.

Runs the real script on the real files, then on copies with one disagreement each: a
requirement missing from a lock, a pin outside its range, a direct requirement that
pyproject.toml dropped, a pin without hashes, the two locks pinning different versions.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
SCRIPT = REPO / "scripts" / "check_lock.py"


def _check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(root)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(REPO / "requirements", tmp_path / "requirements")
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_the_committed_locks_agree() -> None:
    done = _check(REPO)
    assert done.returncode == 0, done.stderr


def test_a_new_requirement_without_a_refreshed_lock_fails(copy: Path) -> None:
    _edit(copy / "pyproject.toml", '"aiohttp>=3.9",', '"aiohttp>=3.9",\n    "zstandard>=0.22",')
    done = _check(copy)
    assert done.returncode == 1
    assert "zstandard>=0.22 is required by pyproject.toml but not locked" in done.stderr


def test_a_range_the_pin_falls_outside_of_fails(copy: Path) -> None:
    _edit(copy / "pyproject.toml", '"aiohttp>=3.9",', '"aiohttp>=99",')
    done = _check(copy)
    assert done.returncode == 1
    assert "is outside pyproject.toml's aiohttp>=99" in done.stderr


def test_a_dropped_requirement_still_locked_as_direct_fails(copy: Path) -> None:
    _edit(copy / "pyproject.toml", '    "croniter>=6",\n', "")
    done = _check(copy)
    assert done.returncode == 1
    assert "croniter is locked as a requirement of the project" in done.stderr


def test_a_pin_without_hashes_fails(copy: Path) -> None:
    lock = copy / "requirements" / "runtime.lock"
    lines = lock.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("networkx=="))
    kept = [lines[start].rstrip(" \\")]
    rest = [line for line in lines[start + 1 :]]
    while rest and rest[0].lstrip().startswith("--hash="):
        rest.pop(0)
    lock.write_text("\n".join([*lines[:start], *kept, *rest]) + "\n")
    done = _check(copy)
    assert done.returncode == 1
    assert "networkx==" in done.stderr and "has no --hash" in done.stderr


def test_the_two_locks_pinning_different_versions_fails(copy: Path) -> None:
    lock = copy / "requirements" / "test.lock"
    line = next(x for x in lock.read_text().splitlines() if x.startswith("networkx=="))
    version = line.split("==")[1].split()[0]
    _edit(lock, f"networkx=={version}", "networkx==0.0.1")
    done = _check(copy)
    assert done.returncode == 1
    assert "networkx is" in done.stderr and "run scripts/lock.sh" in done.stderr
