"""Git trees and commits built in-process for the status publisher.

A status commit changes a handful of files of a tree that holds one file per object
(10,000 in a large repo). git's plumbing for it (update-index, write-tree, commit-tree)
costs a process each, tens of milliseconds of every push-to-status. :class:`StatusTree`
keeps the tree it built last in memory, applies a batch to it, and writes only the tree
objects on the paths that changed, then the commit, through the caller's object writer
(loose objects, the same bytes git writes). The first batch, or one built on a tree
someone else wrote, reads that tree once with ``git ls-tree``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

StoreObject = Callable[[str, bytes], str]
"""Writes an object (kind, content) into the repository; returns its sha."""

TREE_MODE = "40000"
FILE_MODE = "100644"
_WORDS = {"A": "added", "M": "updated", "D": "deleted"}


@dataclass
class _Dir:
    files: dict[str, tuple[str, str]] = field(default_factory=dict)
    """name -> (mode, sha) of each entry that is not a tree (blobs, links, submodules)."""
    dirs: dict[str, _Dir] = field(default_factory=dict)
    sha: str | None = None
    """The tree object's sha while nothing below changed; None once something did."""


@dataclass(frozen=True)
class Built:
    """A tree built from a batch: its sha and what the batch changed, as (letter, path)."""

    tree: str
    changes: tuple[tuple[str, str], ...]


class StatusTree:
    """The status tree held in memory between batches; see the module docstring."""

    def __init__(self, store: StoreObject) -> None:
        self._store = store
        self._root: _Dir | None = None
        self._held: str | None = None

    @property
    def held(self) -> str | None:
        """The sha of the tree held now (the last one built or read), if any."""
        return self._held

    def read(self, tree: str, listing: bytes) -> None:
        """Hold ``tree``, given ``git ls-tree -r -t -z`` output for it."""
        root = _Dir(sha=tree)
        dirs = {"": root}
        for record in listing.split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            mode, kind, sha = meta.decode("ascii").split(" ")
            path = raw_path.decode("utf-8", errors="surrogateescape")
            parent, _, name = path.rpartition("/")
            folder = dirs[parent]
            if kind == "tree":
                dirs[path] = folder.dirs[name] = _Dir(sha=sha)
            else:
                folder.files[name] = (mode, sha)
        self._root, self._held = root, tree

    def forget(self) -> None:
        self._root, self._held = None, None

    def build(self, blobs: Mapping[str, str | None]) -> Built:
        """Apply ``blobs`` ({path: blob sha, or None to delete}) to the tree held (the
        empty tree when none is) and write the trees that changed; the result is held."""
        root = self._root if self._root is not None else _Dir()
        changes: list[tuple[str, str]] = []
        try:
            for path, sha in blobs.items():
                letter = _set(root, path.split("/"), sha)
                if letter is not None:
                    changes.append((letter, path))
            tree = self._write(root)
        except BaseException:
            self.forget()  # half applied: the next batch reads the tree from Git again
            raise
        self._root, self._held = root, tree
        changes.sort(key=lambda change: change[1])
        return Built(tree, tuple(changes))

    def _write(self, folder: _Dir) -> str:
        if folder.sha is not None:
            return folder.sha
        entries: list[tuple[bytes, bytes]] = []
        for name, (mode, sha) in folder.files.items():
            entries.append((name.encode(errors="surrogateescape"), _entry(mode, name, sha)))
        for name, sub in folder.dirs.items():
            key = name.encode(errors="surrogateescape") + b"/"  # git orders trees as "name/"
            entries.append((key, _entry(TREE_MODE, name, self._write(sub))))
        entries.sort(key=lambda entry: entry[0])
        folder.sha = self._store("tree", b"".join(data for _, data in entries))
        return folder.sha


def _entry(mode: str, name: str, sha: str) -> bytes:
    return f"{mode} ".encode() + name.encode(errors="surrogateescape") + b"\0" + bytes.fromhex(sha)


def _set(root: _Dir, parts: list[str], sha: str | None) -> str | None:
    """Put (or with None remove) one file; its change letter, or None when unchanged."""
    trail = [root]
    folder = root
    for name in parts[:-1]:
        sub = folder.dirs.get(name)
        if sub is None:
            if sha is None:
                return None  # deleting below a folder that does not exist
            sub = folder.dirs[name] = _Dir()
            folder.files.pop(name, None)  # a file in the way of a folder is replaced
        trail.append(sub)
        folder = sub
    name = parts[-1]
    before = folder.files.get(name)
    if sha is None:
        if before is None:
            return None
        del folder.files[name]
        letter = "D"
    else:
        if before == (FILE_MODE, sha):
            return None
        if name in folder.dirs:
            return None  # a folder of that name is kept: status files never replace one
        folder.files[name] = (FILE_MODE, sha)
        letter = "A" if before is None else "M"
    for changed in trail:
        changed.sha = None
    for depth in range(len(trail) - 1, 0, -1):  # git keeps no empty folders
        if trail[depth].files or trail[depth].dirs:
            break
        del trail[depth - 1].dirs[parts[depth - 1]]
    return letter


def commit_bytes(
    tree: str,
    parents: Iterable[str],
    message: str,
    *,
    name: str,
    email: str,
    when: float | None = None,
) -> bytes:
    """A commit object's content, as ``git commit-tree`` writes it (author = committer)."""
    moment = time.time() if when is None else when
    local = time.localtime(moment)
    offset = local.tm_gmtoff // 60
    sign = "+" if offset >= 0 else "-"
    zone = f"{sign}{abs(offset) // 60:02d}{abs(offset) % 60:02d}"
    who = f"{name} <{email}> {int(moment)} {zone}"
    lines = [f"tree {tree}", *(f"parent {parent}" for parent in parents)]
    lines += [f"author {who}", f"committer {who}", "", message]
    return "\n".join(lines).encode()


def describe(changes: Iterable[tuple[str, str]]) -> list[str]:
    """One line per change: "added status/a.yaml"."""
    return [f"{_WORDS.get(letter, letter)} {path}" for letter, path in changes]
