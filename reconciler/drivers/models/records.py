"""Where add_model left a model's files, for the steps that run after it.

Steps of a chain do not see each other's outputs, so add_model writes one small JSON file
per Model (``<cache>/records/<name>.json``: the source it resolved, the local root if there
is one, the resolved revision) and scan_model and remove_model read it. Written atomically,
so a crash leaves the old record or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")


def record_path(*, cache_dir: Path, model: str) -> Path:
    if not _NAME.fullmatch(model) or ".." in model:
        raise ValueError(f"model name {model!r} cannot name a record file")
    return cache_dir / "records" / f"{model}.json"


def write_record(*, cache_dir: Path, model: str, record: dict[str, Any]) -> None:
    target = record_path(cache_dir=cache_dir, model=model)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{model}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle, sort_keys=True)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def read_record(*, cache_dir: Path, model: str) -> dict[str, Any] | None:
    try:
        data = json.loads(record_path(cache_dir=cache_dir, model=model).read_text("utf-8"))
    except FileNotFoundError:
        return None
    return data if isinstance(data, dict) else None


def remove_record(*, cache_dir: Path, model: str) -> bool:
    path = record_path(cache_dir=cache_dir, model=model)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def recorded_roots(*, cache_dir: Path) -> set[str]:
    """The local roots every current record points at."""
    roots: set[str] = set()
    for path in (cache_dir / "records").glob("*.json"):
        try:
            root = json.loads(path.read_text("utf-8")).get("root")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(root, str):
            roots.add(root)
    return roots
