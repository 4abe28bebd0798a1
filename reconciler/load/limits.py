"""Safety limits for loading YAML from a repository anyone with push access can write.

A spec file is small; anything far larger, deeper or more aliased than a spec can be is
rejected before it costs time or memory (billion laughs, deep nesting, huge files).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class LoadLimits:
    """Bounds applied per file; every one is configurable, the defaults fit real specs."""

    max_file_bytes: int = 1024 * 1024
    max_documents: int = 1000
    max_depth: int = 64
    max_alias_expansion: int = 10_000
    max_nodes: int = 500_000


DEFAULT_LIMITS = LoadLimits()
