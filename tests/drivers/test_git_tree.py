"""StatusTree writes the same tree objects git's plumbing writes for the same batches.

Each batch is applied both ways to a real repository: in-process (``StatusTree`` over the
publisher's loose-object writer) and through ``git update-index`` / ``git write-tree`` on
an index of its own. The tree shas must agree after every batch, the commit must read
back through ``git cat-file`` as written, and ``git fsck`` must find the store sound.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from reconciler.drivers.git_source import open_or_init_bare
from reconciler.drivers.git_status import _store_object
from reconciler.drivers.git_tree import StatusTree, commit_bytes


def _git(repo: Path, *args: str, stdin: bytes | None = None, index: Path | None = None) -> bytes:
    env = {"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo), "PATH": "/usr/bin:/bin"}
    if index is not None:
        env["GIT_INDEX_FILE"] = str(index)
    done = subprocess.run(
        ["git", *args], cwd=repo, input=stdin, capture_output=True, check=True, env=env
    )
    return done.stdout


def _by_git(repo: Path, index: Path, batch: dict[str, str | None]) -> str:
    lines = "".join(
        f"100644 {sha}\t{path}\n" if sha else f"0 {'0' * 40}\t{path}\n"
        for path, sha in batch.items()
    )
    _git(repo, "update-index", "--index-info", stdin=lines.encode(), index=index)
    return _git(repo, "write-tree", index=index).decode().strip()


def test_batches_give_the_trees_git_gives(tmp_path: Path) -> None:
    repo = open_or_init_bare(tmp_path / "store", create=True)
    assert repo is not None
    where = Path(repo.git_dir)
    tree = StatusTree(lambda kind, data: _store_object(repo, kind, data))
    index = tmp_path / "index"
    rng = random.Random(7)
    paths = [
        f"{kind}/{name}.yaml"
        for kind in ("models", "deployments", "workflows", "a-b", "a.b", "a")
        for name in ("x", "y-1", "y.1", "z", "é")
    ] + ["source.yaml", "deep/er/still/file.yaml", "a0"]
    present: set[str] = set()
    for round_ in range(40):
        batch: dict[str, str | None] = {}
        for path in rng.sample(paths, rng.randint(1, 8)):
            if path in present and rng.random() < 0.4:
                batch[path] = None
                present.discard(path)
            else:
                content = f"round {round_} {path}\n".encode()
                batch[path] = _store_object(repo, "blob", content)
                present.add(path)
        built = tree.build(batch)
        assert built.tree == _by_git(where, index, batch), f"round {round_}: {batch}"
        listed = _git(where, "ls-tree", "-r", "--name-only", "-z", built.tree).split(b"\0")
        assert {p.decode() for p in listed if p} == present

    # Read back from git's own listing, a second holder continues identically.
    listing = _git(where, "ls-tree", "-r", "-t", "-z", "--full-tree", built.tree)
    again = StatusTree(lambda kind, data: _store_object(repo, kind, data))
    again.read(built.tree, listing)
    more = {"models/x.yaml": _store_object(repo, "blob", b"last\n"), "a/z.yaml": None}
    assert again.build(more).tree == _by_git(where, index, more)

    content = commit_bytes(built.tree, [], "Update status\n\nadded a\n", name="r", email="r@x")
    commit = _store_object(repo, "commit", content)
    assert _git(where, "cat-file", "commit", commit) == content
    assert _git(where, "log", "--format=%an <%ae>|%s", commit).decode() == "r <r@x>|Update status\n"
    _git(where, "fsck", "--strict", "--no-dangling")


def test_unchanged_paths_and_missing_deletes_are_no_change(tmp_path: Path) -> None:
    repo = open_or_init_bare(tmp_path / "store", create=True)
    assert repo is not None
    tree = StatusTree(lambda kind, data: _store_object(repo, kind, data))
    blob = _store_object(repo, "blob", b"a\n")
    first = tree.build({"x/a.yaml": blob})
    assert first.changes == (("A", "x/a.yaml"),)
    same = tree.build({"x/a.yaml": blob, "y/gone.yaml": None})
    assert (same.tree, same.changes) == (first.tree, ())
    emptied = tree.build({"x/a.yaml": None})
    assert emptied.changes == (("D", "x/a.yaml"),)
    assert emptied.tree == _by_git(Path(repo.git_dir), tmp_path / "i", {})


def test_a_batch_that_fails_midway_is_not_held(tmp_path: Path) -> None:
    """An object that cannot be written leaves no half-applied tree behind: the next
    batch starts from a tree read from Git again."""
    repo = open_or_init_bare(tmp_path / "store", create=True)
    assert repo is not None
    failing = {"now": False}

    def store(kind: str, data: bytes) -> str:
        if failing["now"] and kind == "tree":
            raise OSError("disk full")
        return _store_object(repo, kind, data)

    tree = StatusTree(store)
    first = tree.build({"a/x.yaml": _store_object(repo, "blob", b"x\n")})
    failing["now"] = True
    with pytest.raises(OSError, match="disk full"):
        tree.build({"a/y.yaml": _store_object(repo, "blob", b"y\n")})
    assert tree.held is None
    failing["now"] = False
    where = Path(repo.git_dir)
    tree.read(first.tree, _git(where, "ls-tree", "-r", "-t", "-z", "--full-tree", first.tree))
    after = tree.build({"b/z.yaml": _store_object(repo, "blob", b"z\n")})
    names = _git(where, "ls-tree", "-r", "--name-only", "-z", after.tree).split(b"\0")
    assert sorted(n.decode() for n in names if n) == ["a/x.yaml", "b/z.yaml"]
