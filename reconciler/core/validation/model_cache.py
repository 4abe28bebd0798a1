"""What a Model's ``cache`` asks that the repo or a cluster cannot give.

Each Cluster it names must exist. Only hugging_face sources are cached: a disk source is
already on the daemon's host, a url source is downloaded into the daemon's model folder
by the Model's own steps, and a cloud model has no files. On a kubernetes Cluster the
nodes pull from the hub themselves, without the daemon's secrets: a source with a
credential (a gated or private repo) is not supported there yet.
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.core.diagnostics import Diagnostic
from reconciler.core.validation.objects import SpecObject, did_you_mean
from reconciler.core.validation.references import Index, Names


def check_model_cache(model: SpecObject, index: Index, names: Names) -> list[Diagnostic]:
    cache = model.spec.get("cache")
    if not isinstance(cache, Mapping):
        return []
    source = model.spec.get("source")
    source = source if isinstance(source, Mapping) else {}
    provider = source.get("provider_type")
    if provider != "hugging_face":
        return [
            model.problem(
                ("spec", "cache"),
                f"cache pre-pulls hugging_face sources; this Model's source is {provider} "
                "(disk and url files are on the daemon's host already, a cloud model has "
                "none): remove cache",
            )
        ]
    found: list[Diagnostic] = []
    known = names.get("Cluster", frozenset())
    clusters = cache.get("clusters")
    for position, name in enumerate(clusters if isinstance(clusters, list) else []):
        if not isinstance(name, str):
            continue
        where = ("spec", "cache", "clusters", position)
        if name not in known:
            hint = did_you_mean(name, sorted(known))
            found.append(model.problem(where, f"Cluster '{name}' does not exist{hint}"))
            continue
        cluster = index.get("Cluster", {}).get(name)
        driver = cluster.spec.get("driver") if cluster is not None else None
        if driver == "kubernetes" and source.get("credential"):
            found.append(
                model.problem(
                    where,
                    f"Cluster '{name}' is a kubernetes Cluster, whose nodes would pull this "
                    "repo without the Model's credential: caching a gated or private repo "
                    "there is not supported yet",
                )
            )
    return found
