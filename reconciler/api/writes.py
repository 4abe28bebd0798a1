"""Writes through the API become Git commits: put or delete one object's document.

Git stays the source of truth: a write never touches the store or the running objects. It
commits the object's new document (or its removal) onto the watched branch, authored by
the caller's token name (``api.write_mode: commit``), or onto a new review branch
``reconciler/api/<task id>`` that starts at the watched branch's tip (``branch``); with
``off`` every write is refused. Before anything is pushed the whole repo, with the new
file, is validated as the daemon would load it; a repo that would not validate is a 422
with the diagnostics and no commit. A lost push race is rebuilt on the new tip and
validated again (:class:`~reconciler.drivers.git_writer.GitWriter`).

Where the document goes: an object that exists keeps its file, and only its own lines
change (the other documents of the file stay byte-identical, comments included; see
:mod:`reconciler.api.document_edit`); a new one goes to
``<first root>/<kind-plural>/<name>.yaml``. Each write is recorded as an API task that
follows its own object, whatever else the daemon is doing: ``done`` once the daemon has
taken in a revision containing the commit and the object reached it (applied at the spec
that revision holds, suspended as it asks, or gone for a delete), ``failed`` when the
object's attempt at it failed or that revision does not validate; a review branch's task
is ``review`` until that branch is merged.
"""

from __future__ import annotations

import asyncio
import codecs
import copy
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from reconciler.api import document_edit, project_access
from reconciler.api.auth import Caller
from reconciler.api.problems import (
    ApiError,
    Conflict,
    Forbidden,
    NotFound,
    Unavailable,
    Unprocessable,
)
from reconciler.api.view import DaemonView, SourceInfo
from reconciler.core.validation.objects import SpecObject
from reconciler.core.validation.repo import ValidateOptions
from reconciler.daemon.config import WriteMode
from reconciler.daemon.object_progress import ObjectProgress
from reconciler.daemon.snapshot import SnapshotLoader
from reconciler.drivers.git_source import GitSourceError
from reconciler.drivers.git_writer import GitIdentity, GitWriter, NothingToCommit
from reconciler.engine.records import ApiTaskRecord
from reconciler.engine.store import Store
from reconciler.specs.registry import kind_plural

API_TASK_WRITE = "write"
"""The API task kind of a write: its commit or branch, and the reconcile it follows."""
REVIEW_BRANCH_PREFIX = "reconciler/api/"
MAX_LISTED_DIAGNOSTICS = 50


_NewDocument = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]] | None
"""A write's document: the whole new one, a change of the one in Git, or None (delete)."""


class _Invalid(Exception):
    def __init__(self, diagnostics: Sequence[str]) -> None:
        super().__init__("the repo would not validate")
        self.diagnostics = tuple(diagnostics)


class _Refused(Exception):
    def __init__(self, message: str, *, status: Literal[404, 409]) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class WriteOutcome:
    """A pushed write: its task, commit and branch."""

    task: ApiTaskRecord
    commit: str
    branch: str
    path: str

    def json(self) -> dict[str, Any]:
        return {
            "task_id": self.task.id,
            "status": self.task.status,
            "commit": self.commit,
            "branch": self.branch,
            "path": self.path,
        }


class SpecWrites:
    """The writes of one API: its mode, the watched branch, and the Git writer."""

    def __init__(
        self,
        *,
        mode: WriteMode,
        branch: str,
        writer: GitWriter | None,
        roots: Sequence[str] = (".",),
        options: ValidateOptions | None = None,
    ) -> None:
        self.mode = mode
        self.branch = branch
        self.writer = writer
        self._roots = tuple(roots)
        self._options = options
        self._loader = (
            SnapshotLoader(source=writer, roots=self._roots, options=options)
            if writer is not None
            else None
        )

    def switch_mode(self, mode: WriteMode, *, writer: Callable[[], GitWriter]) -> None:
        """Take ``mode`` for the next writes (a config reload changed api.write_mode).
        ``writer()`` makes the Git writer when there is none yet (the API started with
        ``off``); an existing writer is kept, so writes already pushed are still followed."""
        if mode != "off" and self.writer is None:
            self.writer = writer()
            self._loader = SnapshotLoader(
                source=self.writer, roots=self._roots, options=self._options
            )
        self.mode = mode

    async def put(
        self, *, store: Store, caller: Caller, kind: str, name: str, document: Mapping[str, Any]
    ) -> WriteOutcome:
        """Commit ``document`` as object ``kind/name`` (created, or replacing its document)."""
        return await self._write(store, caller, kind, name, dict(document))

    async def create(
        self, *, store: Store, caller: Caller, kind: str, name: str, document: Mapping[str, Any]
    ) -> WriteOutcome:
        """Commit ``document`` as new object ``kind/name``; a 409 when the branch tip the
        commit is built on holds that object already (two creates of one name: the
        second is refused, not made into a replace)."""
        return await self._write(store, caller, kind, name, dict(document), only_new=True)

    async def update(
        self,
        *,
        store: Store,
        caller: Caller,
        kind: str,
        name: str,
        change: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> WriteOutcome:
        """Commit ``change(the object's document as it is in Git)``; 404 when it is absent."""
        return await self._write(store, caller, kind, name, change)

    async def delete(self, *, store: Store, caller: Caller, kind: str, name: str) -> WriteOutcome:
        """Commit the removal of object ``kind/name``'s document."""
        return await self._write(store, caller, kind, name, None)

    async def _write(
        self,
        store: Store,
        caller: Caller,
        kind: str,
        name: str,
        document: _NewDocument,
        *,
        only_new: bool = False,
    ) -> WriteOutcome:
        if self.mode == "off":
            raise Forbidden(
                "writes through the API are turned off (api.write_mode: off); commit the "
                "change to the state repo, or set api.write_mode to commit or branch"
            )
        if self.writer is None:
            raise Unavailable("the API has no Git writer for the state repo")
        action = "delete" if document is None else "put"
        task = store.create_api_task(
            kind=API_TASK_WRITE,
            payload={
                "action": action,
                "kind": kind,
                "name": name,
                "mode": self.mode,
                "requested_by": caller.name,
            },
            status="committing",
        )
        branch = self.branch if self.mode == "commit" else REVIEW_BRANCH_PREFIX + task.id
        verb = "Delete" if document is None else "Write"
        message = f"{verb} {kind}/{name} through the API\n\nRequested by {caller.name}.\n"
        author = GitIdentity(caller.name, f"{caller.name}@reconciler.api")
        where: dict[str, str] = {}
        try:
            result = await asyncio.to_thread(
                self.writer.write,
                base=self.branch,
                branch=branch,
                author=author,
                message=message,
                edit=lambda tip: self._edit(tip, kind, name, document, where, only_new, caller),
                check=lambda commit: self._check(commit, kind, name, document),
            )
        except _Invalid as exc:
            shown = list(exc.diagnostics[:MAX_LISTED_DIAGNOSTICS])
            error: ApiError = Unprocessable(
                f"the state repo with this change would not validate ({len(exc.diagnostics)} "
                f"problem(s)); nothing was committed: {shown[0] if shown else ''}",
                extra={"diagnostics": shown},
            )
        except _Refused as exc:
            error = (NotFound if exc.status == 404 else Conflict)(str(exc))
        except Forbidden as exc:  # project_access refused it at the tip it was built on
            error = exc
        except NothingToCommit:
            error = Conflict(f"{kind}/{name} already has this document; nothing was committed")
        except GitSourceError as exc:
            error = Unavailable(f"the write could not be committed: {exc}")
        else:
            task = store.update_api_task(
                task.id,
                status="review" if self.mode == "branch" else "pending",
                result={"commit": result.commit, "branch": result.branch, "path": where["path"]},
            )
            return WriteOutcome(
                task=task, commit=result.commit, branch=result.branch, path=where["path"]
            )
        store.update_api_task(task.id, status="failed", result={"error": error.detail})
        raise error

    # -- inside the writer's thread (serialized by it) ---------------------------------------

    def _objects(self, revision: str) -> tuple[SpecObject, ...]:
        assert self._loader is not None
        return self._loader.load(revision).result.objects

    def _edit(
        self,
        tip: str,
        kind: str,
        name: str,
        document: _NewDocument,
        where: dict[str, str],
        only_new: bool = False,
        caller: Caller | None = None,
    ) -> dict[str, bytes | None]:
        assert self.writer is not None
        key = f"{kind}/{name}"
        objects = self._objects(tip)
        found = next((o for o in objects if o.key == key), None)
        if found is not None and only_new:
            raise _Refused(f"{key} exists in branch {self.branch!r} ({found.path})", status=409)
        if found is None and (document is None or callable(document)):
            raise _Refused(f"no object {key} in branch {self.branch!r}", status=404)
        if caller is not None:
            before = dict(found.doc.value) if found is not None else None
            after: dict[str, Any] | None
            if callable(document):
                assert before is not None
                after = document(copy.deepcopy(before))
            else:
                after = document
            project_access.authorize_write(
                caller,
                kind=kind,
                name=name,
                before=before,
                after=after,
                projects=project_access.specs_by_project(objects),
            )
        if found is None:
            assert document is not None and not callable(document)
            root = self._roots[0].strip("/")
            prefix = "" if root in ("", ".") else root + "/"
            path = f"{prefix}{kind_plural(kind)}/{name}.yaml"
            if any(e.path == path for e in self.writer.list_spec_blobs(tip, self._roots)):
                raise _Refused(
                    f"{path} already exists and holds other objects; write {key} into it by hand",
                    status=409,
                )
            where["path"] = path
            return {path: _dump([document])}
        path = found.path
        where["path"] = path
        blob = next(e.sha for e in self.writer.list_spec_blobs(tip, self._roots) if e.path == path)
        data = self.writer.read_blobs([blob])[blob]
        try:
            return {path: _edited(data, kind, name, document)}
        except document_edit.DocumentEditError as exc:
            raise _Refused(f"{path}: {exc}", status=409) from exc

    def _check(self, commit: str, kind: str, name: str, document: _NewDocument) -> None:
        assert self._loader is not None
        snapshot = self._loader.load(commit)
        if not snapshot.ok:
            raise _Invalid([d.format() for d in snapshot.errors])
        present = any(o.key == f"{kind}/{name}" for o in snapshot.result.objects)
        if document is not None and not present:
            raise _Invalid([f"{kind}/{name}: the document is not loaded as that object"])


def _is(value: object, kind: str, name: str) -> bool:
    if not isinstance(value, dict) or value.get("kind") != kind:
        return False
    metadata = value.get("metadata")
    return isinstance(metadata, dict) and metadata.get("name") == name


def _dump(documents: Sequence[Any]) -> bytes:
    return document_edit.dump_new(documents).encode("utf-8")


def _edited(data: bytes, kind: str, name: str, document: _NewDocument) -> bytes | None:
    """The file ``data`` with object ``kind/name``'s document replaced, changed or removed
    in place (:mod:`reconciler.api.document_edit`); None when no document is left."""
    bom = codecs.BOM_UTF8 if data.startswith(codecs.BOM_UTF8) else b""
    text = data[len(bom) :].decode("utf-8")
    found = document_edit.documents(text)
    target = next((d for d in found if _is(d.value, kind, name)), None)
    if target is None:
        raise _Refused(f"{kind}/{name} is not a document of its file any more", status=409)
    if document is None:
        if len(found) == 1:
            return None
        edited = document_edit.remove_document(text, target)
    else:
        value = document(copy.deepcopy(target.value)) if callable(document) else document
        edited = document_edit.replace_document(text, target, value)
    return bom + edited.encode("utf-8")


def task_progress(
    task: ApiTaskRecord,
    *,
    source: SourceInfo,
    writer: GitWriter | None,
    progress: ObjectProgress | None = None,
) -> tuple[str, dict[str, Any]] | None:
    """The status a write task moves on to from where its own object stands, or None.

    ``done`` once the last revision the daemon took in contains the commit and the object
    reached it: applied at that revision's spec (or suspended as it asks), or, for a
    delete, gone. ``failed`` when the object's attempt at that spec failed or stalled (or
    it cannot run here), or when the revision containing the commit does not validate.
    Other objects' work never holds a task. ``progress`` is the object's
    (:func:`write_object`), read in the loop before. Blocks (Git); run in a thread."""
    if task.kind != API_TASK_WRITE or task.status not in ("pending", "review") or writer is None:
        return None
    written = dict(task.result or {})
    commit = str(written.get("commit"))
    seen = source.last_seen_revision
    if seen is None or not writer.contains(seen, commit, branch=source.branch):
        return None
    status = source.status or {}
    if status.get("phase") == "Stalled" and status.get("observed_revision") == seen:
        reasons = {c.get("type"): c.get("reason") for c in status.get("conditions") or []}
        if reasons.get("Stalled") == "ValidationFailed":
            error = f"revision {seen[:12]} does not validate"
            return "failed", {**written, "revision": seen, "error": error}
    if progress is None:
        return None
    found = progress
    if found.failed is not None:
        return "failed", {**written, "revision": seen, "error": found.failed}
    if dict(task.payload or {}).get("action") == "delete":
        if found.desired_hash is None and not found.known:
            return "done", {**written, "revision": seen}
        return None
    if found.desired_hash is None:
        return None
    if found.desired_hash == found.applied_hash or found.suspended:
        return "done", {**written, "revision": found.observed_revision or seen}
    return None


def write_object(task: ApiTaskRecord) -> str:
    """The ``kind/name`` a write task wrote."""
    payload = dict(task.payload or {})
    return f"{payload.get('kind')}/{payload.get('name')}"


async def follow_write(
    task: ApiTaskRecord, *, view: DaemonView, writer: GitWriter | None
) -> ApiTaskRecord:
    """Move a write task on from where its object stands (see :func:`task_progress`)."""
    if task.kind != API_TASK_WRITE or task.status not in ("pending", "review"):
        return task
    progress = view.object_progress(write_object(task))
    moved = await asyncio.to_thread(
        task_progress, task, source=view.source(), writer=writer, progress=progress
    )
    if moved is None:
        return task
    return view.store.update_api_task(task.id, status=moved[0], result=moved[1])
