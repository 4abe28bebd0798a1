"""Each route declared once: method, path, summary, role, request and answers by status.

A surface keeps its routes in a :class:`RouteTable`; ``@routes.get(...)`` (and ``post``,
``put``, ``delete``) declares a route and binds its handler, ``routes.declare(...)``
declares one whose handler is made later (a closure over the app's collaborators) and is
given to :meth:`RouteTable.add_to`. The aiohttp app is built from these declarations and
the OpenAPI document is generated from the very same ones
(:mod:`reconciler.api.shapes.document`), so a route cannot be served undocumented.

A shape is anything pydantic can describe: a model, a union of models, ``dict[str, Any]``
for a free-form object, ``str`` for text.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, Required, TypedDict, Unpack

from aiohttp import web
from pydantic import BaseModel

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Method = Literal["GET", "POST", "PUT", "DELETE"]
Role = Literal["viewer", "operator", "editor", "admin"]
JSON = "application/json"
PROBLEM = "application/problem+json"

ERROR_WORDS: Mapping[int, str] = {
    400: "a query parameter or body is malformed",
    401: "no bearer token, or one that matches no configured token",
    403: "the token's role is too low, or the API is read-only",
    404: "no such object, execution, workflow or ref",
    409: "the request conflicts with what is running",
    413: "the body is too large",
    422: "the body is well-formed but not acceptable",
    429: "too many requests",
    503: "not ready",
}
"""What each error status means, as every operation's answers say it."""
_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclasses.dataclass(frozen=True)
class Answer:
    """One answer of a route: what it means and its body's shape by media type."""

    description: str
    shape: Any = None
    """The body's type (a model, a union, ``dict[str, Any]``); None: the answer has none."""
    media: str = JSON
    more: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Other media types the same status may carry, each with its shape."""

    def content(self) -> dict[str, Any]:
        """Media type -> shape, for every media type of this answer."""
        found = {self.media: self.shape} if self.shape is not None else {}
        return {**found, **self.more}


@dataclasses.dataclass(frozen=True)
class Body:
    """A request body: its shape by media type, and whether it must be sent."""

    content: Mapping[str, Any]
    required: bool = True


def json_body(shape: Any, *, required: bool = True) -> Body:
    """A JSON request body of ``shape``."""
    return Body({JSON: shape}, required=required)


@dataclasses.dataclass(frozen=True, eq=False)
class Route:
    """One operation: where it is served, who may call it, what it takes and answers."""

    method: Method
    path: str
    """The OpenAPI path template (``/api/v1/objects/{kind}/{name}``)."""
    summary: str
    role: Role | None
    """The token role it needs (None: no token, e.g. probes and signed webhooks)."""
    answers: Mapping[int, Answer]
    errors: tuple[int, ...] = ()
    """Statuses answered with a problem document; 400 is added to every route (a query
    parameter the route does not take)."""
    body: Body | None = None
    query: type[BaseModel] | None = None
    """The query parameters, one field each (a list field may repeat)."""
    patterns: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Path parameter -> the regular expression its value matches (served and documented)."""
    description: str | None = None
    role_note: str | None = None
    """``x-role`` when the role depends on the request (e.g. one action needs more)."""
    open_query: bool = False
    """The route reads query parameters the document cannot list (it checks them itself)."""

    @property
    def router_path(self) -> str:
        """The path as aiohttp routes it (``{name:regex}`` where a pattern is declared)."""

        def routed(found: re.Match[str]) -> str:
            name = found.group(1)
            pattern = self.patterns.get(name)
            return "{" + name + (f":{pattern}" if pattern else "") + "}"

        return _PARAMETER.sub(routed, self.path)

    @property
    def path_parameters(self) -> tuple[str, ...]:
        return tuple(_PARAMETER.findall(self.path))

    @property
    def x_role(self) -> str | None:
        """What the document says in ``x-role``: any role above viewer, or the note."""
        if self.role_note is not None:
            return self.role_note
        return self.role if self.role not in (None, "viewer") else None


class Declared(TypedDict, total=False):
    """What a route declares besides its method, path and summary (see :class:`Route`)."""

    role: Required[Role | None]
    answers: Required[Mapping[int, Answer]]
    errors: tuple[int, ...]
    body: Body | None
    query: type[BaseModel] | None
    patterns: Mapping[str, str] | None
    description: str | None
    role_note: str | None
    open_query: bool


class RouteTable:
    """The routes of one surface, in the order they are served and documented."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self._handlers: dict[int, Handler] = {}

    def declare(
        self,
        method: Method,
        path: str,
        summary: str,
        *,
        role: Role | None,
        answers: Mapping[int, Answer],
        errors: tuple[int, ...] = (),
        body: Body | None = None,
        query: type[BaseModel] | None = None,
        patterns: Mapping[str, str] | None = None,
        description: str | None = None,
        role_note: str | None = None,
        open_query: bool = False,
    ) -> Route:
        """Declare a route whose handler is given later, to :meth:`add_to`."""
        clash = [r for r in self.routes if (r.method, r.path) == (method, path)]
        if clash:
            raise ValueError(f"{method} {path} is declared twice")
        route = Route(
            method=method,
            path=path,
            summary=summary,
            role=role,
            answers=dict(answers),
            errors=errors,
            body=body,
            query=query,
            patterns=dict(patterns or {}),
            description=description,
            role_note=role_note,
            open_query=open_query,
        )
        self.routes.append(route)
        return route

    def route(
        self, method: Method, path: str, summary: str, **declared: Unpack[Declared]
    ) -> Callable[[Handler], Handler]:
        """Declare a route and bind the decorated handler to it."""

        def bind(handler: Handler) -> Handler:
            route = self.declare(method, path, summary, **declared)
            self._handlers[id(route)] = handler
            return handler

        return bind

    def get(
        self, path: str, summary: str, **declared: Unpack[Declared]
    ) -> Callable[[Handler], Handler]:
        return self.route("GET", path, summary, **declared)

    def post(
        self, path: str, summary: str, **declared: Unpack[Declared]
    ) -> Callable[[Handler], Handler]:
        return self.route("POST", path, summary, **declared)

    def put(
        self, path: str, summary: str, **declared: Unpack[Declared]
    ) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, summary, **declared)

    def delete(
        self, path: str, summary: str, **declared: Unpack[Declared]
    ) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, summary, **declared)

    def add_to(self, app: web.Application, handlers: Mapping[Route, Handler] | None = None) -> None:
        """Serve every route of this table on ``app`` (a GET answers HEAD too);
        ``handlers`` gives those declared without one."""
        given = {id(route): handler for route, handler in (handlers or {}).items()}
        for route in self.routes:
            handler = given.get(id(route)) or self._handlers.get(id(route))
            if handler is None:
                raise ValueError(f"{route.method} {route.path} has no handler")
            if route.method == "GET":
                app.router.add_get(route.router_path, handler)
            else:
                app.router.add_route(route.method, route.router_path, handler)
