"""Shared helpers: validating a fixture repo (a folder under fixtures/) the way the CLI does."""

from __future__ import annotations

from pathlib import Path

from reconciler.core.validation.repo import (
    HostFacts,
    ValidateOptions,
    ValidationResult,
    validate_sources,
)
from reconciler.drivers.files import walk_spec_files
from reconciler.load.documents import SourceFile
from reconciler.load.nodes import ParserName

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parents[2]
EXAMPLES = REPO / "examples"


def sources_of(folder: Path) -> list[SourceFile]:
    walk = walk_spec_files(folder)
    assert not walk.refused, walk.refused
    return [SourceFile(f.path, f.data) for f in walk.files]


def validate_folder(
    folder: Path,
    *,
    parser: ParserName | None = None,
    options: ValidateOptions | None = None,
    host: HostFacts | None = None,
) -> ValidationResult:
    return validate_sources(
        sources_of(folder), parser=parser, options=options or ValidateOptions(), host=host
    )


def validate_fixture(name: str, **kwargs: object) -> ValidationResult:
    return validate_folder(FIXTURES / name, **kwargs)  # type: ignore[arg-type]


def lines_of(result: ValidationResult) -> list[str]:
    return [d.format() for d in result.diagnostics]
