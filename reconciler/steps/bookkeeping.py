"""Steps for objects that change nothing outside: record a spec, check a named secret.

``record_spec`` is the chain of Projects, templates and manual Workflows: applying them
means the daemon now knows them. ``check_secret`` resolves a Credential's secret on the
daemon host (docs/operations.md "Secrets" order) and stalls with SecretNotFound when it is missing,
SecretUnreadable when it is there but cannot be used (a folder, no permission, not text);
the value is never logged or returned.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from reconciler.drivers import secrets
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext

SECRETS_SERVICE = "secrets"


@runtime_checkable
class SecretLookup(Protocol):
    def lookup(self, name: str) -> secrets.SecretVerdict: ...

    def places(self, name: str) -> list[str]: ...


async def record_spec(ctx: StepContext) -> outcomes.Outcome:
    ctx.log.info(f"recorded {ctx.object_key} at revision {ctx.revision[:12]}")
    return outcomes.Done()


async def check_secret(ctx: StepContext) -> outcomes.Outcome:
    name = ctx.inputs.get("secret")
    if not isinstance(name, str) or not name:
        return outcomes.Stalled(f"{ctx.object_key} names no secret")
    lookup = ctx.services.extra.get(SECRETS_SERVICE)
    if not isinstance(lookup, SecretLookup):
        return outcomes.Stalled("SecretNotFound: no secret store is configured on this daemon")
    try:
        verdict = lookup.lookup(name)
    except ValueError as exc:
        return outcomes.Stalled(f"SecretNotFound: invalid secret name {name!r}: {exc}")
    if verdict.state is secrets.SecretState.UNREADABLE:
        return outcomes.Stalled(f"SecretUnreadable: {verdict.problem}")
    if not verdict.found:
        places = ", ".join(lookup.places(name))
        return outcomes.Stalled(f"SecretNotFound: secret '{name}' is not in {places}")
    ctx.log.info(f"secret '{name}' is present")
    return outcomes.Done()
