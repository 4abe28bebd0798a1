"""Each kubernetes driver test runs against the API double, and against a real
kube-apiserver when ``KUBEBUILDER_ASSETS`` holds one (skipped otherwise)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.config import kube_config

from tests.k8s import envtest
from tests.k8s.apiserver_double import ApiServerDouble
from tests.k8s.kubelet import FakeKubelet


@dataclasses.dataclass
class Backend:
    """A running API server, a client for the test's own moves, and the fake kubelet."""

    kubeconfig: str
    token: str
    api: client.ApiClient
    kubelet: FakeKubelet
    double: ApiServerDouble | None

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    def raw(self, obj: Any) -> dict[str, Any]:
        return dict(self.api.sanitize_for_serialization(obj))


def _client(kubeconfig: str) -> client.ApiClient:
    configuration = client.Configuration()
    loader = kube_config.KubeConfigLoader(config_dict=yaml.safe_load(kubeconfig))
    loader.load_and_set(configuration)
    return client.ApiClient(configuration)


@pytest.fixture(params=["double", "envtest"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    double: ApiServerDouble | None = None
    real: envtest.EnvTest | None = None
    if request.param == "double":
        double = ApiServerDouble().start()
        kubeconfig, token = double.kubeconfig(extra_contexts=("other",)), double.token
    else:
        real = envtest.start_envtest(tmp_path)
        if real is None:
            pytest.skip("KUBEBUILDER_ASSETS names no folder with kube-apiserver and etcd")
        kubeconfig, token = real.kubeconfig(extra_contexts=("other",)), real.token
    api = _client(kubeconfig)
    kubelet = FakeKubelet(api, double=double).start()
    try:
        yield Backend(kubeconfig=kubeconfig, token=token, api=api, kubelet=kubelet, double=double)
    finally:
        kubelet.stop()
        api.close()
        if double is not None:
            double.stop()
        if real is not None:
            real.stop()
