"""Loading the specs of one revision, re-parsing only the blobs that changed.

A cache keyed by (path, blob id) keeps each file's parsed objects and local problems, and
a CheckMemo each object's checks across objects, so a one-file commit in a 10,000-spec
repo costs one file's parse plus the checks of what that file changed or touched.
Entries for blobs no longer in the tree are dropped at each load.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol

from reconciler.core.diagnostics import Diagnostic
from reconciler.core.validation.check_memo import CheckMemo
from reconciler.core.validation.repo import (
    HostFacts,
    ParsedFile,
    ValidateOptions,
    ValidationResult,
    load_and_parse,
    validate_parsed,
)
from reconciler.load.documents import SourceFile
from reconciler.load.limits import LoadLimits


class BlobLike(Protocol):
    @property
    def path(self) -> str: ...
    @property
    def sha(self) -> str: ...
    @property
    def size(self) -> int: ...


class BlobSource(Protocol):
    """The part of the Git source the loader needs."""

    def list_spec_blobs(
        self, revision: str, roots: Sequence[str] = (".",)
    ) -> Sequence[BlobLike]: ...

    def read_blobs(self, shas: Sequence[str]) -> dict[str, bytes]: ...


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The validated specs of one revision and what loading them cost."""

    revision: str
    result: ValidationResult
    files: int
    parsed: int

    @property
    def ok(self) -> bool:
        return self.result.ok

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.result.diagnostics if d.severity == "error")


class SnapshotLoader:
    """Loads revisions of a Git source through a per-blob cache of parsed files."""

    def __init__(
        self,
        *,
        source: BlobSource,
        roots: Sequence[str] = (".",),
        limits: LoadLimits | None = None,
        options: ValidateOptions | None = None,
        host: HostFacts | None = None,
    ) -> None:
        self._source = source
        self._roots = tuple(roots)
        self._limits = limits or LoadLimits()
        self._options = options or ValidateOptions()
        self._host = host
        self._cache: dict[tuple[str, str], ParsedFile] = {}
        self._checks = CheckMemo()

    def load(self, revision: str) -> Snapshot:
        entries = sorted(self._source.list_spec_blobs(revision, self._roots), key=lambda e: e.path)
        wanted = [(e.path, e.sha) for e in entries]
        oversized = {(e.path, e.sha) for e in entries if e.size > self._limits.max_file_bytes}
        missing = [key for key in wanted if key not in self._cache and key not in oversized]
        data = self._source.read_blobs(sorted({sha for _, sha in missing})) if missing else {}
        for path, sha in missing:
            source = SourceFile(path=path, data=data[sha], blob=sha)
            self._cache[(path, sha)] = load_and_parse(source, limits=self._limits)
        for path, sha in oversized:
            entry_size = next(e.size for e in entries if e.path == path)
            problem = Diagnostic(
                path=path,
                line=1,
                col=1,
                severity="error",
                message=(
                    f"file is {entry_size} bytes, above the limit of "
                    f"{self._limits.max_file_bytes} bytes (load.max_file_bytes)"
                ),
            )
            self._cache[(path, sha)] = ParsedFile(path, sha, (), (problem,))
        keep = set(wanted)
        for key in [k for k in self._cache if k not in keep]:
            del self._cache[key]
        result = validate_parsed(
            (self._cache[key] for key in wanted),
            options=self._options,
            host=self._host,
            memo=self._checks,
        )
        return Snapshot(revision=revision, result=result, files=len(wanted), parsed=len(missing))
