"""Fixtures for executor tests: a real store in a temp dir and executors built on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from executor_kit import PROBE_SIGNATURE, ExecutorFactory, Probe

from reconciler.engine.executor import Executor
from reconciler.engine.store import Store
from reconciler.steps.registry import StepRegistry, default_registry


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "state") as opened:
        yield opened


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def registry(probe: Probe) -> StepRegistry:
    built = default_registry()
    built.register("probe", probe.step, signature=PROBE_SIGNATURE)
    return built


@pytest.fixture
async def make_executor(store: Store, registry: StepRegistry) -> AsyncIterator[ExecutorFactory]:
    """Build started-later executors on the test store; all are shut down at the end."""
    made: list[Executor] = []

    def factory(**options: Any) -> Executor:
        options.setdefault("store", store)
        options.setdefault("registry", registry)
        executor = Executor(**options)
        made.append(executor)
        return executor

    yield factory
    for executor in made:
        await executor.shutdown(grace_s=1.0)
