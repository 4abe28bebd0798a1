"""The dependency index: who is parked on whom, and whether a wait is news."""

from __future__ import annotations

from reconciler.daemon.dependency_index import DependencyIndex


def test_parked_keys_are_found_from_what_they_wait_on() -> None:
    deps = DependencyIndex()
    assert deps.park("Deployment/a", ["Model/m", "Cluster/c"]) is True
    assert deps.park("Deployment/b", ["Model/m"]) is True
    assert deps.waiters("Model/m") == {"Deployment/a", "Deployment/b"}
    assert deps.waiters("Cluster/c") == {"Deployment/a"}
    assert deps.waiting_on("Deployment/a") == {"Model/m", "Cluster/c"}
    assert "Deployment/a" in deps and len(deps) == 2


def test_the_same_wait_or_a_smaller_one_is_not_news_a_new_target_is() -> None:
    deps = DependencyIndex()
    assert deps.park("Deployment/a", ["Model/m", "DeploymentTemplate/t"]) is True
    assert deps.park("Deployment/a", ["Model/m", "DeploymentTemplate/t"]) is False
    assert deps.park("Deployment/a", ["Model/m"]) is False  # the template is settled
    assert deps.waiters("DeploymentTemplate/t") == frozenset()
    assert deps.park("Deployment/a", ["Model/m", "Cluster/c"]) is True  # a new target


def test_release_unlinks_both_ways() -> None:
    deps = DependencyIndex()
    deps.park("Deployment/a", ["Model/m"])
    assert deps.release("Deployment/a") is True
    assert deps.release("Deployment/a") is False
    assert deps.waiters("Model/m") == frozenset() and len(deps) == 0
    assert deps.park("Deployment/a", ["Model/m"]) is True  # parked again: news again
