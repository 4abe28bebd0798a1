"""The cache shared by every test run on this machine, and a lock for filling it.

Model folders and runtime virtualenvs are slow to fetch or build, so they live outside
the clone (``RECONCILER_TEST_CACHE``, default ~/.cache/reconciler-tests) and are reused
by later runs. The suite runs on several pytest-xdist workers, and two clones may run at
once: whoever fills a cache entry holds :func:`cache_lock` for it, and the others wait
and then find it filled. (Runtime virtualenvs have their own host lock in
``RuntimeManager``.)
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CACHE = Path(os.environ.get("RECONCILER_TEST_CACHE", Path.home() / ".cache/reconciler-tests"))


@contextmanager
def cache_lock(name: str) -> Iterator[Path]:
    """Hold the machine-wide lock of cache entry ``name``; yields the cache folder."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{name}.lock-held", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield CACHE
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
