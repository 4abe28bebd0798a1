"""A shard's handover: what the next replica needs to continue the shard's objects.

Each replica keeps its own state store (a StatefulSet gives each pod a volume of its
own), so when a shard moves, its objects' durable state moves with it, through the
Kubernetes API: the objects' memos (what was applied and attempted, the status last
published) and their executions (each step's status, attempts, inputs, outputs and the
lease it started under, logs cut short). It is saved

- by the holder, every ``checkpoint_interval`` while the shard's objects move (what a
  replica taking over after a crash continues from), and
- when a shard is handed over on purpose (replicas added or removed, a clean stop):
  after the shard's running steps reached a step boundary, before the lease is given
  back, so the next holder continues exactly where this one stopped.

Only *placed* objects travel (Clusters, Deployments, Workflows: reconciler.core.shards);
a Model's local copy is each replica's own. The document is gzipped JSON in a ConfigMap
``PREFIX-handover-N`` (more ConfigMaps ``PREFIX-handover-N-GEN-I`` when it outgrows one),
annotated with the holder and lease transitions it was written under and replaced only at
the resourceVersion its writer last wrote: a replica that lost the shard cannot overwrite
the new holder's handover.
"""

from __future__ import annotations

import dataclasses
import datetime
import gzip
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from reconciler.drivers.lease_records import BlobRecord, LeaseError

if TYPE_CHECKING:
    from reconciler.drivers.leases import CoordinationApi
from reconciler.engine.store import Store

VERSION = 1
PART_BYTES = 700 * 1024
"""Largest slice of the gzipped document in one ConfigMap (the API's limit is 1 MiB)."""
HANDOVER_LABEL = "reconciler.dev/handover"
GENERATION = "reconciler.dev/generation"
PARTS = "reconciler.dev/parts"
DIGEST = "reconciler.dev/sha256"
HOLDER = "reconciler.dev/holder"
TRANSITIONS = "reconciler.dev/transitions"
WORKFLOW_HISTORY = 5
"""A Workflow carries its last this-many executions (its status lists them)."""


class HandoverError(Exception):
    """A handover cannot be read (torn, of a newer format) or written."""


@dataclasses.dataclass(frozen=True)
class Handover:
    """One shard's handover document."""

    shard: int
    holder: str
    transitions: int
    written_at: str
    objects: Sequence[Mapping[str, Any]]
    """Rows of the objects table (kind, name, spec_hash, revision, phase, status)."""
    executions: Sequence[Mapping[str, Any]]
    """Rows of the executions table, each with its steps (Store.export_executions)."""
    shards: int | None = None
    """The shard count it was written under (objects move when it changes)."""

    def object_keys(self) -> set[str]:
        return {f"{row['kind']}/{row['name']}" for row in self.objects}


def export_entry(store: Store, key: str) -> dict[str, Any] | None:
    """One object's part of a handover: its row and the executions its next holder needs
    (the one its memo attempted, any unfinished, a Workflow's last few); None when the
    store has no row for it. Only reads: safe on a store of its own in a worker thread."""
    rows = store.export_objects([key])
    if not rows:
        return None
    row = rows[0]
    kind, name = key.split("/", 1)
    ids: set[str] = set()
    attempted = (row.get("status") or {}).get("attempted_execution")
    if isinstance(attempted, str):
        ids.add(attempted)
    limit = WORKFLOW_HISTORY if kind == "Workflow" else 1
    ids.update(store.execution_ids(kind, name, limit=limit))
    ids.update(store.execution_ids(kind, name, statuses=("queued", "running")))
    return {"object": row, "executions": store.export_executions(ids)}


def fragment(entry: Mapping[str, Any]) -> bytes:
    """An entry as the JSON text the document is assembled from."""
    return json.dumps(entry, separators=(",", ":"), sort_keys=True).encode("utf-8")


def assemble(
    fragments: Iterable[bytes],
    *,
    shard: int,
    holder: str,
    transitions: int,
    shards: int | None = None,
) -> bytes:
    """The gzipped document from its entries' fragments (in the order given)."""
    head = {
        "version": VERSION,
        "shard": shard,
        "holder": holder,
        "transitions": transitions,
        "shards": shards,
        "written_at": datetime.datetime.now(datetime.UTC).isoformat(),
    }
    text = json.dumps(head, separators=(",", ":"))[:-1].encode("utf-8")
    body = text + b',"entries":[' + b",".join(fragments) + b"]}"
    return gzip.compress(body, compresslevel=1, mtime=0)


def collect(
    store: Store, keys: Iterable[str], *, shard: int, holder: str, transitions: int
) -> bytes:
    """The whole handover of ``keys`` (the shard's placed objects), gzipped."""
    found = (export_entry(store, key) for key in sorted(set(keys)))
    fragments = [fragment(entry) for entry in found if entry is not None]
    return assemble(fragments, shard=shard, holder=holder, transitions=transitions)


def decode(data: bytes) -> Handover:
    try:
        value = json.loads(gzip.decompress(data))
    except (OSError, ValueError) as exc:
        raise HandoverError(f"the handover cannot be read: {exc}") from None
    if not isinstance(value, dict):
        raise HandoverError("the handover is not a JSON object")
    if value.get("version") != VERSION:
        raise HandoverError(
            f"handover of format {value.get('version')!r}; this release reads {VERSION}: "
            "upgrade every replica to one release"
        )
    entries = value.get("entries") or []
    executions = sorted(
        (row for entry in entries for row in entry.get("executions") or []),
        key=lambda row: str(row.get("created_at")),
    )
    return Handover(
        shard=int(value["shard"]),
        holder=str(value["holder"]),
        transitions=int(value["transitions"]),
        written_at=str(value["written_at"]),
        objects=[entry["object"] for entry in entries],
        executions=executions,
        shards=value.get("shards") if isinstance(value.get("shards"), int) else None,
    )


def adopt(store: Store, handover: Handover, *, local_keys: Iterable[str]) -> list[dict[str, Any]]:
    """Write ``handover`` into ``store``: its executions replace local ones of the same id,
    the local unfinished executions of its objects are closed as handed over, and its
    object rows replace the local ones (``local_keys`` of the shard it lacks are
    removed). Returns the object rows written, each object's life starting here."""
    imported = {str(row["id"]) for row in handover.executions}
    keys = handover.object_keys() | set(local_keys)
    pairs = [(key.split("/", 1)[0], key.split("/", 1)[1]) for key in sorted(keys)]
    store.close_handed_over(pairs, keep=imported)
    born = store.execution_seq()
    store.import_executions(handover.executions)
    rows: list[dict[str, Any]] = []
    for row in handover.objects:
        status = dict(row.get("status") or {})
        status["born_seq"] = born
        rows.append({**row, "status": status})
    store.import_objects(rows)
    for key in sorted(set(local_keys) - handover.object_keys()):
        kind, name = key.split("/", 1)
        store.delete_object(kind, name)
    return rows


# -- the ConfigMaps ---------------------------------------------------------------------


class HandoverStore:
    """Reads and writes shards' handovers as ConfigMaps (blocking: run on a thread)."""

    def __init__(self, api: CoordinationApi, *, prefix: str) -> None:
        self._api = api
        self._prefix = prefix

    def name(self, shard: int) -> str:
        return f"{self._prefix}-handover-{shard}"

    def read(self, shard: int) -> tuple[Handover | None, str | None]:
        """The shard's handover and the resourceVersion to replace it at (None, None:
        there is none yet)."""
        index = self._api.get_blob(self.name(shard))
        if index is None:
            return None, None
        data = self._assemble(index)
        return decode(data), index.resource_version

    def _assemble(self, index: BlobRecord) -> bytes:
        parts = int(index.annotations.get(PARTS, "1"))
        generation = index.annotations.get(GENERATION, "")
        chunks = [index.data.get("part-0", b"")]
        for number in range(1, parts):
            found = self._api.get_blob(f"{index.name}-{generation}-{number}")
            if found is None:
                raise HandoverError(f"{index.name}: part {number} of {parts} is missing")
            chunks.append(found.data.get("part", b""))
        data = b"".join(chunks)
        if hashlib.sha256(data).hexdigest() != index.annotations.get(DIGEST):
            raise HandoverError(f"{index.name}: its parts do not match its digest")
        return data

    def write(
        self, data: bytes, *, shard: int, holder: str, transitions: int, expect: str | None
    ) -> str:
        """Save a handover (``data``, gzipped), replacing the one at resourceVersion
        ``expect`` (None: there is none); returns the new resourceVersion. LeaseConflict
        (from the driver) when another replica wrote it since."""
        name = self.name(shard)
        chunks = [data[i : i + PART_BYTES] for i in range(0, len(data), PART_BYTES)] or [b""]
        generation = uuid.uuid4().hex[:10]
        labels = {HANDOVER_LABEL: name}
        for number, chunk in enumerate(chunks[1:], start=1):
            self._api.put_blob(
                f"{name}-{generation}-{number}",
                {"part": chunk},
                labels={**labels, GENERATION: generation},
                annotations={},
                expect=None,
            )
        annotations = {
            PARTS: str(len(chunks)),
            GENERATION: generation,
            DIGEST: hashlib.sha256(data).hexdigest(),
            HOLDER: holder,
            TRANSITIONS: str(transitions),
        }
        version = self._api.put_blob(
            name, {"part-0": chunks[0]}, labels=labels, annotations=annotations, expect=expect
        )
        self._sweep(name, keep=generation)
        return version

    def _sweep(self, name: str, *, keep: str) -> None:
        """Remove the parts of earlier generations (and of writes that never finished)."""
        try:
            names = self._api.list_blob_names(f"{HANDOVER_LABEL}={name}")
        except LeaseError:
            return
        for found in names:
            if found != name and not found.startswith(f"{name}-{keep}-"):
                self._api.delete_blob(found)
