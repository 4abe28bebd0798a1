"""The sha256 listing of a model's files, with a cache so that a resync costs nothing.

Every regular file under a model's root is listed with its path relative to the root, its
size and its sha256 (docs/status.md, Model ``files``). Hashing a multi-gigabyte model takes
a while, so each result is kept in a small SQLite file keyed by what ``stat`` says of the
file (path, size, mtime_ns, inode, device): an unchanged file is never read again, a
changed one (a new size, mtime or inode) is. A file modified within the last two seconds
is hashed but not cached, so a write in the same clock tick as the hash cannot hide.

The same database keeps scan verdicts by content hash (see ``scanners``), so one file
holds everything the model drivers remember between runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from reconciler.drivers.models.errors import DiskSourceError

RACY_WINDOW_NS = 2_000_000_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS file_hashes (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    device INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS scan_verdicts (
    sha256 TEXT NOT NULL,
    name_kind TEXT NOT NULL,
    rules TEXT NOT NULL,
    findings TEXT NOT NULL,
    PRIMARY KEY (sha256, name_kind, rules)
);
"""


@dataclasses.dataclass(frozen=True)
class FileEntry:
    """One file of a model: ``path`` relative to the model root, POSIX separators."""

    path: str
    size: int
    sha256: str

    def as_status(self) -> dict[str, object]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


@dataclasses.dataclass(frozen=True)
class FileStat:
    size: int
    mtime_ns: int
    inode: int
    device: int


class HashCache:
    """The SQLite file that remembers file hashes and scan verdicts; safe across threads."""

    def __init__(self, *, db_path: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def lookup_hash(self, *, path: Path, stat: FileStat) -> str | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT sha256 FROM file_hashes WHERE path = ? AND size = ? AND mtime_ns = ?"
                " AND inode = ? AND device = ?",
                (str(path), stat.size, stat.mtime_ns, stat.inode, stat.device),
            ).fetchone()
        return None if row is None else str(row[0])

    def store_hashes(self, rows: Iterable[tuple[Path, FileStat, str]]) -> None:
        values = [
            (str(path), st.size, st.mtime_ns, st.inode, st.device, digest)
            for path, st, digest in rows
        ]
        if not values:
            return
        with self._lock:
            self._conn.execute("BEGIN")
            self._conn.executemany(
                "INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?, ?, ?)", values
            )
            self._conn.execute("COMMIT")

    def lookup_verdict(self, *, sha256: str, name_kind: str, rules: str) -> str | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT findings FROM scan_verdicts WHERE sha256 = ? AND name_kind = ?"
                " AND rules = ?",
                (sha256, name_kind, rules),
            ).fetchone()
        return None if row is None else str(row[0])

    def store_verdict(self, *, sha256: str, name_kind: str, rules: str, findings: str) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO scan_verdicts VALUES (?, ?, ?, ?)",
                (sha256, name_kind, rules, findings),
            )


def list_regular_files(root: Path) -> list[tuple[str, Path]]:
    """(relative POSIX path, path) of every regular file under ``root``, sorted.

    A symlink counts when it points at a regular file (a Hugging Face snapshot is made of
    them); links to folders are not followed, so a loop cannot hang the listing. ``root``
    may itself be a single file.
    """
    if root.is_file():
        return [(root.name, root)]
    found: list[tuple[str, Path]] = []
    for folder, _dirs, names in os.walk(root, followlinks=False):
        for name in names:
            path = Path(folder) / name
            if path.is_file():
                found.append((path.relative_to(root).as_posix(), path))
    found.sort(key=lambda item: item[0])
    return found


def _stat(path: Path) -> FileStat:
    st = path.stat()
    return FileStat(size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino, device=st.st_dev)


def sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def hash_files(
    *, root: Path, cache: HashCache | None, workers: int | None = None
) -> list[FileEntry]:
    """The sorted listing of ``root`` with sizes and sha256, reading only uncached files.

    Raises DiskSourceError when a file cannot be read (its path in the message).
    """
    listed = list_regular_files(root)
    stats: dict[str, FileStat] = {}
    known: dict[str, str] = {}
    todo: list[tuple[str, Path]] = []
    for relative, path in listed:
        try:
            stats[relative] = _stat(path)
        except OSError as exc:
            raise DiskSourceError(f"cannot stat {path}: {exc.strerror or exc}") from exc
        cached = cache.lookup_hash(path=path, stat=stats[relative]) if cache else None
        if cached is None:
            todo.append((relative, path))
        else:
            known[relative] = cached
    known.update(_hash_all(todo, workers=workers))
    if cache is not None:
        now = time.time_ns()
        cache.store_hashes(
            (path, stats[relative], known[relative])
            for relative, path in todo
            if now - stats[relative].mtime_ns > RACY_WINDOW_NS
        )
    return [FileEntry(relative, stats[relative].size, known[relative]) for relative, _ in listed]


def _hash_one(item: tuple[str, Path]) -> tuple[str, str]:
    relative, path = item
    try:
        return relative, sha256_of(path)
    except OSError as exc:
        raise DiskSourceError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _hash_all(todo: Sequence[tuple[str, Path]], *, workers: int | None) -> dict[str, str]:
    if not todo:
        return {}
    count = workers or min(4, os.cpu_count() or 1)
    if count <= 1 or len(todo) == 1:
        return dict(_hash_one(item) for item in todo)
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="model-hash") as pool:
        return dict(pool.map(_hash_one, todo))


def total_size(files: Iterable[FileEntry]) -> int:
    return sum(entry.size for entry in files)
