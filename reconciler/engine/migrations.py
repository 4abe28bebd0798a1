"""Versioned schema of the state database, and how an older database is brought up to date.

The daemon's state outlives its code: a database written by an older release must open
(and be upgraded in place) under a newer one, and a database written by a newer release
must be refused rather than misread. Each migration is an ordered list of statements run
in one transaction together with the version bump, so a crash mid-upgrade leaves the
previous version intact.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

_EXECUTION_STATUSES = "'queued','running','succeeded','failed','stalled','cancelled','superseded'"
_STEP_STATUSES = "'pending','running','done','failed','stalled','skipped','cancelled'"

_V1 = (
    """
    CREATE TABLE objects (
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        spec_hash TEXT,
        revision TEXT,
        phase TEXT,
        status TEXT NOT NULL DEFAULT '{}',
        updated_at TEXT NOT NULL,
        PRIMARY KEY (kind, name)
    )
    """,
    f"""
    CREATE TABLE executions (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        action TEXT NOT NULL,
        revision TEXT NOT NULL,
        spec_hash TEXT NOT NULL,
        cluster TEXT,
        chain TEXT NOT NULL,
        params TEXT NOT NULL DEFAULT '{{}}',
        status TEXT NOT NULL CHECK (status IN ({_EXECUTION_STATUSES})),
        error TEXT,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT
    )
    """,
    "CREATE INDEX executions_by_object ON executions (kind, name)",
    "CREATE INDEX executions_by_status ON executions (status)",
    f"""
    CREATE TABLE steps (
        execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
        node_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        type TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ({_STEP_STATUSES})),
        attempts INTEGER NOT NULL DEFAULT 0,
        inputs TEXT,
        outputs TEXT,
        error TEXT,
        logs TEXT NOT NULL DEFAULT '',
        started_at TEXT,
        finished_at TEXT,
        next_attempt_at TEXT,
        PRIMARY KEY (execution_id, node_id)
    ) WITHOUT ROWID
    """,
)

_V2 = (
    """
    CREATE TABLE api_tasks (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL,
        result TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )
    """,
    "CREATE INDEX api_tasks_by_kind ON api_tasks (kind, status)",
    """
    CREATE TABLE daemon_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )
    """,
)

# What started an execution (on_change, manual, schedule, api, resync): status files and
# the API list it, and schedules tell their own runs apart by it.
_V3 = ("ALTER TABLE executions ADD COLUMN trigger TEXT NOT NULL DEFAULT 'on_change'",)

# Fencing of a sharded daemon: the lease a step's latest attempt started under
# (``replica@lease#transitions``), NULL on a daemon that is not sharded.
_V4 = ("ALTER TABLE steps ADD COLUMN fence TEXT",)

MIGRATIONS: tuple[Sequence[str], ...] = (_V1, _V2, _V3, _V4)
"""Migration N (1-based) brings a database from version N-1 to N. Append only."""

LATEST_VERSION = len(MIGRATIONS)


class SchemaVersionError(RuntimeError):
    """The database was written by a newer release than this one."""


def current_version(conn: sqlite3.Connection) -> int:
    """The schema version of ``conn``'s database; 0 for an empty one."""
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if row is None:
        return 0
    version = conn.execute("SELECT version FROM schema_version").fetchone()
    return int(version[0]) if version is not None else 0


def migrate(
    conn: sqlite3.Connection,
    *,
    location: str,
    migrations: Sequence[Sequence[str]] = MIGRATIONS,
    target: int | None = None,
) -> int:
    """Upgrade the database to ``target`` (default: the latest); return the version reached.

    ``conn`` must be in autocommit mode (``isolation_level=None``): each migration runs in
    its own ``BEGIN IMMEDIATE`` transaction.
    """
    goal = len(migrations) if target is None else target
    version = current_version(conn)
    if version > len(migrations):
        raise SchemaVersionError(
            f"state database {location} has schema version {version}, but this reconciler "
            f"only knows versions up to {len(migrations)}: run a newer reconciler release, "
            "or point --state-dir at another directory"
        )
    while version < goal:
        statements = migrations[version]
        conn.execute("BEGIN IMMEDIATE")
        try:
            if version == 0:
                conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            for statement in statements:
                conn.execute(statement)
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version + 1,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        version += 1
    return version
