"""``/api/v1/openapi.json``: the OpenAPI 3.1 document of every route this app serves.

Generated from the routes each surface declares (:mod:`reconciler.api.shapes.registry`)
and the pydantic models they name, so each response shape is the model the route answers
with. A test checks that the document names exactly the routes the app has, and the API
tests validate every answer they get against it.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from aiohttp import web

from reconciler import __version__
from reconciler.api import metrics, native, shard_routes, webhooks, write_routes
from reconciler.api.compat import (
    deployed_workflow,
    flow_framework,
    inference_tasks,
    wizard,
    workflow_dashboard,
)
from reconciler.api.shapes import document as generated
from reconciler.api.shapes.registry import Answer, Route, RouteTable
from reconciler.api.state import json_response

_ROLES = "viewer < operator < editor < admin"

routes = RouteTable()
SERVE = routes.declare(
    "GET",
    "/api/v1/openapi.json",
    "This document",
    role=None,
    answers={200: Answer("OpenAPI 3.1", dict[str, Any])},
)

TABLES: tuple[RouteTable, ...] = (
    native.routes,
    write_routes.routes,
    metrics.routes,
    routes,
    webhooks.routes,
    workflow_dashboard.routes,
    deployed_workflow.routes,
    inference_tasks.routes,
    wizard.routes,
    flow_framework.routes,
    shard_routes.routes,
)
"""Every surface's routes, in the order the document lists them."""


def declared() -> list[Route]:
    """Every route the API serves, as declared."""
    return [route for table in TABLES for route in table.routes]


@functools.cache
def _document() -> dict[str, Any]:
    info = {
        "title": "reconciler",
        "version": __version__,
        "description": "GitOps reconciler for the ML model lifecycle. Bearer tokens carry "
        f"roles ({_ROLES}); reads need viewer, POSTs operator, writes editor (x-role).",
    }
    return generated.build(declared(), info=info)


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (a copy: the caller may change it)."""
    return copy.deepcopy(_document())


def query_parameters() -> dict[tuple[str, str], tuple[frozenset[str], frozenset[str]]]:
    """(METHOD, path template) -> (the query parameters the route takes, those of them
    that may repeat); routes that check their own query parameters are left out."""
    return {
        (route.method, route.path): generated.query_names(route)
        for route in declared()
        if not route.open_query
    }


def add_routes(app: web.Application) -> None:
    served = _document()

    async def openapi(request: web.Request) -> web.Response:
        return json_response(request, served)

    routes.add_to(app, {SERVE: openapi})
