"""The state store: schema versions and migrations, and its typed records."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from reconciler.core.chains import Chain, StepNode
from reconciler.engine import migrations
from reconciler.engine.records import utc_now
from reconciler.engine.store import (
    DB_FILENAME,
    StepEnd,
    StepRetry,
    StepStart,
    Store,
    UnknownExecutionError,
)


def a_chain(revision: str = "r1") -> Chain:
    return Chain(
        kind="Model",
        name="phi",
        action="apply",
        revision=revision,
        spec_hash="abc",
        steps=(StepNode(id="add", type="add_model", inputs={"repo": "x/y"}),),
        cluster="gpu",
        params={"k": 1},
    )


def test_new_database_is_at_the_latest_version_in_wal_mode(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        assert store.path == tmp_path / DB_FILENAME
        assert store.schema_version == migrations.LATEST_VERSION
    conn = sqlite3.connect(tmp_path / DB_FILENAME)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_a_missing_state_dir_is_created(tmp_path: Path) -> None:
    with Store(tmp_path / "var" / "reconciler") as store:
        assert store.path == tmp_path / "var" / "reconciler" / DB_FILENAME
    with Store(tmp_path / "explicit.sqlite") as store:
        assert store.path == tmp_path / "explicit.sqlite"


def test_older_database_is_upgraded_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrations.migrate(conn, location=str(path), target=1) == 1
    conn.execute(
        "INSERT INTO objects (kind, name, spec_hash, revision, phase, status, updated_at)"
        " VALUES ('Model', 'phi', 'h', 'r0', 'Ready', '{\"ready\": true}',"
        " '2024-01-01T00:00:00+00:00')"
    )
    conn.close()
    with Store(path) as store:
        assert store.schema_version == migrations.LATEST_VERSION
        record = store.get_object("Model", "phi")
        assert record is not None and record.status == {"ready": True}
        store.set_value("last_applied_revision", "r0")  # a table version 2 added
        assert store.get_value("last_applied_revision") == "r0"


def test_newer_database_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = ?", (migrations.LATEST_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(migrations.SchemaVersionError, match="run a newer reconciler release"):
        Store(path)


def test_failed_migration_leaves_the_previous_version(tmp_path: Path) -> None:
    path = tmp_path / "broken.db"
    conn = sqlite3.connect(path, isolation_level=None)
    broken = (*migrations.MIGRATIONS, ("CREATE TABLE x (a)", "THIS IS NOT SQL"))
    with pytest.raises(sqlite3.OperationalError):
        migrations.migrate(conn, location=str(path), migrations=broken)
    assert migrations.current_version(conn) == migrations.LATEST_VERSION
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'x'").fetchone() is None
    conn.close()


def test_executions_round_trip_with_their_chain_and_steps(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        submitted = store.submit_execution(a_chain())
        record = submitted.execution
        assert record.status == "queued" and record.chain == a_chain()
        assert record.cluster == "gpu" and record.params == {"k": 1}
        (step,) = store.get_steps(record.id)
        assert (step.node_id, step.type, step.status, step.attempts) == (
            "add",
            "add_model",
            "pending",
            0,
        )
        newer = store.submit_execution(a_chain("r2"))
        assert [old.id for old in newer.superseded] == [record.id]
        assert store.get_execution(record.id).status == "superseded"
        assert store.get_steps(record.id)[0].status == "cancelled"
        assert [r.id for r in store.unfinished_executions()] == [newer.execution.id]
        assert [r.id for r in store.list_executions(kind="Model", name="phi")] == [
            newer.execution.id,
            record.id,
        ]
        with pytest.raises(UnknownExecutionError):
            store.get_execution("missing")


def test_objects_api_tasks_and_values(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        store.put_object(
            kind="Deployment",
            name="chat",
            spec_hash="h1",
            revision="r1",
            phase="Ready",
            status={"endpoint": "http://x"},
        )
        store.put_object(
            kind="Deployment",
            name="chat",
            spec_hash="h2",
            revision="r2",
            phase="Reconciling",
            status={},
        )
        (record,) = store.list_objects(kind="Deployment")
        assert (record.spec_hash, record.phase) == ("h2", "Reconciling")
        assert store.delete_object("Deployment", "chat") is True
        task = store.create_api_task(kind="deploy", payload={"model": "phi"})
        done = store.update_api_task(task.id, status="completed", result={"endpoint": "u"})
        assert done.result == {"endpoint": "u"} and done.payload == {"model": "phi"}
        assert [t.id for t in store.list_api_tasks(kind="deploy", status="completed")] == [task.id]
        assert store.get_value("missing", default=7) == 7


def two_step_chain() -> Chain:
    return Chain(
        kind="Workflow",
        name="w",
        action="execute",
        revision="r1",
        spec_hash="h",
        steps=(StepNode(id="a", type="noop"), StepNode(id="b", type="noop", after=("a",))),
    )


def test_a_batch_of_step_writes_applies_in_order(tmp_path: Path) -> None:
    with Store(tmp_path) as store, Store(tmp_path) as reader:
        execution_id = store.submit_execution(two_step_chain()).execution.id
        store.record_steps(
            [
                StepStart(execution_id, "a", 1, "{}"),
                StepRetry(execution_id, "a", utc_now(), "busy", "log one\n"),
                StepStart(execution_id, "a", 2, '{"x":1}'),
                StepEnd(execution_id, "a", "done", '{"token":"t"}', None, "log two\n"),
                StepStart(execution_id, "b", 1, '{"v":"t"}'),
            ]
        )
        a, b = reader.get_steps(execution_id)
        assert (a.status, a.attempts, a.inputs, a.outputs) == ("done", 2, {"x": 1}, {"token": "t"})
        assert a.logs == "log one\nlog two\n" and a.next_attempt_at is None
        assert (b.status, b.attempts, b.inputs) == ("running", 1, {"v": "t"})


def test_a_batch_of_step_writes_commits_whole_or_not_at_all(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        execution_id = store.submit_execution(two_step_chain()).execution.id
        with pytest.raises(sqlite3.IntegrityError):
            store.record_steps(
                [
                    StepEnd(execution_id, "a", "done", "{}"),
                    StepEnd(execution_id, "b", "bogus"),  # type: ignore[arg-type]
                ]
            )
        assert [s.status for s in store.get_steps(execution_id)] == ["pending", "pending"]
        assert store.moved_steps(execution_id) == []
        store.record_steps([StepStart(execution_id, "b", 1, "{}")])
        assert [s.node_id for s in store.moved_steps(execution_id)] == ["b"]
