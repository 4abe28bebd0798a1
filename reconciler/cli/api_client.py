"""The CLI's client of the daemon's HTTP API: where it is, who we are, one JSON call.

``--url`` / ``$RECONCILER_URL`` (default ``http://127.0.0.1:8080``) and ``--token`` /
``$RECONCILER_TOKEN`` (the environment keeps the token out of ``ps``). Errors come back
as :class:`ApiCallError` with the server's own problem detail, never the token.
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

URL_ENV = "RECONCILER_URL"
TOKEN_ENV = "RECONCILER_TOKEN"
DEFAULT_URL = "http://127.0.0.1:8080"
TIMEOUT_S = 30.0


class ApiCallError(Exception):
    """A call that failed: the server said no, or could not be reached."""


def add_server_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", default=None, help=f"the daemon's API (default ${URL_ENV} or {DEFAULT_URL})"
    )
    parser.add_argument(
        "--token", default=None, help=f"bearer token (default ${TOKEN_ENV}; prefer the variable)"
    )


class ApiClient:
    """Blocking JSON calls to one daemon."""

    def __init__(self, *, url: str, token: str | None) -> None:
        self._base = url.rstrip("/")
        self._token = token

    @classmethod
    def from_args(
        cls, args: argparse.Namespace, *, environ: Mapping[str, str] | None = None
    ) -> ApiClient:
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
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise ApiCallError(f"{method} {path}: {exc.code} {_detail(exc)}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiCallError(
                f"cannot reach the daemon at {self._base}: {reason} (set --url or ${URL_ENV})"
            ) from None
        except ValueError:
            raise ApiCallError(f"{method} {path}: the answer is not JSON") from None

    def get(self, path: str, **query: str) -> Any:
        suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
        return self.call("GET", path + suffix)


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
    except ValueError:
        return str(exc.reason)
    detail = body.get("detail") if isinstance(body, dict) else None
    return detail if isinstance(detail, str) else str(exc.reason)


def quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")
