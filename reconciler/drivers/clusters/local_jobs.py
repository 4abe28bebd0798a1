"""Jobs run to their end on this host: the local cluster's runner behind ``k8s_job``.

The same contract as on Kubernetes, with a process for a container. ``command`` and
``args`` are the argv, run in a session of its own (so a stop reaches everything it
started, and the daemon's signals do not), in a fresh working folder under the state dir
that is removed afterwards, with a small environment: a few of the daemon's variables
(never its secrets), the job's ``env``, and ``CUDA_VISIBLE_DEVICES`` naming the first
``gpus`` devices (none when it asks for none) unless ``env`` sets it. Its stdout and
stderr, merged, are handed on line by line as they come. When its main process exits,
whatever it left running in its session is killed, as a container's end ends its
processes. Past ``timeout_s``, or when the step is cancelled, the session gets SIGTERM
and, after a grace, SIGKILL.

A local cluster has no image to run: a request with an ``image`` is refused (validate
refuses it first), since running the command on the host instead would be a different
program than the one the spec names. A run left behind by a daemon that died is found by
the marker in its environment and stopped before the same job runs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

from reconciler.drivers.clusters import local_processes as procs
from reconciler.drivers.clusters import protocol

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
GPU_ENV = "CUDA_VISIBLE_DEVICES"
READ_SIZE = 64 * 1024
MAX_LINE_BYTES = 64 * 1024
"""A longer line is handed on in pieces of this size."""


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _text(data: bytes | bytearray) -> str:
    return bytes(data).decode("utf-8", errors="replace").removesuffix("\r")


async def _read_lines(stream: asyncio.StreamReader, on_line: Callable[[str], None]) -> None:
    buffer = bytearray()
    while chunk := await stream.read(READ_SIZE):
        buffer.extend(chunk)
        start = 0
        end = buffer.find(b"\n", start)
        while end != -1:
            on_line(_text(buffer[start:end]))
            start = end + 1
            end = buffer.find(b"\n", start)
        del buffer[:start]
        while len(buffer) >= MAX_LINE_BYTES:
            on_line(_text(buffer[:MAX_LINE_BYTES]))
            del buffer[:MAX_LINE_BYTES]
    if buffer:
        on_line(_text(buffer))


class _Exit:
    """The main process's exit, seen through a pidfd. asyncio's ``Process.wait()`` also
    waits for the output pipe to close, which a process the job left running holds open."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self._loop = asyncio.get_running_loop()
        self._done: asyncio.Future[None] = self._loop.create_future()
        self._fd: int | None = None
        try:
            self._fd = os.pidfd_open(process.pid)
        except ProcessLookupError:
            self._done.set_result(None)
            return
        self._loop.add_reader(self._fd, self._exited)

    def _exited(self) -> None:
        self.close()
        if not self._done.done():
            self._done.set_result(None)

    async def wait(self) -> None:
        await asyncio.shield(self._done)

    async def returncode(self, *, within_s: float) -> int | None:
        """The exit status, once asyncio has reaped the process (None if not in time)."""
        await self.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while self._process.returncode is None and loop.time() < deadline:
            await asyncio.sleep(0.01)  # the child watcher reaps it right after the exit
        return self._process.returncode

    def close(self) -> None:
        if self._fd is not None:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None


class LocalJobRunner:
    """Jobs as processes under ``folder``; see the module docstring."""

    def __init__(self, *, folder: Path, stop_grace_s: float = 10.0, drain_s: float = 5.0):
        self._folder = folder
        self._grace = stop_grace_s
        self._drain = drain_s

    def _marker(self, name: str) -> str:
        return f"{self._folder.resolve()}::job::{name}"

    async def run_to_end(
        self,
        request: protocol.JobRequest,
        *,
        on_line: Callable[[str], None],
        on_note: Callable[[str], None],
    ) -> protocol.JobOutcome:
        name = request.name
        if not _NAME.fullmatch(name):
            raise protocol.InvalidJobError(f"job name {name!r}: use letters, digits, '.', '_', '-'")
        if request.image:
            raise protocol.InvalidJobError(
                f"job {name}: a local cluster runs a command on its host and cannot run the "
                f"image {request.image!r}; remove image, or run the job on a kubernetes Cluster"
            )
        if not request.command:
            raise protocol.InvalidJobError(
                f"job {name}: a local cluster runs `command` (then `args`) on its host; "
                "give command"
            )
        marker = self._marker(name)
        for left in await asyncio.to_thread(procs.marked_leaders, marker):
            on_note(f"stopping a run of job {name} left by an earlier daemon (pid {left.pid})")
            await procs.stop_group(left, grace_s=self._grace)
        workdir = self._folder / name
        await asyncio.to_thread(shutil.rmtree, workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        env = procs.child_env(request.env, marker=marker)
        if GPU_ENV not in request.env:
            env[GPU_ENV] = ",".join(str(index) for index in range(request.gpus))
        argv = [*request.command, *request.args]
        try:
            try:
                process = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                    env=env,
                    cwd=workdir,
                    start_new_session=True,
                )
            except OSError as exc:
                raise protocol.InvalidJobError(
                    f"job {name}: cannot start {argv[0]!r}: {exc.strerror or exc}"
                ) from exc
            on_note(f"job {name}: started pid {process.pid}")
            return await self._supervise(process, request, on_line, on_note)
        finally:
            # off the loop (a job may leave much behind), and done even when cancelled
            await asyncio.shield(asyncio.to_thread(shutil.rmtree, workdir, ignore_errors=True))

    async def _supervise(
        self,
        process: asyncio.subprocess.Process,
        request: protocol.JobRequest,
        on_line: Callable[[str], None],
        on_note: Callable[[str], None],
    ) -> protocol.JobOutcome:
        assert process.stdout is not None
        reader = asyncio.create_task(_read_lines(process.stdout, on_line))
        exit_ = _Exit(process)
        timed_out = False
        try:
            async with asyncio.timeout(request.timeout_s):
                await exit_.wait()
        except TimeoutError:
            timed_out = True
            limit = request.timeout_s or 0
            on_note(f"job {request.name}: past its timeout of {limit:g}s; stopping")
            await self._stop(process, exit_)
        except asyncio.CancelledError:
            await self._stop(process, exit_)
            raise
        finally:
            _signal_group(process.pid, signal.SIGKILL)  # what it left running in its session
            exit_.close()
            try:
                await asyncio.wait_for(asyncio.shield(reader), self._drain)
            except TimeoutError:
                reader.cancel()
                on_note(
                    f"job {request.name}: output cut off {self._drain:g}s after its end: a "
                    "process it started outside its session still holds it open"
                )
        code = await exit_.returncode(within_s=self._drain)
        if code is None:
            return protocol.JobOutcome(None, timed_out=timed_out, message="no exit status known")
        if code < 0:
            signame = signal.Signals(-code).name
            message = f"ended by {signame}" + (" after its timeout" if timed_out else "")
            return protocol.JobOutcome(exit_code=128 - code, timed_out=timed_out, message=message)
        return protocol.JobOutcome(exit_code=code, timed_out=timed_out)

    async def _stop(self, process: asyncio.subprocess.Process, exit_: _Exit) -> None:
        """SIGTERM the job's session, SIGKILL after the grace (at once if cancelled again)."""
        _signal_group(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(exit_.wait(), self._grace)
        except TimeoutError:
            _signal_group(process.pid, signal.SIGKILL)
            await exit_.wait()
        except asyncio.CancelledError:
            _signal_group(process.pid, signal.SIGKILL)
            raise
