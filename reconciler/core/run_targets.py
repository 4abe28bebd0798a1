"""Which cluster a Workflow run targets: its ``environments`` and ``environment_strategy``.

An environment names Clusters: the Cluster of that name, then every Cluster labelled
``reconciler/environment: <environment>`` (by name), so a dashboard's environment such as
``awsVirginia`` (not a DNS label) can name clusters too. The candidates of a run are those
clusters, environment by environment in the listed order. The strategy picks one:

- ``ordered``: the first candidate whose Cluster is Ready; none Ready: the first.
- ``round_robin``: the candidate after the one the Workflow's previous run targeted
  (the first when that one is no candidate any more).
- ``time``: the Ready candidate with the fewest executions queued or running on its
  cluster now, so the run starts soonest; ties go to the listed order, and with none
  Ready every candidate competes.

The picked cluster becomes the run's cluster (the executor's per-cluster step limit and
each step's ``cluster``), and the run's ``cluster`` and ``environment`` params take the
pick where the Workflow declares them (``user_params``) and the caller gave no value.
An environment that names no Cluster gives no candidate: with none at all the run keeps
the cluster its graph names (a ``k8s_job`` node's), and gets the first listed
environment as its ``environment``. Pure: the daemon gives the facts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from typing import Any, get_args

from reconciler.core.chains import Chain
from reconciler.core.diff import ObjectState
from reconciler.specs.workflow import ENVIRONMENT_LABEL, EnvironmentStrategy

STRATEGIES: tuple[str, ...] = get_args(EnvironmentStrategy)
ENVIRONMENT_PARAM = "environment"
CLUSTER_PARAM = "cluster"


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One cluster a run may target, and the environment that names it."""

    environment: str
    cluster: str


@dataclasses.dataclass(frozen=True)
class ClusterFacts:
    """What the daemon knows now: Ready clusters, executions queued or running per
    cluster, and the cluster the Workflow's previous run targeted."""

    ready: frozenset[str] = frozenset()
    busy: Mapping[str, int] = dataclasses.field(default_factory=dict)
    previous: str | None = None


def environments_of(spec: Mapping[str, Any]) -> list[str]:
    return [str(e) for e in spec.get("environments") or []]


def _labelled(cluster: ObjectState) -> str | None:
    metadata = cluster.document.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
    found = labels.get(ENVIRONMENT_LABEL) if isinstance(labels, Mapping) else None
    return found if isinstance(found, str) else None


def candidates(environments: Sequence[str], clusters: Mapping[str, ObjectState]) -> list[Candidate]:
    """The clusters ``environments`` name, in order (``clusters``: Cluster states by
    name). A cluster named twice counts once, for the first environment naming it."""
    found: list[Candidate] = []
    seen: set[str] = set()
    for environment in environments:
        named = [environment] if environment in clusters else []
        named += sorted(n for n, c in clusters.items() if _labelled(c) == environment)
        for name in named:
            if name not in seen:
                seen.add(name)
                found.append(Candidate(environment, name))
    return found


def pick(strategy: str, among: Sequence[Candidate], facts: ClusterFacts) -> Candidate:
    """The candidate ``strategy`` picks (``among`` is not empty)."""
    if strategy == "round_robin":
        names = [c.cluster for c in among]
        if facts.previous in names:
            return among[(names.index(facts.previous) + 1) % len(among)]
        return among[0]
    ready = [c for c in among if c.cluster in facts.ready]
    if strategy == "time":
        pool = ready or list(among)
        return min(pool, key=lambda c: facts.busy.get(c.cluster, 0))  # min keeps the first
    if strategy == "ordered":
        return ready[0] if ready else among[0]
    raise ValueError(f"environment_strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")


def targeted(
    chain: Chain,
    *,
    environment: str,
    cluster: str | None,
    given: Collection[str] = (),
) -> Chain:
    """``chain`` run on ``cluster`` (None: the cluster it has) in ``environment``: its
    ``cluster`` and ``environment`` params (when the chain has them as declared
    defaults, and not among the caller's ``given`` ones) take the values."""
    params = dict(chain.params)
    for name, value in ((ENVIRONMENT_PARAM, environment), (CLUSTER_PARAM, cluster)):
        if value is not None and name in params and name not in given:
            params[name] = value
    return dataclasses.replace(chain, cluster=cluster or chain.cluster, params=params)


def target_run(
    chain: Chain,
    spec: Mapping[str, Any],
    clusters: Mapping[str, ObjectState],
    facts: ClusterFacts,
    *,
    environment: str | None = None,
    given: Collection[str] = (),
) -> tuple[Chain, Candidate | None]:
    """``chain`` (a run of a Workflow with ``spec``) aimed at the cluster its strategy
    picks among its environments' (only ``environment``'s when given), and the pick
    (None: no environment names a Cluster). A Workflow without environments is run as
    it is."""
    listed = environments_of(spec)
    if not listed:
        return chain, None
    wanted = [environment] if environment is not None else listed
    among = candidates(wanted, clusters)
    if not among:
        return targeted(chain, environment=wanted[0], cluster=None, given=given), None
    chosen = pick(str(spec.get("environment_strategy") or "ordered"), among, facts)
    return (
        targeted(chain, environment=chosen.environment, cluster=chosen.cluster, given=given),
        chosen,
    )
