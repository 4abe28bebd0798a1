"""A kubernetes Cluster's driver lives as long as its kubeconfig and the daemon, no longer.

Each driver runs a watch thread. A Cluster whose kubeconfig secret changes gets a new
driver; the old one's watch must stop at once (a rollout waiting on it fails, to be
retried on the new one), and a stopping daemon must close every driver it made: before,
neither happened, and the threads went on listing a server that was no longer the
Cluster's, for as long as the process lived.

What is checked is the life of the driver's threads, so no real API server is needed.
The driver tests use a server that accepts connections and never answers: a watch's
listing blocks there, so nothing but ``retire`` can end a rollout's wait. (A refusing
server would fail the waits itself, at a moment of its own.) The daemon test uses a
refused port, where the watch retries with backoff until it is closed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.daemon.cluster_drivers import ClusterDrivers
from reconciler.drivers.clusters import protocol
from reconciler.drivers.clusters.kubernetes import KubernetesDriver
from reconciler.drivers.clusters.kubernetes_watch import WatchClosed
from reconciler.drivers.clusters.local import LocalClusterDriver
from reconciler.drivers.secrets import SecretResolver
from tests.conftest import MakeGitRemote
from tests.daemon.conftest import SEED
from tests.daemon.inprocess import ManualClock, start_daemon, wait_until

REFUSED = "https://127.0.0.1:9"  # the discard port: nothing listens, connections are refused


class SilentServer:
    """Accepts connections and never answers; ``stop`` closes them (the reads end)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self._listener.getsockname()[1]}"
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return  # stopped
            self._held.append(connection)

    def stop(self) -> None:
        with contextlib.suppress(OSError):  # already stopped
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept (close alone does not)
        self._listener.close()
        self._thread.join(timeout=5)
        for connection in self._held:
            connection.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.stop()


def kubeconfig(token: str, server: str = REFUSED) -> str:
    return f"""\
apiVersion: v1
kind: Config
clusters:
  - name: gpu
    cluster: {{server: "{server}", insecure-skip-tls-verify: true}}
users:
  - name: admin
    user: {{token: {token}}}
contexts:
  - name: gpu
    context: {{cluster: gpu, user: admin}}
current-context: gpu
"""


def cluster_spec(namespace: str) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: Cluster
metadata: {{name: gpu}}
spec:
  driver: kubernetes
  namespace: {namespace}
  kubeconfig: {{secret: gpu-kubeconfig}}
"""


def watch_threads(namespace: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"k8s-watch-{namespace}" and t.is_alive()]


def watch_thread(driver: KubernetesDriver) -> threading.Thread:
    thread = driver._rollouts._thread
    assert thread is not None, "the driver's watch was not started"
    return thread


@pytest.fixture
def drivers(tmp_path: Path, silent: SilentServer) -> ClusterDrivers:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "gpu-kubeconfig").write_text(kubeconfig("first-token", silent.url))
    spec: dict[str, Any] = {
        "driver": "kubernetes",
        "namespace": "lifetime-a",
        "kubeconfig": {"secret": "gpu-kubeconfig"},
    }
    return ClusterDrivers(
        local=LocalClusterDriver(state_dir=tmp_path / "local"),
        cluster_specs=lambda: {"gpu": spec},
        resolver=SecretResolver(secrets_dir=secrets),
        on_drift=lambda _name, _drift: None,  # the watch runs from the driver's start
    )


async def test_a_changed_kubeconfig_stops_the_old_drivers_watch_and_fails_its_waits(
    drivers: ClusterDrivers, tmp_path: Path, silent: SilentServer
) -> None:
    old = drivers["gpu"]
    assert isinstance(old, KubernetesDriver)
    old_thread = watch_thread(old)
    waiting = old._rollouts.expect("chat")  # a rollout of the old driver, mid-wait
    assert drivers["gpu"] is old  # unchanged secret: the same driver

    (tmp_path / "secrets" / "gpu-kubeconfig").write_text(kubeconfig("rotated-token", silent.url))
    new = drivers["gpu"]

    assert isinstance(new, KubernetesDriver) and new is not old
    with pytest.raises(WatchClosed, match="Cluster gpu's kubeconfig, context or namespace"):
        waiting.future.result(timeout=5)
    # a rollout that starts on the old driver after that fails at once, to be retried
    with pytest.raises(WatchClosed):
        old._rollouts.expect("chat").future.result(timeout=0)
    silent.stop()  # the listings blocked there end; a closed watch does not try again
    await wait_until("the old driver's watch thread to end", lambda: not old_thread.is_alive())
    assert watch_thread(new).is_alive()

    await drivers.close()

    await wait_until("every watch thread to end", lambda: not watch_thread(new).is_alive())


async def test_a_rollout_waiting_on_a_closed_watch_is_told_to_retry(
    drivers: ClusterDrivers,
) -> None:
    driver = drivers["gpu"]
    assert isinstance(driver, KubernetesDriver)
    waiting = driver._rollouts.expect("chat")
    driver.retire("Cluster gpu's kubeconfig changed")

    with pytest.raises(protocol.ClusterUnreachableError, match="kubeconfig changed"):
        await driver._wait_settled(waiting, deadline=float("inf"))
    await drivers.close()


async def test_a_stopping_daemon_closes_its_kubernetes_drivers(
    tmp_path: Path, make_git_remote: MakeGitRemote
) -> None:
    namespace = "lifetime-daemon"
    remote = make_git_remote(files={**SEED, "gpu-cluster.yaml": cluster_spec(namespace)})
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "gpu-kubeconfig").write_text(kubeconfig("daemon-token"))
    running = await start_daemon(tmp_path, remote.path, ManualClock.at("2026-12-07T00:00:00Z"))
    try:
        # the Cluster's check makes its driver, whose watch starts with it
        await wait_until("the Cluster's driver to watch", lambda: watch_threads(namespace))
    finally:
        await running.stop()

    await wait_until(
        "the driver's watch to end with the daemon", lambda: not watch_threads(namespace)
    )
