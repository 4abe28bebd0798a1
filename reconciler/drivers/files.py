"""Which files of a state repo hold specs, and a walk of a local directory that finds them.

The rule lives here once so that a Git tree (``git_source``) and a directory on disk
(``reconciler validate`` on a checkout, a local file watch) agree on what a spec file is:
every ``*.yaml``/``*.yml`` under the spec roots, except the top-level ``status/`` folder
(the daemon's own output) and anything hidden (a dot-folder such as ``.github`` or a
dot-file). The walk never reads a file above the size limit: such a file, and any file it
cannot read, becomes a :class:`RefusedFile` record so one bad file does not hide the others.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

SPEC_SUFFIXES = (".yaml", ".yml")
STATUS_FOLDER = "status"
DEFAULT_MAX_FILE_SIZE = 1024 * 1024


class SpecDirectoryError(Exception):
    """The directory to walk is missing or is not a directory."""


@dataclass(frozen=True)
class LocalSpecFile:
    """A spec file read from disk; ``path`` is POSIX and relative to the walked directory."""

    path: str
    data: bytes


@dataclass(frozen=True)
class RefusedFile:
    """A spec file (or folder) the walk did not read, and why, in words a person can act on."""

    path: str
    reason: str


@dataclass(frozen=True)
class SpecFileWalk:
    """What a walk found: readable files and refused ones, each sorted by path."""

    files: tuple[LocalSpecFile, ...]
    refused: tuple[RefusedFile, ...]


def normalize_root(root: str) -> str:
    """Return a spec root as a clean relative POSIX path; ``""`` means the whole repo.

    Raises ValueError for an absolute root or one that climbs out with ``..``.
    """
    text = root.replace("\\", "/").strip()
    if text.startswith("/"):
        raise ValueError(f"spec root {root!r} must be relative to the repository top")
    parts = [part for part in PurePosixPath(text).parts if part not in (".", "")]
    if ".." in parts:
        raise ValueError(f"spec root {root!r} must not contain '..'")
    return "/".join(parts)


def is_spec_path(path: str, *, roots: Sequence[str] = (".",)) -> bool:
    """Tell whether a repo-relative POSIX ``path`` is a spec file under one of ``roots``.

    ``status/`` is excluded at the repo top; hidden names are excluded below the root
    (a root may itself be hidden if named explicitly).
    """
    if not path.endswith(SPEC_SUFFIXES):
        return False
    parts = path.split("/")
    if len(parts) > 1 and parts[0] == STATUS_FOLDER:
        return False
    for root in roots:
        clean = normalize_root(root)
        if clean and not path.startswith(clean + "/"):
            continue
        below = parts[len(clean.split("/")) :] if clean else parts
        if not any(part.startswith(".") for part in below):
            return True
    return False


def walk_spec_files(
    directory: Path,
    *,
    roots: Sequence[str] = (".",),
    max_size: int = DEFAULT_MAX_FILE_SIZE,
) -> SpecFileWalk:
    """Read every spec file under ``directory`` (as the top of a state repo).

    Files larger than ``max_size`` bytes, symbolic links, special files and unreadable
    files or folders are reported in ``refused`` instead of read. Raises
    SpecDirectoryError only when ``directory`` itself cannot be walked.
    """
    if not directory.is_dir():
        raise SpecDirectoryError(
            f"{directory} is not a directory; give the path of a state repo checkout"
        )
    files: dict[str, LocalSpecFile] = {}
    refused: dict[str, RefusedFile] = {}
    for root in roots:
        clean = normalize_root(root)
        start = directory / clean if clean else directory
        if not start.is_dir():
            refused[clean] = RefusedFile(clean, "spec root does not exist or is not a folder")
            continue
        for relative in _candidate_paths(directory, start, refused):
            if relative in files or relative in refused or not is_spec_path(relative, roots=roots):
                continue
            outcome = _read_limited(directory / relative, relative, max_size)
            if isinstance(outcome, RefusedFile):
                refused[relative] = outcome
            else:
                files[relative] = outcome
    return SpecFileWalk(
        files=tuple(files[key] for key in sorted(files)),
        refused=tuple(refused[key] for key in sorted(refused)),
    )


def _candidate_paths(top: Path, start: Path, refused: dict[str, RefusedFile]) -> list[str]:
    """List file paths (relative to ``top``) under ``start``, pruning hidden and status folders."""

    def on_error(error: OSError) -> None:
        where = Path(error.filename) if error.filename else start
        rel = where.relative_to(top).as_posix() if where.is_relative_to(top) else str(where)
        refused[rel] = RefusedFile(rel, f"folder cannot be read: {error.strerror or error}")

    found: list[str] = []
    for current, dirnames, filenames in os.walk(start, onerror=on_error):
        current_rel = Path(current).relative_to(top).as_posix()
        at_top = current_rel == "."
        dirnames[:] = sorted(
            name
            for name in dirnames
            if not name.startswith(".") and not (at_top and name == STATUS_FOLDER)
        )
        for name in sorted(filenames):
            found.append(name if at_top else f"{current_rel}/{name}")
    return found


def _read_limited(path: Path, relative: str, max_size: int) -> LocalSpecFile | RefusedFile:
    """Read one regular file of at most ``max_size`` bytes, or say why it was refused."""
    try:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            return RefusedFile(relative, "is a symbolic link; spec files must be regular files")
        if not stat.S_ISREG(info.st_mode):
            return RefusedFile(relative, "is not a regular file")
        if info.st_size > max_size:
            return RefusedFile(relative, _too_large(info.st_size, max_size))
        with path.open("rb") as handle:
            data = handle.read(max_size + 1)
    except OSError as error:
        return RefusedFile(relative, f"cannot be read: {error.strerror or error}")
    if len(data) > max_size:
        return RefusedFile(relative, _too_large(None, max_size))
    return LocalSpecFile(relative, data)


def _too_large(size: int | None, max_size: int) -> str:
    shown = f"{size} bytes" if size is not None else "it grew while being read and"
    return (
        f"is too large ({shown} exceeds the limit of {max_size} bytes); "
        "split it into several files or raise the limit"
    )
