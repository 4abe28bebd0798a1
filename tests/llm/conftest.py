"""The llama-cpp runtime and tiny GGUF models for the LLM endpoint tests.

The runtime virtualenv (llama-cpp-python, compiled from source: about 4.5 minutes on two
cores) is built once from reconciler/runtimes/llama-cpp.lock into the shared test cache
(``RECONCILER_TEST_CACHE``, default ~/.cache/reconciler-tests) and reused by every later
run: the folder is named after the lock's digest, so only a new lock builds again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from reconciler.drivers.runtimes import RuntimeManager
from tests.llm import tiny_gguf
from tests.shared_cache import CACHE

RUNTIMES = CACHE / "runtimes"


@pytest.fixture(scope="session")
def llama_runtime_bin() -> Path:
    """The bin folder of the llama-cpp runtime virtualenv (built on first use)."""
    return asyncio.run(RuntimeManager(root=RUNTIMES).ensure("llama-cpp"))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny base model and two LoRA adapters for it, each in a folder of its own."""
    root = tmp_path_factory.mktemp("tiny-gguf")
    made: dict[str, Path] = {}
    for name in ("base", "sql", "poet"):
        (root / name).mkdir()
    made["base"] = tiny_gguf.write_model(root / "base" / "tiny.gguf").parent
    made["sql"] = tiny_gguf.write_lora(root / "sql" / "sql.gguf", seed=1).parent
    made["poet"] = tiny_gguf.write_lora(root / "poet" / "poet.gguf", seed=2).parent
    return made
