"""What a Model's ``cache`` asks that the repo or a cluster cannot give.

Each Cluster it names must exist. Only hugging_face sources are cached: a disk source is
already on the daemon's host, a url source is downloaded into the daemon's model folder
by the Model's own steps, and a cloud model has no files. (A gated or private repo is
cached on a kubernetes Cluster too: its token goes to the nodes' puller in a Secret.)
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
    return found
