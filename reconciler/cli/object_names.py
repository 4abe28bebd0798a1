"""Naming objects on the command line the way people type them.

``reconciler status deployment/embeddings`` means ``Deployment/embeddings``: a kind is
matched without regard to case, singular or plural. A name the daemon does not know gets
a did-you-mean from the names it does know, asked of its API only once the first answer
was 404, so a correct name costs one call.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from reconciler.cli.api_client import ApiCallError, ApiClient
from reconciler.specs.kinds import KINDS

PAGE = 500


def kind_of(text: str) -> str:
    """The kind ``text`` names (``deployment``, ``Deployments``); ValueError otherwise."""
    wanted = text.strip().lower()
    for kind in KINDS:
        if wanted in (kind.lower(), kind.lower() + "s"):
            return kind
    hint = closest(text, KINDS) or closest(text.capitalize(), KINDS)
    suggestion = f" (did you mean '{hint}'?)" if hint else ""
    raise ValueError(f"unknown kind '{text}'{suggestion}; one of {', '.join(KINDS)}")


def split_key(text: str) -> tuple[str, str]:
    """``KIND/NAME`` as (kind, name) with the kind normalised; ValueError otherwise."""
    kind, sep, name = text.partition("/")
    if not sep or not kind or not name:
        raise ValueError(f"{text!r} is not KIND/NAME, e.g. Deployment/embeddings")
    return kind_of(kind), name


def closest(word: str, candidates: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def names_of(client: ApiClient, kind: str) -> list[str]:
    """Every name of ``kind`` the daemon knows (in Git or recorded), all pages."""
    names: list[str] = []
    token: str | None = None
    while True:
        query = {"kind": kind, "limit": str(PAGE), **({"continue": token} if token else {})}
        page = client.get("/api/v1/objects", **query)
        names += [str(item["name"]) for item in page["items"]]
        token = page.get("continue")
        if not token:
            return names


def not_found_hint(client: ApiClient, kind: str, name: str) -> str:
    """What to say after a 404 for ``kind/name``: the closest known name, or the list."""
    try:
        known = names_of(client, kind)
    except ApiCallError:
        return ""
    if not known:
        return f"; the daemon knows no {kind} at all"
    hint = closest(name, known)
    if hint is not None:
        return f" (did you mean {kind}/{hint}?)"
    shown = ", ".join(sorted(known)[:10]) + (", ..." if len(known) > 10 else "")
    return f"; known {kind} names: {shown}"
