"""Parameter count, dtype and sizing fields of a model on disk, read without loading it.

Parameters and dtype come from the safetensors headers (never from unpickling a
checkpoint); the fields the sizing estimate needs come from ``config.json``. A file that
fails its header check is left out here: the scan reports it.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from reconciler.drivers.models import safetensors_header
from reconciler.drivers.models.hashing import FileEntry

CONFIG_FIELDS = (
    "model_type",
    "architectures",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "vocab_size",
    "max_position_embeddings",
    "torch_dtype",
)
MAX_CONFIG_BYTES = 4 * 1024 * 1024
_TORCH_DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16"}


@dataclasses.dataclass(frozen=True)
class LocalMetadata:
    parameters: int | None
    dtype: str | None
    config: dict[str, Any]


def config_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The sizing fields of a parsed config.json (text_config of multimodal ones too)."""
    nested = raw.get("text_config")
    source: Mapping[str, Any] = raw
    if "hidden_size" not in raw and isinstance(nested, Mapping):
        source = {**nested, **{k: v for k, v in raw.items() if k != "text_config"}}
    return {key: source[key] for key in CONFIG_FIELDS if key in source}


def read_config(path: Path) -> dict[str, Any]:
    """The sizing fields of the config.json at ``path``; {} when absent or not usable."""
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            return {}
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return config_fields(raw) if isinstance(raw, dict) else {}


def dtype_of_config(config: Mapping[str, Any]) -> str | None:
    """The spec dtype a config's ``torch_dtype`` names, if it names one."""
    return _TORCH_DTYPES.get(str(config.get("torch_dtype")))


def describe(*, root: Path, files: Iterable[FileEntry]) -> LocalMetadata:
    counts: Counter[str] = Counter()
    config: dict[str, Any] = {}
    for entry in files:
        path = root / entry.path if root.is_dir() else root
        if entry.path.lower().endswith(".safetensors"):
            try:
                counts.update(safetensors_header.read_header(path).parameters_by_dtype)
            except (safetensors_header.HeaderError, OSError):
                continue
        elif entry.path == "config.json":
            config = read_config(path)
    dtype = safetensors_header.dominant_dtype(dict(counts)) or dtype_of_config(config)
    return LocalMetadata(parameters=sum(counts.values()) or None, dtype=dtype, config=config)
