"""The home cluster of a sharded daemon: the API double (or envtest) with its namespace.

Leases and handover ConfigMaps live in the namespace ``reconciler``; tests speak to it
through the real kubernetes client, as the daemon does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.config import kube_config

from reconciler.drivers.leases import CoordinationApi
from tests.k8s import envtest
from tests.k8s.apiserver_double import ApiServerDouble

NAMESPACE = "reconciler"


@dataclasses.dataclass
class Home:
    """The cluster the replicas coordinate in."""

    kubeconfig: str
    api: client.ApiClient
    double: ApiServerDouble | None

    def coordination(self, *, timeout_s: float = 5.0) -> CoordinationApi:
        return CoordinationApi(namespace=NAMESPACE, kubeconfig=self.kubeconfig, timeout_s=timeout_s)

    @property
    def leases(self) -> client.CoordinationV1Api:
        return client.CoordinationV1Api(self.api)

    @property
    def double_core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)


def _client(kubeconfig: str) -> client.ApiClient:
    configuration = client.Configuration()
    loader = kube_config.KubeConfigLoader(config_dict=yaml.safe_load(kubeconfig))
    loader.load_and_set(configuration)
    return client.ApiClient(configuration)


def start_home(kubeconfig: str, double: ApiServerDouble | None) -> Home:
    api = _client(kubeconfig)
    client.CoreV1Api(api).create_namespace({"metadata": {"name": NAMESPACE}})
    return Home(kubeconfig=kubeconfig, api=api, double=double)


@pytest.fixture
def home() -> Iterator[Home]:
    """The API double as the home cluster."""
    double = ApiServerDouble().start()
    made = start_home(double.kubeconfig(), double)
    yield made
    made.api.close()
    double.stop()


@pytest.fixture(params=["double", "envtest"])
def any_home(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Home]:
    """The double, and a real kube-apiserver when ``KUBEBUILDER_ASSETS`` holds one."""
    if request.param == "double":
        double = ApiServerDouble().start()
        made = start_home(double.kubeconfig(), double)
        yield made
        made.api.close()
        double.stop()
        return
    real = envtest.start_envtest(tmp_path)
    if real is None:
        pytest.skip("KUBEBUILDER_ASSETS names no folder with kube-apiserver and etcd")
    try:
        made = start_home(real.kubeconfig(), None)
        yield made
        made.api.close()
    finally:
        real.stop()
