"""Walking a checkout for spec files: inclusion rules, order, and refusals that spare the rest."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.drivers.files import (
    RefusedFile,
    SpecDirectoryError,
    is_spec_path,
    normalize_root,
    walk_spec_files,
)


def write(top: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        target = top / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def test_walk_returns_yaml_files_in_path_order_skipping_status_and_hidden(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "z.yaml": "z",
            "models/b.yml": "b",
            "models/a.yaml": "a",
            "models/notes.txt": "no",
            "status/models/a.yaml": "status at the top is output",
            "models/status/keep.yaml": "a nested status folder is just a folder",
            ".github/ci.yaml": "hidden",
            "models/.drafts/x.yaml": "hidden",
            "models/.hidden.yaml": "hidden",
        },
    )

    walk = walk_spec_files(tmp_path)

    assert [(f.path, f.data) for f in walk.files] == [
        ("models/a.yaml", b"a"),
        ("models/b.yml", b"b"),
        ("models/status/keep.yaml", b"a nested status folder is just a folder"),
        ("z.yaml", b"z"),
    ]
    assert walk.refused == ()


def test_roots_limit_the_walk_and_a_missing_root_is_reported(tmp_path: Path) -> None:
    write(tmp_path, {"models/a.yaml": "a", "clusters/c.yaml": "c"})

    walk = walk_spec_files(tmp_path, roots=("models", "./models/", "absent"))

    assert [f.path for f in walk.files] == ["models/a.yaml"]
    assert walk.refused == (RefusedFile("absent", "spec root does not exist or is not a folder"),)


def test_files_above_the_limit_are_refused_and_the_others_still_read(tmp_path: Path) -> None:
    write(tmp_path, {"big.yaml": "x" * 101, "small.yaml": "y" * 100})

    walk = walk_spec_files(tmp_path, max_size=100)

    assert [f.path for f in walk.files] == ["small.yaml"]
    [refused] = walk.refused
    assert refused.path == "big.yaml"
    assert "101 bytes exceeds the limit of 100 bytes" in refused.reason


def test_symbolic_links_are_refused_not_followed(tmp_path: Path) -> None:
    write(tmp_path, {"real.yaml": "r"})
    (tmp_path / "link.yaml").symlink_to(tmp_path / "real.yaml")
    (tmp_path / "linked-dir").symlink_to(tmp_path)

    walk = walk_spec_files(tmp_path)

    assert [f.path for f in walk.files] == ["real.yaml"]
    assert [r.path for r in walk.refused] == ["link.yaml"]
    assert "symbolic link" in walk.refused[0].reason


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of permissions")
def test_an_unreadable_file_is_refused_with_the_reason(tmp_path: Path) -> None:
    write(tmp_path, {"locked.yaml": "x", "ok.yaml": "y"})
    (tmp_path / "locked.yaml").chmod(0)

    walk = walk_spec_files(tmp_path)

    assert [f.path for f in walk.files] == ["ok.yaml"]
    assert walk.refused[0].path == "locked.yaml"


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")

    walk = walk_spec_files(tmp_path)

    assert walk.refused == (RefusedFile("pipe.yaml", "is not a regular file"),)


def test_walking_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SpecDirectoryError, match="is not a directory"):
        walk_spec_files(tmp_path / "absent")


@pytest.mark.parametrize(
    ("path", "roots", "expected"),
    [
        ("a.yaml", (".",), True),
        ("a.YAML", (".",), False),
        ("status/a.yaml", (".",), False),
        ("status.yaml", (".",), True),
        ("x/.y/a.yaml", (".",), False),
        ("specs/a.yml", ("specs",), True),
        ("specsextra/a.yml", ("specs",), False),
        (".specs/a.yaml", (".specs",), True),
    ],
)
def test_spec_path_rule(path: str, roots: tuple[str, ...], expected: bool) -> None:
    assert is_spec_path(path, roots=roots) is expected


@pytest.mark.parametrize("root", ["/etc", "../up", "a/../../b"])
def test_roots_must_stay_inside_the_repo(root: str) -> None:
    with pytest.raises(ValueError, match="spec root"):
        normalize_root(root)
