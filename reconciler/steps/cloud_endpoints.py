"""The cloud-model Deployment step: nothing runs, the provider serves the model.

A Deployment of a Model whose source is ``cloud_model`` needs no cluster: the step checks
that the Credential it names (or its Model's source names) exists, that the Credential's
secret resolves on this host and that it is for the Model's provider, then records the
provider's OpenAI-compatible endpoint (reconciler.core.render.cloud_endpoints; the
Credential's ``base_url`` when it gives one) in the Deployment's status. With a cluster,
a gateway serves it there instead (reconciler.steps.cloud_gateway), after the same
credential check (:func:`checked_credential`). It lives apart from the cluster steps of
reconciler.steps.endpoints, which call it for such a Model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from reconciler.core.render import cloud_endpoints
from reconciler.core.render.placeholders import RenderError
from reconciler.drivers import secrets
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext
from reconciler.steps import bookkeeping

CLOUD_MODEL = "cloud_model"


class CredentialFacts(Protocol):
    """The daemon's knowledge a cloud deployment reads: the Credential specs."""

    def credential(self, name: str) -> Mapping[str, Any] | None:
        """A Credential spec (None: no such Credential)."""
        ...


class CredentialRefused(Exception):
    """The cloud credential cannot be used; ``outcome`` ends the step."""

    def __init__(self, outcome: outcomes.Outcome) -> None:
        super().__init__(str(outcome))
        self.outcome = outcome


def deploy_cloud(
    ctx: StepContext,
    *,
    name: str,
    model: str,
    credential: str | None,
    source: Mapping[str, Any],
    facts: CredentialFacts,
) -> outcomes.Outcome:
    """Record the provider's endpoint of cloud-model Deployment ``name`` of Model
    ``model`` once its credential resolves: ``credential`` is the Deployment's own (None:
    the one of its Model's source), ``source`` its Model's ``spec.source``."""
    try:
        return _deploy_cloud(
            ctx, name=name, model=model, credential=credential, source=source, facts=facts
        )
    except CredentialRefused as refused:
        return refused.outcome


def _deploy_cloud(
    ctx: StepContext,
    *,
    name: str,
    model: str,
    credential: str | None,
    source: Mapping[str, Any],
    facts: CredentialFacts,
) -> outcomes.Outcome:
    who = f"Deployment/{name}"
    credential = checked_credential(
        ctx, who=who, model=model, credential=credential, source=source, facts=facts
    )
    provider = str(source.get("provider") or "")
    try:
        found = cloud_endpoints.cloud_endpoint(provider=provider, uri=str(source.get("uri")))
    except RenderError as exc:
        return outcomes.Stalled(f"{who}: Model/{model}: {exc}")
    base_url = (facts.credential(credential) or {}).get("base_url")
    if isinstance(base_url, str):  # the credential's own endpoint (a proxy, a region)
        found = cloud_endpoints.CloudEndpoint(provider, base_url.rstrip("/"), found.model)
    ctx.log.info(f"{who}: served by {provider} at {found.endpoint_url} as {found.model}")
    status = {
        "endpoint_url": found.endpoint_url,
        "provider": provider,
        "provider_model": found.model,
        "credential": credential,
        "cluster": None,
    }
    return outcomes.Done({"endpoint_url": found.endpoint_url, "status": status})


def checked_credential(
    ctx: StepContext,
    *,
    who: str,
    model: str,
    credential: str | None,
    source: Mapping[str, Any],
    facts: CredentialFacts,
) -> str:
    """The Credential a cloud Deployment uses (its own, else its Model's source's) once
    its secret resolves on this host and it is for the Model's provider; raise
    CredentialRefused with the Stalled outcome otherwise."""
    credential = credential or source.get("credential")
    if not isinstance(credential, str):
        raise CredentialRefused(
            outcomes.Stalled(
                f"{who}: Model/{model} is a cloud model; set spec.credential to the "
                "Credential of its provider"
            )
        )
    provider = str(source.get("provider") or "")
    for_provider = _secret_resolves(ctx, facts=facts, who=who, credential=credential)
    if for_provider and for_provider != provider:
        raise CredentialRefused(
            outcomes.Stalled(
                f"{who}: Credential/{credential} is for provider {for_provider!r}, but "
                f"Model/{model} is served by {provider!r}"
            )
        )
    return credential


def _secret_resolves(ctx: StepContext, *, facts: CredentialFacts, who: str, credential: str) -> str:
    """The provider the Credential is for, once its secret resolves on this host."""
    spec = facts.credential(credential)
    if spec is None:
        raise CredentialRefused(outcomes.Stalled(f"{who}: Credential/{credential} does not exist"))
    secret = spec.get("secret")
    if not isinstance(secret, str) or not secret:
        raise CredentialRefused(outcomes.Stalled(f"{who}: Credential/{credential} names no secret"))
    lookup = ctx.services.extra.get(bookkeeping.SECRETS_SERVICE)
    if not isinstance(lookup, bookkeeping.SecretLookup):
        raise CredentialRefused(
            outcomes.Stalled("SecretNotFound: no secret store is configured on this daemon")
        )
    try:
        verdict = lookup.lookup(secret)
    except ValueError as exc:
        raise CredentialRefused(
            outcomes.Stalled(f"SecretNotFound: invalid secret name {secret!r}: {exc}")
        ) from None
    if verdict.state is secrets.SecretState.UNREADABLE:
        raise CredentialRefused(outcomes.Stalled(f"SecretUnreadable: {who}: {verdict.problem}"))
    if not verdict.found:
        places = ", ".join(lookup.places(secret))
        raise CredentialRefused(
            outcomes.Stalled(
                f"SecretNotFound: {who}: Credential/{credential} names secret "
                f"'{secret}', which is not in {places}"
            )
        )
    provider = spec.get("provider")
    return provider if isinstance(provider, str) else ""
