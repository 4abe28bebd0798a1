"""The durable state of the daemon: one SQLite file (WAL) in the state directory.

Executions and their steps are written here before and after every step runs, so a
daemon killed at any instant resumes where it stopped; objects, API tasks and a few
daemon-wide values (last seen and last applied revisions) live beside them. Every write
is one short ``BEGIN IMMEDIATE`` transaction; the step writes of one scheduling round
(ends, retries and starts, in the order they happened) share one (``record_steps``).
Reads return typed records, never rows.

Durability: WAL with ``synchronous=NORMAL``. A commit is in the WAL file, in the OS's
page cache, when COMMIT returns, so it survives the process being killed (kill -9, OOM,
a crash) at any instant; only a power loss or kernel crash can drop the last commits
before the next checkpoint (the database itself stays consistent). FULL would add an
fsync per commit for that case alone; a daemon host losing power also loses its running
steps, which resume from the last commit like any interrupted step.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import json
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from reconciler.core import chains
from reconciler.engine import chain_codec, migrations
from reconciler.engine.records import (
    ApiTaskId,
    ApiTaskRecord,
    ExecutionId,
    ExecutionRecord,
    ExecutionStatus,
    ObjectRecord,
    StepRecord,
    StepStatus,
    utc_now,
)

DB_FILENAME = "reconciler.db"
_DB_SUFFIXES = frozenset({".db", ".sqlite", ".sqlite3"})
MAX_STEP_LOG_CHARS = 256 * 1024
"""A step's stored log keeps its last this-many characters."""


class StoreError(RuntimeError):
    """The state database cannot be used as asked."""


class UnknownExecutionError(StoreError, KeyError):
    """No execution has this id."""


@dataclasses.dataclass(frozen=True)
class Submitted:
    """A newly stored execution and the queued ones of the same object it replaced."""

    execution: ExecutionRecord
    superseded: tuple[ExecutionRecord, ...]


def new_execution_id() -> ExecutionId:
    """A fresh execution id: a caller that records it before submitting picks it here."""
    return ExecutionId(uuid.uuid4().hex)


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def encode_json(value: Mapping[str, Any]) -> str:
    """Step inputs or outputs as stored. Raises TypeError/ValueError for non-JSON values."""
    return _dump(dict(value)) if value else "{}"


@dataclasses.dataclass(frozen=True)
class StepStart:
    """Attempt ``attempt`` of a step begins with these (encoded) inputs."""

    execution_id: str
    node_id: str
    attempt: int
    inputs_json: str
    fence: str | None = None
    """The lease this attempt starts under (a sharded daemon), recorded with it."""


@dataclasses.dataclass(frozen=True)
class StepEnd:
    """A step ended for good: done (with encoded outputs), failed or stalled."""

    execution_id: str
    node_id: str
    status: StepStatus
    outputs_json: str | None = None
    error: str | None = None
    log: str = ""


@dataclasses.dataclass(frozen=True)
class StepRetry:
    """An attempt ended retryably; the step waits, pending, until ``next_attempt_at``."""

    execution_id: str
    node_id: str
    next_attempt_at: datetime.datetime
    error: str
    log: str = ""


StepWrite = StepStart | StepEnd | StepRetry

_START_SQL = (
    "UPDATE steps SET status = 'running', attempts = ?, inputs = ?, error = NULL,"
    " started_at = ?, finished_at = NULL, next_attempt_at = NULL, fence = ?"
    " WHERE execution_id = ? AND node_id = ?"
)
_END_SQL = (
    "UPDATE steps SET status = ?, outputs = ?, error = ?, finished_at = ?,"
    " next_attempt_at = NULL, logs = CASE WHEN ? = '' THEN logs ELSE substr(logs || ?, -?) END"
    " WHERE execution_id = ? AND node_id = ?"
)
_RETRY_SQL = (
    "UPDATE steps SET status = 'pending', error = ?, finished_at = ?,"
    " next_attempt_at = ?, logs = substr(logs || ?, -?)"
    " WHERE execution_id = ? AND node_id = ?"
)


def _write_params(write: StepWrite, now: str) -> tuple[Any, ...]:
    if isinstance(write, StepStart):
        return (
            write.attempt,
            write.inputs_json,
            now,
            write.fence,
            write.execution_id,
            write.node_id,
        )
    if isinstance(write, StepEnd):
        return (
            write.status,
            write.outputs_json,
            write.error,
            now,
            write.log,
            write.log,
            MAX_STEP_LOG_CHARS,
            write.execution_id,
            write.node_id,
        )
    return (
        write.error,
        now,
        write.next_attempt_at.isoformat(),
        write.log,
        MAX_STEP_LOG_CHARS,
        write.execution_id,
        write.node_id,
    )


_WRITE_SQL: dict[type[StepWrite], str] = {
    StepStart: _START_SQL,
    StepEnd: _END_SQL,
    StepRetry: _RETRY_SQL,
}
_CHAIN_CACHE_SIZE = 8


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _time(text: str | None) -> datetime.datetime | None:
    return None if text is None else datetime.datetime.fromisoformat(text)


def _now_text() -> str:
    return utc_now().isoformat()


_EXECUTION_COLUMNS = (
    "id, kind, name, action, revision, spec_hash, cluster, chain, params, status, error, "
    "created_at, started_at, finished_at, trigger"
)
_STEP_COLUMNS = (
    "execution_id, node_id, position, type, status, attempts, inputs, outputs, error, logs, "
    "started_at, finished_at, next_attempt_at"
)


def _execution(row: sqlite3.Row, chain: chains.Chain) -> ExecutionRecord:
    created = _time(row["created_at"])
    assert created is not None
    return ExecutionRecord(
        id=ExecutionId(row["id"]),
        kind=row["kind"],
        name=row["name"],
        action=row["action"],
        revision=row["revision"],
        spec_hash=row["spec_hash"],
        cluster=row["cluster"],
        chain=chain,
        params=_load(row["params"]) or {},
        status=cast(ExecutionStatus, row["status"]),
        error=row["error"],
        created_at=created,
        started_at=_time(row["started_at"]),
        finished_at=_time(row["finished_at"]),
        trigger=row["trigger"],
    )


def _step(row: sqlite3.Row) -> StepRecord:
    return StepRecord(
        execution_id=ExecutionId(row["execution_id"]),
        node_id=row["node_id"],
        position=row["position"],
        type=row["type"],
        status=cast(StepStatus, row["status"]),
        attempts=row["attempts"],
        inputs=_load(row["inputs"]),
        outputs=_load(row["outputs"]),
        error=row["error"],
        logs=row["logs"],
        started_at=_time(row["started_at"]),
        finished_at=_time(row["finished_at"]),
        next_attempt_at=_time(row["next_attempt_at"]),
    )


class Store:
    """The state database. Open one per process; use it from one thread (the loop's).

    ``path`` is the state directory (created if missing; the file is ``reconciler.db``
    in it) or a database file ending in .db, .sqlite or .sqlite3. Opening an
    older database upgrades it; a newer one raises migrations.SchemaVersionError.
    """

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 5.0) -> None:
        target = Path(path)
        if target.is_dir() or (not target.exists() and target.suffix not in _DB_SUFFIXES):
            target = target / DB_FILENAME
        self.path = target
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                target, isolation_level=None, check_same_thread=False, timeout=busy_timeout_s
            )
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open state database {target}: {e}") from e
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            migrations.migrate(conn, location=str(target))
        except sqlite3.DatabaseError as e:
            conn.close()
            raise StoreError(f"state database {target} is unreadable: {e}") from e
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._chains: collections.OrderedDict[str, chains.Chain] = collections.OrderedDict()
        """Decoded chains of recently read executions: a stored chain never changes, and
        decoding a 10,000-node chain costs more than running many of its steps."""

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return migrations.current_version(self._conn)

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the main file (at clean shutdown)."""
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- objects -----------------------------------------------------------------------

    def put_object(
        self,
        *,
        kind: str,
        name: str,
        spec_hash: str | None,
        revision: str | None,
        phase: str | None,
        status: Mapping[str, Any],
    ) -> ObjectRecord:
        now = _now_text()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO objects (kind, name, spec_hash, revision, phase, status, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kind, name) DO UPDATE SET"
                " spec_hash = excluded.spec_hash, revision = excluded.revision,"
                " phase = excluded.phase, status = excluded.status,"
                " updated_at = excluded.updated_at",
                (kind, name, spec_hash, revision, phase, _dump(dict(status)), now),
            )
        record = self.get_object(kind, name)
        assert record is not None
        return record

    def get_object(self, kind: str, name: str) -> ObjectRecord | None:
        row = self._conn.execute(
            "SELECT * FROM objects WHERE kind = ? AND name = ?", (kind, name)
        ).fetchone()
        return None if row is None else self._object(row)

    def list_objects(self, *, kind: str | None = None) -> list[ObjectRecord]:
        if kind is None:
            rows = self._conn.execute("SELECT * FROM objects ORDER BY kind, name")
        else:
            rows = self._conn.execute("SELECT * FROM objects WHERE kind = ? ORDER BY name", (kind,))
        return [self._object(row) for row in rows]

    def delete_object(self, kind: str, name: str) -> bool:
        with self._write() as conn:
            cursor = conn.execute("DELETE FROM objects WHERE kind = ? AND name = ?", (kind, name))
        return cursor.rowcount > 0

    @staticmethod
    def _object(row: sqlite3.Row) -> ObjectRecord:
        updated = _time(row["updated_at"])
        assert updated is not None
        return ObjectRecord(
            kind=row["kind"],
            name=row["name"],
            spec_hash=row["spec_hash"],
            revision=row["revision"],
            phase=row["phase"],
            status=_load(row["status"]) or {},
            updated_at=updated,
        )

    # -- executions --------------------------------------------------------------------

    def submit_execution(
        self,
        chain: chains.Chain,
        *,
        trigger: str = "on_change",
        execution_id: ExecutionId | None = None,
    ) -> Submitted:
        """Store ``chain`` as a queued execution with every step pending, under
        ``execution_id`` when the caller chose it (:func:`new_execution_id`).

        In the same transaction, queued executions of the same object become superseded
        (a running one is the executor's to stop).
        """
        execution_id = execution_id or new_execution_id()
        now = _now_text()
        with self._write() as conn:
            superseded_ids = [
                row["id"]
                for row in conn.execute(
                    "UPDATE executions SET status = 'superseded', finished_at = ?,"
                    " error = 'superseded by a newer chain for the same object'"
                    " WHERE kind = ? AND name = ? AND status = 'queued' RETURNING id",
                    (now, chain.kind, chain.name),
                ).fetchall()
            ]
            for old in superseded_ids:
                self._close_steps(conn, ExecutionId(old), "cancelled", now)
            conn.execute(
                f"INSERT INTO executions ({_EXECUTION_COLUMNS}) VALUES"
                " (?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', NULL, ?, NULL, NULL, ?)",
                (
                    execution_id,
                    chain.kind,
                    chain.name,
                    chain.action,
                    chain.revision,
                    chain.spec_hash,
                    chain.cluster,
                    chain_codec.chain_to_json(chain),
                    _dump(dict(chain.params)),
                    now,
                    trigger,
                ),
            )
            conn.executemany(
                "INSERT INTO steps (execution_id, node_id, position, type, status)"
                " VALUES (?, ?, ?, ?, 'pending')",
                [
                    (execution_id, step.id, position, step.type)
                    for position, step in enumerate(chain.steps)
                ],
            )
        # The chain as given encodes to the stored JSON and is what the executor runs in
        # this process: no need to decode what was just encoded (after a restart the
        # decoded plan of record is read back instead).
        self._remember_chain(execution_id, chain)
        return Submitted(
            execution=self.get_execution(execution_id),
            superseded=tuple(self.get_execution(ExecutionId(old)) for old in superseded_ids),
        )

    def _remember_chain(self, execution_id: str, chain: chains.Chain) -> None:
        self._chains[execution_id] = chain
        self._chains.move_to_end(execution_id)
        if len(self._chains) > _CHAIN_CACHE_SIZE:
            self._chains.popitem(last=False)

    def _record(self, row: sqlite3.Row) -> ExecutionRecord:
        execution_id = row["id"]
        chain = self._chains.get(execution_id)
        if chain is None:
            chain = chain_codec.chain_from_json(row["chain"])
        self._remember_chain(execution_id, chain)
        return _execution(row, chain)

    def find_execution(self, execution_id: str) -> ExecutionRecord | None:
        row = self._conn.execute(
            f"SELECT {_EXECUTION_COLUMNS} FROM executions WHERE id = ?", (execution_id,)
        ).fetchone()
        return None if row is None else self._record(row)

    def get_execution(self, execution_id: str) -> ExecutionRecord:
        record = self.find_execution(execution_id)
        if record is None:
            raise UnknownExecutionError(f"no execution with id {execution_id!r}")
        return record

    def execution_status(self, execution_id: str) -> ExecutionStatus:
        row = self._conn.execute(
            "SELECT status FROM executions WHERE id = ?", (execution_id,)
        ).fetchone()
        if row is None:
            raise UnknownExecutionError(f"no execution with id {execution_id!r}")
        return cast(ExecutionStatus, row["status"])

    def list_executions(
        self,
        *,
        kind: str | None = None,
        name: str | None = None,
        statuses: Iterable[ExecutionStatus] | None = None,
        limit: int = 100,
        offset: int = 0,
        oldest_first: bool = False,
        after_seq: int = 0,
    ) -> list[ExecutionRecord]:
        """Executions, newest first (``oldest_first``: the other way); ``after_seq`` keeps
        only those stored after :meth:`execution_seq` returned it."""
        clauses: list[str] = []
        args: list[Any] = []
        if after_seq:
            clauses.append("rowid > ?")
            args.append(after_seq)
        if kind is not None:
            clauses.append("kind = ?")
            args.append(kind)
        if name is not None:
            clauses.append("name = ?")
            args.append(name)
        if statuses is not None:
            wanted = list(statuses)
            clauses.append(f"status IN ({', '.join('?' for _ in wanted)})")
            args.extend(wanted)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "ASC" if oldest_first else "DESC"
        rows = self._conn.execute(
            f"SELECT {_EXECUTION_COLUMNS} FROM executions {where}"
            f" ORDER BY rowid {order} LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        return [self._record(row) for row in rows]

    def execution_seq(self) -> int:
        """A number that grows with every execution stored (executions are never deleted):
        what came after it is newer than anything before."""
        row = self._conn.execute("SELECT max(rowid) FROM executions").fetchone()
        return int(row[0] or 0)

    def unfinished_executions(self) -> list[ExecutionRecord]:
        """Queued and running executions, oldest first (what a restart must resume)."""
        return self.list_executions(statuses=("queued", "running"), limit=-1, oldest_first=True)

    def mark_execution_running(self, execution_id: str) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE executions SET status = 'running', started_at = COALESCE(started_at, ?)"
                " WHERE id = ?",
                (_now_text(), execution_id),
            )

    def finish_execution(
        self, execution_id: str, status: ExecutionStatus, *, error: str | None = None
    ) -> ExecutionRecord:
        """Record the final status; steps that never finished become cancelled or skipped."""
        now = _now_text()
        leftover: StepStatus = "cancelled" if status in ("cancelled", "superseded") else "skipped"
        with self._write() as conn:
            conn.execute(
                "UPDATE executions SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                (status, error, now, execution_id),
            )
            self._close_steps(conn, ExecutionId(execution_id), leftover, now)
        return self.get_execution(execution_id)

    @staticmethod
    def _close_steps(
        conn: sqlite3.Connection, execution_id: ExecutionId, status: StepStatus, now: str
    ) -> None:
        conn.execute(
            "UPDATE steps SET status = ?, finished_at = ?, next_attempt_at = NULL"
            " WHERE execution_id = ? AND status IN ('pending', 'running')",
            (status, now, execution_id),
        )

    # -- steps -------------------------------------------------------------------------

    def append_step(self, execution_id: str, node_id: str, step_type: str) -> None:
        """Add a pending step after the execution's last one (an undo a cancel runs)."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO steps (execution_id, node_id, position, type, status)"
                " SELECT ?, ?, COALESCE(MAX(position), -1) + 1, ?, 'pending' FROM steps"
                " WHERE execution_id = ?",
                (execution_id, node_id, step_type, execution_id),
            )

    def get_steps(self, execution_id: str) -> list[StepRecord]:
        rows = self._conn.execute(
            f"SELECT {_STEP_COLUMNS} FROM steps WHERE execution_id = ? ORDER BY position",
            (execution_id,),
        )
        return [_step(row) for row in rows]

    def moved_steps(self, execution_id: str) -> list[StepRecord]:
        """The steps that are no longer untouched (pending with no attempt yet): what a
        resumed execution must know; cheap for a fresh one, however large its chain."""
        rows = self._conn.execute(
            f"SELECT {_STEP_COLUMNS} FROM steps WHERE execution_id = ?"
            " AND (status != 'pending' OR attempts > 0 OR next_attempt_at IS NOT NULL)"
            " ORDER BY position",
            (execution_id,),
        )
        return [_step(row) for row in rows]

    def get_step(self, execution_id: str, node_id: str) -> StepRecord | None:
        row = self._conn.execute(
            f"SELECT {_STEP_COLUMNS} FROM steps WHERE execution_id = ? AND node_id = ?",
            (execution_id, node_id),
        ).fetchone()
        return None if row is None else _step(row)

    def record_steps(self, writes: Sequence[StepWrite]) -> None:
        """Commit step starts, ends and retries in one transaction, in the given order.

        The executor passes what one scheduling round did: the ends that made nodes ready
        and the starts of those nodes commit together, so no step is ever recorded as
        started on outputs that a crash could still lose.
        """
        if not writes:
            return
        now = _now_text()
        with self._write() as conn:
            group: list[tuple[Any, ...]] = []
            kind: type[StepWrite] | None = None
            for write in writes:
                if type(write) is not kind and group:
                    assert kind is not None
                    conn.executemany(_WRITE_SQL[kind], group)
                    group = []
                kind = type(write)
                group.append(_write_params(write, now))
            if group:
                assert kind is not None
                conn.executemany(_WRITE_SQL[kind], group)

    def replace_step_logs(self, execution_id: str, logs: Mapping[str, str]) -> None:
        """Replace the kept log text of the named steps of an execution (a Workflow's
        ``config.logs`` keeps less than the steps wrote), in one transaction."""
        if not logs:
            return
        with self._write() as conn:
            conn.executemany(
                "UPDATE steps SET logs = ? WHERE execution_id = ? AND node_id = ?",
                [(text, execution_id, node_id) for node_id, text in logs.items()],
            )

    def start_step(
        self, execution_id: str, node_id: str, *, attempt: int, inputs: Mapping[str, Any]
    ) -> None:
        """Commit that attempt ``attempt`` of a step begins, with its resolved inputs."""
        self.record_steps([StepStart(execution_id, node_id, attempt, encode_json(inputs))])

    def finish_step(
        self,
        execution_id: str,
        node_id: str,
        *,
        status: StepStatus,
        outputs: Mapping[str, Any] | None = None,
        error: str | None = None,
        log: str = "",
    ) -> None:
        """Commit a step's end. Raises TypeError/ValueError for outputs that are not JSON."""
        encoded = None if outputs is None else encode_json(outputs)
        self.record_steps([StepEnd(execution_id, node_id, status, encoded, error, log)])

    def schedule_retry(
        self,
        execution_id: str,
        node_id: str,
        *,
        next_attempt_at: datetime.datetime,
        error: str,
        log: str = "",
    ) -> None:
        """Commit that an attempt ended retryably; the step waits, pending, until then."""
        self.record_steps([StepRetry(execution_id, node_id, next_attempt_at, error, log)])

    # -- handover between replicas ----------------------------------------------------

    def export_executions(
        self, execution_ids: Iterable[str], *, log_chars: int = 4096
    ) -> list[dict[str, Any]]:
        """Executions with their steps as plain rows, oldest first, each step's log cut to
        its last ``log_chars`` characters: what a shard's handover carries to the replica
        that continues it (reconciler.daemon.shard_handover)."""
        wanted = sorted(set(execution_ids))
        rows: list[dict[str, Any]] = []
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ", ".join("?" for _ in part)
            found = self._conn.execute(
                f"SELECT rowid AS seq, {_EXECUTION_COLUMNS} FROM executions WHERE id IN ({marks})",
                part,
            ).fetchall()
            steps: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
            for step in self._conn.execute(
                f"SELECT {_STEP_COLUMNS}, fence FROM steps WHERE execution_id IN ({marks})"
                " ORDER BY execution_id, position",
                part,
            ):
                item = dict(step)
                item["logs"] = (item["logs"] or "")[-log_chars:] if log_chars else ""
                steps[item["execution_id"]].append(item)
            for row in found:
                item = dict(row)
                item["steps"] = steps.get(item["id"], [])
                rows.append(item)
        rows.sort(key=lambda item: (item["created_at"], item.pop("seq")))
        return rows

    def execution_ids(
        self,
        kind: str,
        name: str,
        *,
        limit: int = -1,
        statuses: Iterable[ExecutionStatus] | None = None,
    ) -> list[str]:
        """Ids of an object's executions, newest first (no chain decoded)."""
        clause, args = "", []
        if statuses is not None:
            wanted = list(statuses)
            clause = f" AND status IN ({', '.join('?' for _ in wanted)})"
            args = wanted
        rows = self._conn.execute(
            f"SELECT id FROM executions WHERE kind = ? AND name = ?{clause}"
            " ORDER BY rowid DESC LIMIT ?",
            (kind, name, *args, limit),
        )
        return [str(row[0]) for row in rows]

    def import_executions(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Take executions exported by another replica's store, in one transaction: each
        replaces any local execution with its id (and its steps)."""
        columns = [c.strip() for c in _EXECUTION_COLUMNS.split(",")]
        step_columns = [c.strip() for c in _STEP_COLUMNS.split(",")] + ["fence"]
        with self._write() as conn:
            for row in rows:
                conn.execute("DELETE FROM steps WHERE execution_id = ?", (row["id"],))
                conn.execute("DELETE FROM executions WHERE id = ?", (row["id"],))
                conn.execute(
                    f"INSERT INTO executions ({', '.join(columns)})"
                    f" VALUES ({', '.join('?' for _ in columns)})",
                    [row.get(c) for c in columns],
                )
                conn.executemany(
                    f"INSERT INTO steps ({', '.join(step_columns)})"
                    f" VALUES ({', '.join('?' for _ in step_columns)})",
                    [[step.get(c) for c in step_columns] for step in row.get("steps") or []],
                )
                self._chains.pop(row["id"], None)

    def export_objects(self, keys: Iterable[str]) -> list[dict[str, Any]]:
        """The objects ``kind/name`` as plain rows (kind, name, spec_hash, revision, phase,
        status as a value, updated_at), for a handover."""
        rows: list[dict[str, Any]] = []
        for key in sorted(set(keys)):
            kind, _, name = key.partition("/")
            row = self._conn.execute(
                "SELECT kind, name, spec_hash, revision, phase, status, updated_at FROM objects"
                " WHERE kind = ? AND name = ?",
                (kind, name),
            ).fetchone()
            if row is not None:
                item = dict(row)
                item["status"] = _load(item["status"]) or {}
                rows.append(item)
        return rows

    def import_objects(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Write object rows (as :meth:`export_objects` gives them) in one transaction,
        each replacing the local row of the same object."""
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO objects (kind, name, spec_hash, revision, phase, status, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kind, name) DO UPDATE SET"
                " spec_hash = excluded.spec_hash, revision = excluded.revision,"
                " phase = excluded.phase, status = excluded.status,"
                " updated_at = excluded.updated_at",
                [
                    (
                        r["kind"],
                        r["name"],
                        r.get("spec_hash"),
                        r.get("revision"),
                        r.get("phase"),
                        _dump(dict(r.get("status") or {})),
                        r.get("updated_at") or _now_text(),
                    )
                    for r in rows
                ],
            )

    def close_handed_over(self, keys: Iterable[tuple[str, str]], *, keep: Iterable[str]) -> int:
        """Mark the unfinished executions of these objects superseded, but those in
        ``keep``: another replica continued their objects' work. Returns how many."""
        kept = set(keep)
        now = _now_text()
        closed = 0
        with self._write() as conn:
            for kind, name in keys:
                ids = [
                    row["id"]
                    for row in conn.execute(
                        "SELECT id FROM executions WHERE kind = ? AND name = ?"
                        " AND status IN ('queued', 'running')",
                        (kind, name),
                    )
                    if row["id"] not in kept
                ]
                for execution_id in ids:
                    conn.execute(
                        "UPDATE executions SET status = 'superseded', finished_at = ?,"
                        " error = 'handed over: another replica continued this object'"
                        " WHERE id = ?",
                        (now, execution_id),
                    )
                    self._close_steps(conn, ExecutionId(execution_id), "cancelled", now)
                    closed += 1
        return closed

    # -- API tasks ---------------------------------------------------------------------

    def create_api_task(
        self, *, kind: str, payload: Mapping[str, Any], status: str = "pending"
    ) -> ApiTaskRecord:
        task_id = ApiTaskId(uuid.uuid4().hex)
        now = _now_text()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO api_tasks (id, kind, payload, status, result, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, NULL, ?, ?)",
                (task_id, kind, _dump(dict(payload)), status, now, now),
            )
        record = self.get_api_task(task_id)
        assert record is not None
        return record

    def update_api_task(
        self, task_id: str, *, status: str, result: Mapping[str, Any] | None = None
    ) -> ApiTaskRecord:
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE api_tasks SET status = ?, result = ?, updated_at = ? WHERE id = ?",
                (status, None if result is None else _dump(dict(result)), _now_text(), task_id),
            )
        record = self.get_api_task(task_id)
        if cursor.rowcount == 0 or record is None:
            raise StoreError(f"no API task with id {task_id!r}")
        return record

    def get_api_task(self, task_id: str) -> ApiTaskRecord | None:
        row = self._conn.execute("SELECT * FROM api_tasks WHERE id = ?", (task_id,)).fetchone()
        return None if row is None else self._api_task(row)

    def list_api_tasks(
        self, *, kind: str | None = None, status: str | None = None
    ) -> list[ApiTaskRecord]:
        rows = self._conn.execute(
            "SELECT * FROM api_tasks WHERE (? IS NULL OR kind = ?) AND (? IS NULL OR status = ?)"
            " ORDER BY rowid",
            (kind, kind, status, status),
        )
        return [self._api_task(row) for row in rows]

    @staticmethod
    def _api_task(row: sqlite3.Row) -> ApiTaskRecord:
        created = _time(row["created_at"])
        updated = _time(row["updated_at"])
        assert created is not None and updated is not None
        return ApiTaskRecord(
            id=ApiTaskId(row["id"]),
            kind=row["kind"],
            payload=_load(row["payload"]) or {},
            status=row["status"],
            result=_load(row["result"]),
            created_at=created,
            updated_at=updated,
        )

    # -- daemon state (key/value) ------------------------------------------------------

    def set_value(self, key: str, value: Any) -> None:
        """Store a JSON-encodable value under ``key`` (e.g. ``last_applied_revision``)."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO daemon_state (key, value, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                (key, _dump(value), _now_text()),
            )

    def get_value(self, key: str, default: Any = None) -> Any:
        row = self._conn.execute("SELECT value FROM daemon_state WHERE key = ?", (key,)).fetchone()
        return default if row is None else _load(row["value"])
