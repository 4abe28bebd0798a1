"""Fail when pyproject.toml's requirements and the committed locks disagree.

The locks (requirements/*.lock, made by scripts/lock.sh) are what a fresh machine
installs, so a requirement added, removed or re-ranged in pyproject.toml without a
refreshed lock would make CI and a newcomer's machine differ. Checked here:
- every requirement of pyproject.toml (build-system, runtime and the test extra for the
  test lock) is pinned in the lock at a version its range allows;
- the lock names no direct requirement that pyproject.toml no longer has;
- every pin is exact (==) and carries hashes;
- a package pinned in both locks has the same version in both.
Usage: python scripts/check_lock.py [ROOT]   (exit 1 with one line per problem)
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")
VIA_PROJECT = re.compile(r"#\s+(?:via\s+)?reconciler \(pyproject\.toml")


@dataclass(frozen=True)
class Pin:
    version: str
    hashed: bool
    direct: bool
    line: int


def read_lock(path: Path) -> tuple[dict[str, Pin], list[str]]:
    """The pins of one lock by canonical name, and the problems found reading it."""
    pins: dict[str, Pin] = {}
    problems: list[str] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    current: str | None = None
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#") and not raw.startswith((" ", "\t")):
            current = None
            continue
        if not raw.startswith((" ", "\t")):
            match = PIN.match(line)
            if match is None:
                problems.append(f"{path}:{number}: not an exact pin: {line}")
                current = None
                continue
            current = canonicalize_name(match.group(1))
            pins[current] = Pin(match.group(2), "--hash=" in line, False, number)
            continue
        if current is None:
            continue
        pin = pins[current]
        if line.startswith("--hash="):
            pins[current] = Pin(pin.version, True, pin.direct, pin.line)
        elif VIA_PROJECT.search(line):
            pins[current] = Pin(pin.version, pin.hashed, True, pin.line)
    for name, pin in pins.items():
        if not pin.hashed:
            problems.append(f"{path}:{pin.line}: {name}=={pin.version} has no --hash")
    return pins, problems


def check_lock(path: Path, wanted: list[Requirement]) -> list[str]:
    pins, problems = read_lock(path)
    names = {canonicalize_name(req.name) for req in wanted}
    for req in wanted:
        name = canonicalize_name(req.name)
        pin = pins.get(name)
        if pin is None:
            problems.append(f"{path}: {req} is required by pyproject.toml but not locked")
        elif not req.specifier.contains(Version(pin.version), prereleases=True):
            problems.append(
                f"{path}:{pin.line}: {name}=={pin.version} is outside pyproject.toml's {req}"
            )
    for name, pin in pins.items():
        if pin.direct and name not in names:
            problems.append(
                f"{path}:{pin.line}: {name} is locked as a requirement of the project, "
                "but pyproject.toml no longer requires it"
            )
    return problems


def check(root: Path) -> list[str]:
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    build = [Requirement(text) for text in project["build-system"]["requires"]]
    runtime = [Requirement(text) for text in project["project"]["dependencies"]]
    test = [Requirement(text) for text in project["project"]["optional-dependencies"]["test"]]
    runtime_lock = root / "requirements" / "runtime.lock"
    test_lock = root / "requirements" / "test.lock"
    problems: list[str] = []
    for lock in (runtime_lock, test_lock):
        if not lock.is_file():
            problems.append(f"{lock} is missing: run scripts/lock.sh")
    if problems:
        return problems
    problems += check_lock(runtime_lock, build + runtime)
    problems += check_lock(test_lock, build + runtime + test)
    runtime_pins, _ = read_lock(runtime_lock)
    test_pins, _ = read_lock(test_lock)
    for name, pin in sorted(runtime_pins.items()):
        other = test_pins.get(name)
        if other is not None and other.version != pin.version:
            problems.append(
                f"{name} is {pin.version} in {runtime_lock.name} but {other.version} in "
                f"{test_lock.name}: run scripts/lock.sh"
            )
    return problems


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1]
    problems = check(root)
    for problem in problems:
        print(f"lock check: {problem}", file=sys.stderr)
    if problems:
        print("lock check: refresh the locks with scripts/lock.sh", file=sys.stderr)
        return 1
    print("lock check: requirements/*.lock agree with pyproject.toml")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
