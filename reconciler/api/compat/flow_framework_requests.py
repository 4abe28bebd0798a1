"""What a flow framework request gives: query flags, substitution values, provision
parameters and the template body, each checked where a problem can name its field.

Create takes any query parameter besides ``provision`` and ``validation`` as a value for
the template's ``${{ name }}`` expression of that name (that API's user-provided
substitutions), allowed with ``provision=true`` only and checked against the template's
params before anything is committed or stored; ``_provision`` takes them as query
parameters too (and, ours, as the fields of a JSON body).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from reconciler.api.compat import flow_framework_template as ff_template
from reconciler.api.problems import BadRequest, Unprocessable
from reconciler.core.validation.inline_secrets import find_inline_secrets


def flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "false").lower()
    if value not in ("true", "false"):
        raise BadRequest(f"query parameter {name!r} must be true or false")
    return value == "true"


def validating(request: web.Request) -> bool:
    """``validation=all`` (the default) validates; any other value allows a draft."""
    return request.query.get("validation", "all") == "all"


async def template_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    return ff_template.parse_body(raw, request.content_type)


def provision_params(request: web.Request, body: Mapping[str, Any]) -> dict[str, Any]:
    """``_provision``'s substitution values: its query parameters (as that API takes
    them) and the fields of its JSON body (ours too); a name given both ways, or twice
    in the query, is refused."""
    for name, value in body.items():
        if not isinstance(value, str | int | float | bool) and value is not None:
            raise Unprocessable(
                f"{name}: a provision parameter must be a string, number, boolean or null"
            )
    params = dict(body)
    for name in request.query:
        if len(request.query.getall(name)) > 1:
            raise BadRequest(f"query parameter {name!r} is given more than once")
        if name in body:
            raise BadRequest(
                f"{name}: given both as a query parameter and in the body; give it once"
            )
        params[name] = request.query[name]
    return params


CREATE_QUERY = ("provision", "validation")


def substitutions(request: web.Request, *, provision: bool) -> dict[str, str]:
    """Create's query parameters besides provision and validation: values for the
    template's ``${{ name }}`` expressions, allowed with provision=true only."""
    params: dict[str, str] = {}
    for name in request.query:
        if name in params or name in CREATE_QUERY:
            if len(request.query.getall(name)) > 1:
                raise BadRequest(f"query parameter {name!r} is given more than once")
            continue
        params[name] = request.query[name]
    if params and not provision:
        raise BadRequest(
            f"query parameter {sorted(params)[0]!r}: substitution values are allowed only "
            "with provision=true (or give them to _provision)"
        )
    return params


def no_secret_values(template: Mapping[str, Any]) -> None:
    """A draft is served back as it was saved, so it may hold no secret value (the
    connectors' credentials are taken out already; anything else is refused)."""
    for path, message in find_inline_secrets(dict(template)):
        where = ".".join(str(part) for part in path)
        raise Unprocessable(f"{where}: {message}; a draft is not saved with it")


def check_declared(document: Mapping[str, Any], params: Mapping[str, Any]) -> None:
    declared = (document.get("spec") or {}).get("user_params") or {}
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise Unprocessable(
            f"{unknown[0]}: the template has no ${{{{ {unknown[0]} }}}} expression or "
            f"user_param (it has: {', '.join(sorted(declared)) or 'none'})"
        )
