"""Virtualenvs for local model servers, built on first use from locks of exact versions.

A model server's pins clash with the daemon's own, so each runtime (``text-embeddings``,
``llama-cpp``) gets a virtualenv of its own under the state dir, installed with
``pip --require-hashes --no-deps`` from ``reconciler/runtimes/<name>.lock`` (made with
``pip-compile --generate-hashes``), by the daemon's own pip (``pip --python``): the
runtime holds the server's packages and no pip of its own. The folder is named after the
lock's digest and a marker file is written last, so a half-built runtime is never used
and a new lock builds beside the old one. Progress goes to a callback, one line per step.

A runtime whose packages compile from source may ship ``<name>.build-env`` beside its
lock: ``KEY=VALUE`` lines (``#`` comments) set in pip's environment while it builds.
llama-cpp uses it for ``CMAKE_ARGS``: llama.cpp built for the portable x86-64-v3 level
(AVX2, FMA, F16C) rather than ``-march=native``, whose AMX kernels crash on hosts whose
kernel does not grant AMX state (seen on this project's VMs: a general protection fault
on the first quantized matmul). The file is part of the folder's digest, so a changed
build environment builds a new runtime, and such a runtime is installed without pip's
cache (whose wheels are keyed by the source alone, not by how they were built).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from reconciler.drivers import child_processes

LOCKS_DIR = Path(__file__).resolve().parent.parent / "runtimes"
MARKER = ".reconciler-runtime.json"
_PINNED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", re.MULTILINE)

Progress = Callable[[str], None]


class RuntimeBuildError(Exception):
    """A runtime virtualenv could not be built; the message holds the tail of pip's output."""


class UnknownRuntimeError(RuntimeBuildError):
    """No lock file of that name ships with the daemon."""


def _ignore(_: str) -> None:
    return None


def _pip_installs_into_others() -> bool:
    """Whether the daemon's environment has a pip that takes ``--python``."""
    try:
        version = importlib.metadata.version("pip")
    except importlib.metadata.PackageNotFoundError:
        return False
    major, minor = (int(part) for part in re.findall(r"\d+", version)[:2])
    return (major, minor) >= (22, 3)


class RuntimeManager:
    """Finds or builds runtime virtualenvs under ``root``."""

    def __init__(
        self, *, root: Path, locks_dir: Path = LOCKS_DIR, python: str = sys.executable
    ) -> None:
        self._root = root
        self._locks_dir = locks_dir
        self._python = python
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def root(self) -> Path:
        """The folder the runtime virtualenvs live in."""
        return self._root

    def known(self) -> tuple[str, ...]:
        return tuple(sorted(path.stem for path in self._locks_dir.glob("*.lock")))

    def lock_file(self, name: str) -> Path:
        path = self._locks_dir / f"{name}.lock"
        if not path.is_file():
            known = ", ".join(self.known()) or "none"
            raise UnknownRuntimeError(f"no runtime named {name!r} (known: {known})")
        return path

    def location(self, name: str) -> Path:
        """Where the runtime of the current lock (and build env) lives, built or not."""
        content = self.lock_file(name).read_bytes()
        build_env = self._locks_dir / f"{name}.build-env"
        if build_env.is_file():
            content += b"\0build-env\0" + build_env.read_bytes()
        digest = hashlib.sha256(content).hexdigest()
        return self._root / f"{name}-{digest[:16]}"

    def build_env(self, name: str) -> dict[str, str]:
        """The variables set while the runtime's packages build (its .build-env file)."""
        path = self._locks_dir / f"{name}.build-env"
        if not path.is_file():
            return {}
        found: dict[str, str] = {}
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            key, sep, value = text.partition("=")
            if not sep or not key.strip():
                raise RuntimeBuildError(f"{path}:{number}: expected KEY=VALUE, got {text!r}")
            found[key.strip()] = value.strip()
        return found

    def ready_bin(self, name: str) -> Path | None:
        """The runtime's bin folder when it is fully built, else None."""
        place = self.location(name)
        return place / "bin" if (place / MARKER).is_file() else None

    async def ensure(self, name: str, *, progress: Progress = _ignore) -> Path:
        """The runtime's bin folder, building the virtualenv first if needed."""
        built = self.ready_bin(name)
        if built is not None:
            return built
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            with self._host_lock(name):
                built = self.ready_bin(name)
                if built is not None:
                    return built
                return await self._build(name, progress)

    @contextlib.contextmanager
    def _host_lock(self, name: str) -> Iterator[None]:
        self._root.mkdir(parents=True, exist_ok=True)
        with open(self._root / f".{name}.lock-held", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    async def _build(self, name: str, progress: Progress) -> Path:
        lock_file = self.lock_file(name)
        place = self.location(name)
        if place.exists():
            shutil.rmtree(place)
        packages = _PINNED.findall(lock_file.read_text())
        progress(f"runtime {name}: creating a virtualenv for {len(packages)} packages")
        try:
            pip = await self._create_venv(place)
            build_env = self.build_env(name)
            # pip's wheel cache is keyed by the source alone: a wheel built under another
            # build env would be reused, so a runtime with one builds without the cache.
            no_cache = ["--no-cache-dir"] if build_env else []
            await self._run(
                [
                    *pip,
                    "install",
                    *no_cache,
                    "--no-deps",
                    "--require-hashes",
                    "--progress-bar",
                    "off",
                    "--disable-pip-version-check",
                    "-r",
                    str(lock_file),
                ],
                progress=_PipProgress(name, len(packages), progress),
                extra_env=build_env,
            )
        except BaseException:
            shutil.rmtree(place, ignore_errors=True)
            raise
        marker = {"runtime": name, "lock": lock_file.name, "packages": len(packages)}
        (place / MARKER).write_text(json.dumps(marker) + "\n")
        progress(f"runtime {name}: ready")
        return place / "bin"

    async def _create_venv(self, place: Path) -> list[str]:
        """A bare virtualenv at ``place``, and the pip command that installs into it.

        The daemon's own pip installs into the runtime (``pip --python``): seeding each
        runtime with a pip of its own costs ~7 s of CPU a build (ensurepip unpacks and
        compiles pip) for a tool the runtime never runs. Without a pip beside the daemon
        that has ``--python`` (pip 22.3 and later), the runtime gets its own.
        """
        python = str(place / "bin" / "python")
        if not _pip_installs_into_others():
            await self._run([self._python, "-m", "venv", str(place)], progress=None)
            return [python, "-m", "pip"]
        await self._run([self._python, "-m", "venv", "--without-pip", str(place)], progress=None)
        return [sys.executable, "-m", "pip", "--python", python]

    async def _run(
        self,
        argv: list[str],
        *,
        progress: _PipProgress | None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        env = {**os.environ, "PIP_NO_INPUT": "1", "PYTHONUNBUFFERED": "1", **(extra_env or {})}
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
        )
        tail: list[str] = []
        assert process.stdout is not None
        try:
            async for raw in process.stdout:
                line = raw.decode(errors="replace").rstrip()
                tail = [*tail[-39:], line]
                if progress is not None:
                    progress.line(line)
            code = await process.wait()
        except BaseException:
            await child_processes.stop_child(process)  # a cancelled step: TERM, grace, KILL
            raise
        if code != 0:
            text = "\n".join(tail[-20:])
            raise RuntimeBuildError(f"{argv[0]} {argv[1]} {argv[2]} exited with {code}:\n{text}")


class _PipProgress:
    """Turns pip's output into short progress lines (n of total packages)."""

    def __init__(self, name: str, total: int, report: Progress) -> None:
        self._name = name
        self._total = total
        self._report = report
        self._seen = 0

    def line(self, line: str) -> None:
        if line.startswith("Collecting "):
            self._seen += 1
            package = line.split()[1]
            self._report(f"runtime {self._name}: fetching {package} ({self._seen}/{self._total})")
        elif line.startswith("Installing collected packages"):
            self._report(f"runtime {self._name}: installing {self._total} packages")
        elif line.startswith("Successfully installed"):
            self._report(f"runtime {self._name}: installed")
