"""The CLI's client of the daemon's HTTP API: where it is, who we are, one JSON call.

``--url`` / ``$RECONCILER_URL`` (default ``http://127.0.0.1:8080``; ``HOST:PORT`` alone
means ``http://HOST:PORT``) and ``--token`` / ``$RECONCILER_TOKEN`` (the environment keeps
the token out of ``ps``). Errors come back as :class:`ApiCallError` with the server's own
problem detail and what to do about it (a 401 names ``$RECONCILER_TOKEN``), never the
token.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

URL_ENV = "RECONCILER_URL"
TOKEN_ENV = "RECONCILER_TOKEN"
DEFAULT_URL = "http://127.0.0.1:8080"
TIMEOUT_S = 30.0

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class ApiCallError(Exception):
    """A call that failed: the server said no, or could not be reached.

    ``status`` is the HTTP status of a refusal (None when no answer came back).
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def add_server_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=None,
        help=f"the daemon's API, e.g. http://127.0.0.1:8080 or 127.0.0.1:8080 "
        f"(default ${URL_ENV} or {DEFAULT_URL})",
    )
    parser.add_argument(
        "--token", default=None, help=f"bearer token (default ${TOKEN_ENV}; prefer the variable)"
    )


def base_url(text: str) -> str:
    """``text`` as the API's base URL: ``127.0.0.1:8080`` and ``localhost:8080`` become
    ``http://...``; a scheme other than http(s) is a ValueError naming the form to use."""
    url = text.strip().rstrip("/")
    if not _SCHEME.match(url):
        url = "http://" + url
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(
            f"--url {text!r} is not the daemon's address; give http://HOST:PORT "
            "(or HOST:PORT), e.g. http://127.0.0.1:8080"
        )
    return url


class ApiClient:
    """Blocking JSON calls to one daemon."""

    def __init__(self, *, url: str, token: str | None, timeout_s: float = TIMEOUT_S) -> None:
        self._base = base_url(url)
        self._token = token
        self._timeout_s = timeout_s

    @property
    def base(self) -> str:
        return self._base

    @classmethod
    def from_args(
        cls, args: argparse.Namespace, *, environ: Mapping[str, str] | None = None
    ) -> ApiClient:
        """Raise ValueError for a ``--url`` that is no HTTP address."""
        env = os.environ if environ is None else environ
        url = args.url or env.get(URL_ENV) or DEFAULT_URL
        token = args.token or env.get(TOKEN_ENV) or None
        return cls(url=url, token=token)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self._base + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            message = f"{method} {path}: {exc.code} {_detail(exc)}"
            raise ApiCallError(message + _advice(exc.code, self._token), status=exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiCallError(
                f"cannot reach the daemon at {self._base}: {reason} (is it running with an "
                f"api: section or --listen? set --url or ${URL_ENV})"
            ) from None
        except ValueError:
            raise ApiCallError(f"{method} {path}: the answer is not JSON") from None

    def get(self, path: str, **query: str) -> Any:
        suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
        return self.call("GET", path + suffix)


def _advice(status: int, token: str | None) -> str:
    if status == 401 and token is None:
        return f" (no token given: set ${TOKEN_ENV}, or --token, to one of the daemon's api.tokens)"
    if status == 401:
        return f" (check ${TOKEN_ENV} or --token: the daemon knows no such token)"
    if status == 403 and token is not None:
        return f" (the token in ${TOKEN_ENV} or --token needs a higher role for this)"
    return ""


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
    except ValueError:
        return str(exc.reason)
    detail = body.get("detail") if isinstance(body, dict) else None
    return detail if isinstance(detail, str) else str(exc.reason)


def quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")
