"""Bearer tokens and roles: who is calling, and may they do this.

Tokens live in the config as SHA-256 hex digests (never the token); a presented token is
hashed and compared with every digest in constant time. Roles are ordered viewer <
operator < editor < admin. No credentials, or credentials that match nothing, is 401;
a known caller whose role is too low is 403. With no tokens configured the API is
read-only: anyone on loopback reads, nobody writes. A config reload replaces the tokens
in place. No token ever appears in a response or a log line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from collections.abc import Iterable

from reconciler.api.problems import Forbidden, Unauthorized
from reconciler.daemon.config import ROLES, ApiToken, Role, role_allows

ANONYMOUS = "anonymous"


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who made a request: a token's name and role, or anonymous (role None)."""

    name: str
    role: Role | None


def token_digest(token: str) -> str:
    """The digest the config stores for ``token``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenBook:
    """The configured tokens; :meth:`authorize` answers for one request."""

    def __init__(self, tokens: Iterable[ApiToken]) -> None:
        self._entries = tuple((t.sha256.lower(), t.name, t.role) for t in tokens)

    def replace(self, tokens: Iterable[ApiToken]) -> None:
        """Answer from ``tokens`` from now on (a config reload): a token no longer listed
        is refused at its next request, a new one is accepted."""
        self._entries = tuple((t.sha256.lower(), t.name, t.role) for t in tokens)

    @property
    def read_only(self) -> bool:
        """No tokens: reads are open (loopback only), writes are refused."""
        return not self._entries

    def _identify(self, header: str | None) -> Caller | None:
        if header is None:
            return None
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("use 'Authorization: Bearer <token>'")
        digest = token_digest(token)
        found: Caller | None = None
        for stored, name, role in self._entries:  # every digest, so timing tells nothing
            if hmac.compare_digest(stored, digest):
                found = Caller(name, role)
        if found is None:
            raise Unauthorized("the bearer token matches no configured api.tokens entry")
        return found

    def authorize(self, header: str | None, required: Role) -> Caller:
        """The caller if allowed ``required``; raise Unauthorized or Forbidden."""
        if self.read_only:
            if header is not None:
                self._identify(header)  # always 401: nothing can match
            if required != "viewer":
                raise Forbidden(
                    "the API is read-only: no api.tokens are configured, so nothing may "
                    f"need the {required!r} role; add a token with that role to the config"
                )
            return Caller(ANONYMOUS, None)
        caller = self._identify(header)
        if caller is None:
            raise Unauthorized(
                "this route needs a bearer token (Authorization: Bearer ...; the reconciler "
                "CLI sends $RECONCILER_TOKEN or --token)"
            )
        assert caller.role is not None
        if not role_allows(caller.role, required):
            raise Forbidden(
                f"token {caller.name!r} has role {caller.role!r}; this needs {required!r} "
                f"or above ({' < '.join(ROLES)})"
            )
        return caller
