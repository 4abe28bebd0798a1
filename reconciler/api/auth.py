"""Bearer tokens and roles: who is calling, and may they do this.

Tokens live in the config as SHA-256 hex digests (never the token); a presented token is
hashed and compared with every digest in constant time. Roles are ordered viewer <
operator < editor < admin. No credentials, or credentials that match nothing, is 401;
a known caller whose role is too low is 403. With no tokens configured the API is
read-only: anyone on loopback reads, nobody writes. A config reload replaces the tokens
in place. No token ever appears in a response or a log line.

A token's name is its user; ``groups`` in its config entry are the groups that user is
in, and ``api.project_roles`` grants Project roles to users and groups. The book resolves
them once per request into :attr:`Caller.project_roles`, which
:mod:`reconciler.api.project_access` checks against a Project's ``spec.permissions``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import types
from collections.abc import Iterable, Mapping

from reconciler.api.problems import Forbidden, Unauthorized
from reconciler.daemon.config import ROLES, ApiToken, Role, RoleGrant, role_allows

ANONYMOUS = "anonymous"

ProjectRoles = Mapping[str, frozenset[str]]
"""Per Project name, the roles a caller holds there."""
Grants = Mapping[str, Mapping[str, RoleGrant]]
"""``api.project_roles``: per Project name, per role, who holds it."""
_NO_ROLES: ProjectRoles = types.MappingProxyType({})


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who made a request: a token's name (its user), role and groups, and the Project
    roles those hold; or anonymous (role None, no groups, no Project roles)."""

    name: str
    role: Role | None
    groups: frozenset[str] = frozenset()
    project_roles: ProjectRoles = dataclasses.field(
        default_factory=lambda: _NO_ROLES, compare=False
    )

    def roles_in(self, project: str) -> frozenset[str]:
        """The roles this caller holds in ``project`` (granted to its user or a group)."""
        return self.project_roles.get(project, frozenset())


def project_roles_of(name: str, groups: frozenset[str], grants: Grants) -> ProjectRoles:
    """The roles user ``name`` in ``groups`` holds, per project, under ``grants``."""
    held: dict[str, frozenset[str]] = {}
    for project, roles in grants.items():
        mine = frozenset(
            role
            for role, grant in roles.items()
            if name in grant.users or not groups.isdisjoint(grant.groups)
        )
        if mine:
            held[project] = mine
    return types.MappingProxyType(held)


def token_digest(token: str) -> str:
    """The digest the config stores for ``token``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenBook:
    """The configured tokens and Project role grants; :meth:`authorize` answers for one
    request."""

    def __init__(self, tokens: Iterable[ApiToken], *, grants: Grants | None = None) -> None:
        self._entries: tuple[tuple[str, Caller], ...] = ()
        self.replace(tokens, grants=grants)

    def replace(self, tokens: Iterable[ApiToken], *, grants: Grants | None = None) -> None:
        """Answer from ``tokens`` and ``grants`` from now on (a config reload): a token no
        longer listed is refused at its next request, a new one is accepted, and a
        changed group or grant counts from the next request."""
        entries = []
        for token in tokens:
            groups = frozenset(token.groups)
            roles = project_roles_of(token.name, groups, grants or {})
            entries.append((token.sha256.lower(), Caller(token.name, token.role, groups, roles)))
        self._entries = tuple(entries)

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
        for stored, caller in self._entries:  # every digest, so timing tells nothing
            if hmac.compare_digest(stored, digest):
                found = caller
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
