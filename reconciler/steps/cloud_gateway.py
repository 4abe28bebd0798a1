"""The endpoint a cloud Model's gateway runs as on a Cluster.

A Deployment of a ``cloud_model`` Model with ``spec.cluster`` is served by a gateway
there (:mod:`reconciler.gateway`, the built-in ``cloud-gateway`` template unless the
Deployment names another gateway template): callers get an OpenAI-compatible endpoint
on the cluster, and the provider key stays on the server. This module builds that
endpoint: the Credential (the Deployment's, else its Model's) must resolve on this host
and be for the Model's provider; the command is the template's, filled with the
provider's base URL (the Credential's ``base_url`` when given) and model id; the key is
named, not given: the driver resolves the secret into the gateway process's environment
(:data:`KEY_ENV`) each time it starts it, and stores only its name. The deploy step
(:mod:`reconciler.steps.endpoints`) rolls it out like any other endpoint. The key never
reaches Git, status, an outcome or a log line, and the daemon's log redaction knows it
from the moment it is resolved.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from reconciler.core.render import cloud_gateway as gateway_render
from reconciler.core.render.local_command import render_local_command
from reconciler.core.render.placeholders import RenderError
from reconciler.drivers import secrets
from reconciler.drivers.clusters import protocol
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext
from reconciler.specs.deployment import DeploymentSpec
from reconciler.specs.template import DeploymentTemplateSpec
from reconciler.steps import bookkeeping
from reconciler.steps import cloud_endpoints as cloud

KEY_ENV = gateway_render.KEY_ENV
GATEWAY_TEMPLATE = gateway_render.GATEWAY_TEMPLATE


@runtime_checkable
class SecretValues(Protocol):
    """The secret store as a gateway needs it: a value by name."""

    def resolve(self, name: str) -> str: ...


class GatewayRefused(Exception):
    """The gateway cannot be built; ``outcome`` says how the step ends."""

    def __init__(self, outcome: outcomes.Outcome) -> None:
        super().__init__(str(outcome))
        self.outcome = outcome


@dataclasses.dataclass(frozen=True)
class Gateway:
    """A gateway endpoint ready to roll out, and what its status tells of it."""

    endpoint: protocol.EndpointSpec
    status: Mapping[str, Any]


def gateway_endpoint(
    ctx: StepContext,
    *,
    name: str,
    spec: DeploymentSpec,
    source: Mapping[str, Any],
    template_name: str,
    template: DeploymentTemplateSpec,
    facts: cloud.CredentialFacts,
    owner_labels: Mapping[str, str],
) -> Gateway:
    """The gateway endpoint of cloud Deployment ``name`` (``source``: its Model's
    ``spec.source``); GatewayRefused with the step's outcome when it cannot run."""
    who = f"Deployment/{name}"
    if not gateway_render.is_gateway(template.model_dump(mode="json")):
        raise GatewayRefused(
            outcomes.Stalled(
                f"{who}: DeploymentTemplate/{template_name} is no gateway template (its "
                "runtime.command takes no {upstream_url}); a cloud model on a cluster runs "
                f"one, e.g. the built-in {gateway_render.GATEWAY_TEMPLATE}"
            )
        )
    try:
        credential = cloud.checked_credential(
            ctx, who=who, model=spec.model, credential=spec.credential, source=source, facts=facts
        )
    except cloud.CredentialRefused as refused:
        raise GatewayRefused(refused.outcome) from None
    credential_spec = facts.credential(credential) or {}
    base_url = credential_spec.get("base_url")
    try:
        found = gateway_render.upstream(
            provider=str(source.get("provider") or ""),
            uri=str(source.get("uri")),
            base_url=base_url if isinstance(base_url, str) else None,
        )
        rendered = render_local_command(
            template_name=template_name,
            template=template,
            deployment_name=name,
            deployment=spec,
            model_path=None,
            extra_values=gateway_render.gateway_values(found, daemon_python=sys.executable),
        )
    except RenderError as exc:
        raise GatewayRefused(outcomes.Stalled(f"{who}: {exc}")) from exc
    secret = str(credential_spec.get("secret"))
    _key(ctx, who=who, secret=secret)  # present and readable now: else stall before starting
    resources = template.resources
    endpoint = protocol.EndpointSpec(
        name=name,
        owner_labels=dict(owner_labels),
        image=template.runtime.image,
        command=rendered.argv,
        args=(),
        env=dict(rendered.env),
        secret_env={KEY_ENV: secret},  # the driver resolves it at each start; never stored
        port=template.runtime.port,
        health_path=rendered.health_path,
        resources=protocol.WorkerResources(
            gpus=0,
            cpu=None if resources.cpu is None else str(resources.cpu),
            memory=None if resources.memory is None else str(resources.memory),
        ),
        workers=spec.workers or 1,
        strategy=spec.strategy,
    )
    ctx.log.info(
        f"{who}: a gateway to {found.provider} ({found.model} at {found.endpoint_url}) "
        f"with Credential/{credential}"
    )
    status = {
        "provider": found.provider,
        "provider_model": found.model,
        "upstream_url": found.endpoint_url,
        "credential": credential,
        "gateway": template_name,
    }
    return Gateway(endpoint=endpoint, status=status)


def _key(ctx: StepContext, *, who: str, secret: str) -> str:
    store = ctx.services.extra.get(bookkeeping.SECRETS_SERVICE)
    if not isinstance(store, SecretValues):
        raise GatewayRefused(
            outcomes.Stalled("SecretNotFound: no secret store is configured on this daemon")
        )
    try:
        return store.resolve(secret)
    except secrets.SecretNotFound as exc:
        raise GatewayRefused(outcomes.Stalled(f"SecretNotFound: {who}: {exc}")) from None
    except secrets.SecretError as exc:
        raise GatewayRefused(outcomes.Stalled(f"SecretUnreadable: {who}: {exc}")) from None
