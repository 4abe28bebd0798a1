"""``python -m reconciler`` for tests, forked from a process that has already imported it.

Each daemon a test starts used to pay about two seconds of CPU importing the project (the
API's models, aiohttp, pydantic) before it did anything; with some seventy daemons in a
run on two cores, that was over a minute of the suite's wall time. A fork server imports
the command line once per pytest worker and forks a child per command: from
``reconciler.__main__`` on, the child runs exactly what ``python -m reconciler ARGS``
runs, with its own environment, working directory and output file.

What a fork does not exercise, the interpreter's start and the imports themselves, is
covered by the tests that run the real command line (``tests/cli``, ``tests/systemd``,
``run.sh``). A start whose environment changes the interpreter (a ``PYTHON*`` variable
that differs from the server's) falls back to a real subprocess.

Protocol, JSON lines: the client writes ``{"argv", "env", "cwd", "stdout", "stderr"}``
to the server's stdin; the server answers ``{"pid", "id"}`` (or ``{"error"}``) on its
stdout and later, once it has reaped the child, ``{"exited": id, "code": ...}`` with
``Popen.returncode``'s meaning (negative: killed by that signal). The id, not the pid,
names a child: a pid is reused once its process is reaped.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import os
import runpy
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]

PRELOAD = (
    "reconciler.cli.main",
    "reconciler.cli.run_cmd",
    "reconciler.cli.status_cmd",
    "reconciler.cli.trigger_cmd",
    # What a daemon imports once it runs: its Kubernetes drivers (the kubernetes client
    # loads each API class on first use; CoreV1Api alone is ~0.4 s of CPU a daemon),
    # the Lease elector, and anyio's event loop backend under watchfiles.
    "reconciler.drivers.clusters.kubernetes",
    "reconciler.drivers.leases",
    "kubernetes.client.api.core_v1_api",
    "kubernetes.client.api.apps_v1_api",
    "kubernetes.client.api.batch_v1_api",
    "kubernetes.client.api.networking_v1_api",
    "kubernetes.client.api.coordination_v1_api",
    "kubernetes.client.api.custom_objects_api",
    "kubernetes.client.api.autoscaling_v2_api",
    "anyio._backends._asyncio",
    # networkx is imported on a daemon's first plan, not at import (~0.3 s of CPU).
    "networkx",
)
"""What ``reconciler run`` (and the API clients) import before they start, and what a
running daemon imports later: the server imports it once, every child inherits it."""


# --------------------------------------------------------------------------- the server
def _run_child(request: dict[str, Any], closing: list[int]) -> None:
    """In the forked child: become ``python -m reconciler ARGV`` and never return."""
    code = 1
    try:
        for fd in closing:
            os.close(fd)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(out, fd)
            os.close(out)
        os.environ.clear()
        os.environ.update(request["env"])
        if request["env"].get("PYTHONUNBUFFERED"):
            for stream in (sys.stdout, sys.stderr):
                stream.reconfigure(line_buffering=True, write_through=True)  # type: ignore[attr-defined]
        os.chdir(request["cwd"])
        gc.unfreeze()
        sys.argv = ["reconciler", *request["argv"]]
        try:
            runpy.run_module("reconciler", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as stop:
            if stop.code is None or isinstance(stop.code, int):
                code = stop.code or 0
            else:
                print(stop.code, file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
            code = 1
        # What the interpreter does at exit: wait for non-daemon threads, run atexit.
        threading._shutdown()  # type: ignore[attr-defined]
        atexit._run_exitfuncs()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    """Read fork requests on stdin until it closes; report each child's exit."""
    for name in PRELOAD:
        __import__(name)
    gc.collect()
    gc.freeze()  # the imported modules stay shared with the children, unscanned
    answers = os.dup(1)
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.close(quiet)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    requests = os.fdopen(0, "rb", buffering=0)
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ, "request")
    selector.register(wake_r, selectors.EVENT_READ, "child")
    pending = b""
    started = 0
    live: dict[int, int] = {}

    def answer(message: dict[str, Any]) -> None:
        os.write(answers, json.dumps(message).encode() + b"\n")

    def reap() -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            answer({"exited": live.pop(pid, -1), "code": code})

    while True:
        for key, _ in selector.select():
            if key.data == "child":
                os.read(wake_r, 4096)
                reap()
                continue
            chunk = requests.read(65536)
            if not chunk:
                return
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                try:
                    pid = os.fork()
                except OSError as error:
                    answer({"error": str(error)})
                    continue
                if pid == 0:
                    selector.close()
                    _run_child(request, [answers, wake_r, wake_w])
                started += 1
                live[pid] = started
                answer({"pid": pid, "id": started})
        reap()


# --------------------------------------------------------------------------- the client
class ForkedProcess:
    """The parts of ``subprocess.Popen`` the tests use, for a child of the fork server."""

    def __init__(self, server: ForkServer, pid: int, child_id: int) -> None:
        self._server = server
        self._id = child_id
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._server.exit_code(self._id, timeout=0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            code = self._server.exit_code(self._id, timeout=timeout)
            if code is None:
                raise subprocess.TimeoutExpired(f"reconciler (pid {self.pid})", timeout or 0)
            self.returncode = code
        return self.returncode

    def send_signal(self, signum: int) -> None:
        # Like Popen: a process already reaped is not signalled (its pid may be reused).
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """One server per pytest worker process, started on first use."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.forkserver"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._requests: IO[bytes] = self._process.stdin
        self._environ = _interpreter_env(os.environ)
        self._one_request = threading.Lock()
        self._changed = threading.Condition()
        self._started: list[dict[str, Any]] = []
        self._exits: dict[int, int] = {}
        self._gone = False
        self._reader = threading.Thread(
            target=self._read, args=(self._process.stdout,), name="forkserver", daemon=True
        )
        self._reader.start()
        atexit.register(self.close)

    def close(self) -> None:
        """End the server (its children go on) and reap it."""
        with contextlib.suppress(OSError):
            self._requests.close()
        self._process.wait(timeout=30)

    def _read(self, stream: IO[bytes]) -> None:
        for line in stream:
            message = json.loads(line)
            with self._changed:
                if "exited" in message:
                    self._exits[int(message["exited"])] = int(message["code"])
                else:
                    self._started.append(message)
                self._changed.notify_all()
        with self._changed:
            self._gone = True
            self._changed.notify_all()

    def serves(self, env: dict[str, str]) -> bool:
        """Whether a child with ``env`` runs the same interpreter as a subprocess would."""
        return not self._gone and _interpreter_env(env) == self._environ

    def start(
        self, argv: list[str], *, env: dict[str, str], stdout: Path, stderr: Path
    ) -> ForkedProcess:
        request = {
            "argv": argv,
            "env": env,
            "cwd": os.getcwd(),
            "stdout": str(stdout),
            "stderr": str(stderr),
        }
        with self._one_request, self._changed:
            self._requests.write(json.dumps(request).encode() + b"\n")
            self._requests.flush()
            if not self._changed.wait_for(lambda: self._started or self._gone, timeout=60):
                raise RuntimeError("the fork server did not answer in 60 s")
            if not self._started:
                raise RuntimeError("the fork server exited")
            answer = self._started.pop(0)
        if "error" in answer:
            raise OSError(answer["error"])
        return ForkedProcess(self, int(answer["pid"]), int(answer["id"]))

    def exit_code(self, child_id: int, *, timeout: float | None) -> int | None:
        with self._changed:
            self._changed.wait_for(lambda: child_id in self._exits or self._gone, timeout=timeout)
            return self._exits.get(child_id)


def _interpreter_env(env: Any) -> dict[str, str]:
    return {key: value for key, value in env.items() if key.startswith("PYTHON")}


_server: ForkServer | None = None
_server_lock = threading.Lock()


def _fork_server(env: dict[str, str]) -> ForkServer | None:
    """This worker's fork server, when it can run a child with ``env``
    (``RECONCILER_TEST_FORK=0`` asks for real subprocesses everywhere)."""
    global _server
    if os.environ.get("RECONCILER_TEST_FORK", "1") == "0":
        return None
    with _server_lock:
        if _server is None:
            _server = ForkServer()
        server = _server
    return server if server.serves(env) else None


def start_reconciler(
    argv: list[str], *, env: dict[str, str], output: Path
) -> ForkedProcess | subprocess.Popen[bytes]:
    """``python -m reconciler ARGV`` with stdout and stderr appended to ``output``."""
    server = _fork_server(env)
    if server is not None:
        output.touch()  # there at once, as with a subprocess's output file
        return server.start(argv, env=env, stdout=output, stderr=output)
    with output.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "reconciler", *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )


def run_reconciler(
    argv: list[str], *, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run([python, -m, reconciler, *argv], capture_output=True, text=True)``."""
    server = _fork_server(env)
    if server is None:
        return subprocess.run(
            [sys.executable, "-m", "reconciler", *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
    with tempfile.TemporaryDirectory(prefix="reconciler-cli-") as folder:
        out, err = Path(folder, "stdout"), Path(folder, "stderr")
        child = server.start(argv, env=env, stdout=out, stderr=err)
        try:
            code = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=30)
            raise
        return subprocess.CompletedProcess(
            ["reconciler", *argv],
            code,
            out.read_text(errors="replace"),
            err.read_text(errors="replace"),
        )


if __name__ == "__main__":
    serve()
