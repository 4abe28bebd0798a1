"""Hostile files are refused quickly and in bounded memory, by both parsers.

Each file is loaded in a child process with a timeout and an address-space cap, and the
child reports its own peak RSS (VmHWM): a regression (a crash in libyaml's recursive composer, an
exponential alias expansion) fails the test instead of hanging or killing the run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.load.nodes import available_parsers

REPO = Path(__file__).parents[2]
LAUGHS = REPO / "tests" / "validate" / "fixtures" / "billion_laughs" / "lol.yaml"
TIMEOUT_S = 30
MAX_RSS_MB = 300

CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))
from reconciler.load.documents import SourceFile, load_file
from reconciler.load.limits import LoadLimits
path, parser, max_bytes = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open(path, "rb").read()
result = load_file(SourceFile("hostile.yaml", data), parser=parser,
                   limits=LoadLimits(max_file_bytes=max_bytes))
print(json.dumps({
    "documents": len(result.documents),
    "diagnostics": [d.format() for d in result.diagnostics],
    # VmHWM is this process's own peak: ru_maxrss would also count the parent's memory,
    # which Linux carries over into a child at exec (a large pytest process fails this).
    "rss_mb": next(
        int(line.split()[1]) for line in open("/proc/self/status")
        if line.startswith("VmHWM:")
    ) / 1024,
}))
"""


def _load_in_child(path: Path, parser: str, *, max_bytes: int = 1024 * 1024) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), parser, str(max_bytes)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, f"child died ({done.returncode}): {done.stderr[-2000:]}"
    report: dict[str, object] = json.loads(done.stdout)
    assert float(report["rss_mb"]) < MAX_RSS_MB  # type: ignore[arg-type]
    return report


PARSERS = available_parsers()


@pytest.mark.parametrize("parser", PARSERS)
def test_billion_laughs_is_refused(parser: str) -> None:
    report = _load_in_child(LAUGHS, parser)
    assert report["diagnostics"] == [
        "hostile.yaml:10:8: error: alias expansion exceeds 10000 nodes (billion-laughs guard)"
    ]


@pytest.mark.parametrize("parser", PARSERS)
def test_half_a_million_open_brackets_are_refused(parser: str, tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_bytes(b"[" * 500_000 + b"]" * 500_000)
    report = _load_in_child(path, parser, max_bytes=2_000_000)
    assert report["diagnostics"] == [
        "hostile.yaml:1:64: error: nesting deeper than 64 levels (load.max_depth)"
    ]


@pytest.mark.parametrize("parser", PARSERS)
def test_deep_block_sequence_is_refused(parser: str, tmp_path: Path) -> None:
    path = tmp_path / "dashes.yaml"
    path.write_bytes(b"- " * 400_000 + b"x\n")
    report = _load_in_child(path, parser)
    assert report["diagnostics"] == [
        "hostile.yaml:1:127: error: nesting deeper than 64 levels (load.max_depth)"
    ]


@pytest.mark.parametrize("parser", PARSERS)
def test_deep_block_mapping_is_refused(parser: str, tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text("".join(" " * i + "k:\n" for i in range(1000)))
    report = _load_in_child(path, parser)
    assert report["diagnostics"] == [
        "hostile.yaml:64:64: error: nesting deeper than 64 levels (load.max_depth)"
    ]


@pytest.mark.parametrize("parser", PARSERS)
def test_aliases_cannot_nest_past_the_depth_limit(parser: str, tmp_path: Path) -> None:
    lines = [f"a0: &a0 {'[' * 50}x{']' * 50}"]
    lines += [f"a{k}: &a{k} {'[' * 50}*a{k - 1}{']' * 50}" for k in range(1, 40)]
    path = tmp_path / "alias-depth.yaml"
    path.write_text("\n".join(lines) + "\n")
    report = _load_in_child(path, parser)
    assert report["diagnostics"] == [
        "hostile.yaml:2:58: error: alias nests values deeper than 64 levels (load.max_depth)"
    ]
