"""Domain errors of the API and the one JSON problem body (RFC 9457) each becomes.

Handlers raise these; the error middleware in :mod:`reconciler.api.app` turns each into a
response, so a status code and its wording are decided in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

PROBLEM_TYPE = "application/problem+json"


class ApiError(Exception):
    """An error with an HTTP status and a message a person can act on."""

    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad Request"

    def __init__(
        self,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        return problem_body(self.status, self.title, self.detail, **self.extra)


class BadRequest(ApiError):
    status, title = 400, "Bad Request"


class Unauthorized(ApiError):
    status, title = 401, "Unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="reconciler"'})


class Forbidden(ApiError):
    status, title = 403, "Forbidden"


class NotFound(ApiError):
    status, title = 404, "Not Found"


class Conflict(ApiError):
    status, title = 409, "Conflict"


class PayloadTooLarge(ApiError):
    status, title = 413, "Content Too Large"


class Unprocessable(ApiError):
    status, title = 422, "Unprocessable Content"


class TooManyRequests(ApiError):
    status, title = 429, "Too Many Requests"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after_s))})


class Unavailable(ApiError):
    status, title = 503, "Service Unavailable"


def problem_body(status: int, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    """The JSON problem document: ``type``, ``title``, ``status``, ``detail`` (+ extras)."""
    return {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
