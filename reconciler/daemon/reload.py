"""What a config reload (SIGHUP, ``systemctl reload``) may change while the daemon runs.

A reload is all or nothing: the new file is compared with the running config key by key
(``api.tokens``, ``repo.poll_interval``, ...). Keys the running parts read afresh, or
that have a hook to take the new value (the API's token book and write mode), apply at
once; a changed key that was wired into a part at start (the state repo, the state
directory, the listen address, the executor's limits) needs a restart, and then the
whole reload is refused with those keys named, so the daemon never runs on a config
that is half old and half new. A token removed from the file stops working as soon as
the reload is applied.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel

from reconciler.daemon.config import Config

LIVE_KEYS: frozenset[str] = frozenset(
    {
        "repo.poll_interval",  # read at every poll
        "resync_interval",  # read at every resync tick
        "api.tokens",  # the API's token book is replaced
        "api.project_roles",  # replaced with the token book
        "api.write_mode",  # the API's writes are switched
        "api.webhook_secret",  # read at every webhook
        "api.metrics_public",  # read at every scrape
        "logging.level",  # logging is configured again
        "logging.format",
    }
)
"""Dotted config keys a reload applies while the daemon runs; every other key needs a
restart (docs/config.md says which is which)."""

API_SECTION = "api"
SHARDING_SECTION = "sharding"


@dataclasses.dataclass(frozen=True)
class ReloadDecision:
    """The keys a reload changes, and those of them that only a restart can apply."""

    changed: tuple[str, ...]
    restart_needed: tuple[str, ...]
    reasons: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def refused(self) -> bool:
        return bool(self.restart_needed)

    def explain(self) -> str:
        """One line naming each key that needs a restart, and why where it is not plain."""
        parts = [
            f"{key} ({self.reasons[key]})" if key in self.reasons else key
            for key in self.restart_needed
        ]
        return (
            "these keys changed but take effect only at a restart: "
            + ", ".join(parts)
            + "; restore them and reload, or restart (systemctl restart reconciler)"
        )


def _leaves(value: BaseModel, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every field of ``value`` as (dotted key, value), sections opened up; a list
    (``api.tokens``, ``repo.paths``) is one key."""
    for name in type(value).model_fields:
        field = getattr(value, name)
        key = f"{prefix}{name}"
        if isinstance(field, BaseModel):
            yield from _leaves(field, key + ".")
        else:
            yield key, field


def changed_keys(old: Config, new: Config) -> tuple[str, ...]:
    """The dotted keys whose values differ between ``old`` and ``new``, in field order."""
    before = dict(_leaves(old))
    return tuple(key for key, value in _leaves(new) if before.get(key) != value)


def decide(old: Config, new: Config, *, api_running: bool) -> ReloadDecision:
    """Whether ``new`` can replace ``old`` in a running daemon.

    ``api_running``: the daemon serves the HTTP API. The API is started only when the
    config that started the daemon had an ``api:`` section (or ``--listen``), so adding
    that section to a daemon without an API, or removing it from one with an API, needs
    a restart too.
    """
    changed = changed_keys(old, new)
    restart = [key for key in changed if key not in LIVE_KEYS]
    reasons: dict[str, str] = {}
    has_section = API_SECTION in new.model_fields_set
    if has_section != api_running:
        if api_running:
            reasons[API_SECTION] = "the api: section was removed; the API stops at a restart"
        else:
            reasons[API_SECTION] = (
                "the API is not running (the daemon started without an api: section); "
                "it starts at a restart"
            )
        restart = [API_SECTION, *(k for k in restart if not k.startswith(API_SECTION + "."))]
    if new.sharded != old.sharded:
        reasons[SHARDING_SECTION] = (
            "the sharding: section was added or removed; a replica joins or leaves the "
            "shards only at a restart"
        )
        restart = [SHARDING_SECTION, *(k for k in restart if not k.startswith("sharding."))]
    return ReloadDecision(changed=changed, restart_needed=tuple(restart), reasons=reasons)
