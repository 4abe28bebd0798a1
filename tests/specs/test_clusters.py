"""Cluster drivers and the kubeconfig rule."""

from __future__ import annotations

from reconciler.specs import parse_document
from reconciler.specs.cluster import ClusterDocument
from tests.specs.spec_examples import DELETE, changed, errors_of, example

KUBERNETES = example("Cluster", "xeon-dev")
LOCAL = example("Cluster", "local")


def test_local_cluster_gets_defaults() -> None:
    parsed = parse_document(LOCAL)
    assert isinstance(parsed, ClusterDocument)
    assert parsed.spec.namespace == "reconciler"
    assert parsed.spec.kubeconfig is None


def test_kubernetes_driver_requires_a_kubeconfig() -> None:
    assert errors_of(changed(KUBERNETES, "spec.kubeconfig", DELETE)) == [
        (
            "spec.kubeconfig",
            "kubeconfig is required when driver is kubernetes: name the secret that holds "
            "it, e.g. kubeconfig: {secret: my-cluster-kubeconfig}",
        )
    ]


def test_local_driver_rejects_a_kubeconfig() -> None:
    document = changed(LOCAL, "spec.kubeconfig", {"secret": "some-kubeconfig"})
    assert errors_of(document) == [
        (
            "spec.kubeconfig",
            "kubeconfig is not allowed when driver is local: remove it, or set driver: kubernetes",
        )
    ]


def test_kubeconfig_context_is_optional() -> None:
    parsed = parse_document(changed(KUBERNETES, "spec.kubeconfig.context", DELETE))
    assert isinstance(parsed, ClusterDocument)
    assert parsed.spec.kubeconfig is not None
    assert parsed.spec.kubeconfig.context is None


def test_kubeconfig_secret_is_a_secret_name_not_a_value() -> None:
    errors = errors_of(changed(KUBERNETES, "spec.kubeconfig.secret", "apiVersion: v1\nkind: x"))
    assert errors[0][0] == "spec.kubeconfig.secret"
    assert errors[0][1].startswith("secret 'apiVersion: v1\\nkind: x' is not a secret name")


def test_driver_is_kubernetes_or_local() -> None:
    assert errors_of(changed(LOCAL, "spec.driver", "nomad")) == [
        ("spec.driver", "Input should be 'kubernetes' or 'local'")
    ]


def test_namespace_is_a_dns_label() -> None:
    assert errors_of(changed(KUBERNETES, "spec.namespace", "Models")) == [
        (
            "spec.namespace",
            "namespace 'Models' is not a lowercase DNS label "
            "(a-z, 0-9, '-', 1-63 chars, starting and ending alphanumeric)",
        )
    ]


def test_ingress_url_is_http() -> None:
    assert errors_of(changed(KUBERNETES, "spec.ingress_url", "20.244.107.114:10001")) == [
        (
            "spec.ingress_url",
            "'20.244.107.114:10001' is not an http(s) URL, e.g. 'https://host/path'",
        )
    ]


def test_gpu_count_is_not_negative() -> None:
    assert errors_of(changed(KUBERNETES, "spec.gpu.count", -1)) == [
        ("spec.gpu.count", "Input should be greater than or equal to 0")
    ]
