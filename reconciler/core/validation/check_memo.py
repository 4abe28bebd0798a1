"""Remembering each object's checks across objects between loads of the same repo.

The daemon loads a 10,000-object repo again for every push, and most of that load is the
checks that need other objects (references, SLO against templates), though a push usually
changes a handful of objects. Each object's result depends on the object itself and on
the lookups its checks make: whether a name exists, which object a name is. So the first
run records those lookups through the views below, and a later run reuses the result
while the object is the same (objects of unchanged files are reused by the loader, so
identity says it) and every recorded lookup still answers the same. A check that reads
a whole set of names (a did-you-mean hint) is not remembered at all.

Whether a lookup still answers the same is found from the other side, so a run costs
what changed, not what the repo holds: each run compares its index and names with the
last run's, and only the objects that looked up a name whose answer moved (kept in a
reverse index, name -> readers) are checked again. Every other remembered result held
in the last run and reads nothing that moved since, so it holds now.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from reconciler.core.diagnostics import Diagnostic
from reconciler.core.validation.objects import SpecObject

Lookup = tuple[str, str, str, object]
"""("names", kind, name, found: bool) or ("index", kind, name, object or None)."""


class _Recorder:
    def __init__(self) -> None:
        self.lookups: list[Lookup] = []
        self.whole_set_read = False


class _RecordingNames(AbstractSet[str]):
    """One kind's names; membership tests are recorded, reading them all is flagged."""

    def __init__(self, kind: str, names: AbstractSet[str], recorder: _Recorder) -> None:
        self._kind = kind
        self._names = names
        self._recorder = recorder

    def __contains__(self, name: object) -> bool:
        found = name in self._names
        if isinstance(name, str):
            self._recorder.lookups.append(("names", self._kind, name, found))
        else:
            self._recorder.whole_set_read = True
        return found

    def __iter__(self) -> Iterator[str]:
        self._recorder.whole_set_read = True
        return iter(self._names)

    def __len__(self) -> int:
        self._recorder.whole_set_read = True
        return len(self._names)


class _RecordingNameMap(Mapping[str, AbstractSet[str]]):
    def __init__(self, names: Mapping[str, AbstractSet[str]], recorder: _Recorder) -> None:
        self._names = names
        self._recorder = recorder

    def __getitem__(self, kind: str) -> AbstractSet[str]:
        return _RecordingNames(kind, self._names.get(kind, frozenset()), self._recorder)

    def get(self, kind: str, default: Any = None) -> Any:
        return self[kind]

    def __iter__(self) -> Iterator[str]:
        self._recorder.whole_set_read = True
        return iter(self._names)

    def __len__(self) -> int:
        self._recorder.whole_set_read = True
        return len(self._names)


class _RecordingObjects(Mapping[str, SpecObject]):
    """One kind's objects by name; each lookup is recorded with the object it found."""

    def __init__(self, kind: str, objects: Mapping[str, SpecObject], recorder: _Recorder) -> None:
        self._kind = kind
        self._objects = objects
        self._recorder = recorder

    def __getitem__(self, name: str) -> SpecObject:
        found = self._objects.get(name)
        self._recorder.lookups.append(("index", self._kind, name, found))
        if found is None:
            raise KeyError(name)
        return found

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def __iter__(self) -> Iterator[str]:
        self._recorder.whole_set_read = True
        return iter(self._objects)

    def __len__(self) -> int:
        self._recorder.whole_set_read = True
        return len(self._objects)


class _RecordingIndex(Mapping[str, Mapping[str, SpecObject]]):
    def __init__(self, index: Mapping[str, Mapping[str, SpecObject]], recorder: _Recorder) -> None:
        self._index = index
        self._recorder = recorder

    def __getitem__(self, kind: str) -> Mapping[str, SpecObject]:
        return _RecordingObjects(kind, self._index.get(kind, {}), self._recorder)

    def get(self, kind: str, default: Any = None) -> Any:
        return self[kind]

    def __iter__(self) -> Iterator[str]:
        self._recorder.whole_set_read = True
        return iter(self._index)

    def __len__(self) -> int:
        self._recorder.whole_set_read = True
        return len(self._index)


@dataclasses.dataclass(frozen=True)
class Views:
    """What one object's checks read, through views that record it."""

    index: Mapping[str, Mapping[str, SpecObject]]
    names: Mapping[str, AbstractSet[str]]
    recorder: _Recorder


@dataclasses.dataclass(frozen=True)
class _Entry:
    diagnostics: tuple[Diagnostic, ...]
    lookups: tuple[Lookup, ...]


class CheckMemo:
    """Per-object results of the checks across objects, kept by the caller between runs
    over the same repo (with the same options). Results equal a run without it."""

    def __init__(self) -> None:
        self._entries: dict[SpecObject, _Entry] = {}
        self._used: dict[SpecObject, _Entry] = {}
        self._readers: dict[tuple[str, str, str], set[SpecObject]] = {}
        """Each lookup (source, kind, name) made, and the remembered objects that made it."""
        self._index: Mapping[str, Mapping[str, SpecObject]] = {}
        self._names: Mapping[str, AbstractSet[str]] = {}
        """The last run's index and names: what every kept entry's lookups answered."""
        self._stale: set[SpecObject] = set()
        self.reused = 0
        """How many objects the last run took from the memo (for tests and logs)."""

    def begin(
        self,
        index: Mapping[str, Mapping[str, SpecObject]],
        names: Mapping[str, AbstractSet[str]],
    ) -> None:
        """A run over ``index`` and ``names`` starts: find the entries whose lookups now
        answer differently from the last run."""
        self._used = {}
        self.reused = 0
        stale: set[SpecObject] = set()
        for key in _moved(self._index, index, self._names, names):
            stale |= self._readers.get(key, set())
        self._stale = stale
        self._index, self._names = index, names

    def end(self) -> None:
        """Keep only the entries of the objects of the run that just ended."""
        for obj, entry in self._entries.items():
            if obj not in self._used:
                self._forget(obj, entry)
        self._entries, self._used = self._used, {}
        self._stale = set()

    def recall(self, obj: SpecObject) -> tuple[Diagnostic, ...] | None:
        """The object's remembered result, if every lookup it made answers as it did."""
        entry = self._entries.get(obj)
        if entry is None or obj in self._stale:
            return None
        self._used[obj] = entry
        self.reused += 1
        return entry.diagnostics

    @staticmethod
    def views(
        index: Mapping[str, Mapping[str, SpecObject]], names: Mapping[str, AbstractSet[str]]
    ) -> Views:
        recorder = _Recorder()
        return Views(_RecordingIndex(index, recorder), _RecordingNameMap(names, recorder), recorder)

    def remember(self, obj: SpecObject, views: Views, diagnostics: list[Diagnostic]) -> None:
        previous = self._entries.pop(obj, None)
        if previous is not None:  # checked again: its old lookups no longer apply
            self._forget(obj, previous)
        if views.recorder.whole_set_read:
            return
        entry = _Entry(tuple(diagnostics), tuple(views.recorder.lookups))
        self._used[obj] = entry
        for source, kind, name, _ in entry.lookups:
            self._readers.setdefault((source, kind, name), set()).add(obj)

    def _forget(self, obj: SpecObject, entry: _Entry) -> None:
        for source, kind, name, _ in entry.lookups:
            readers = self._readers.get((source, kind, name))
            if readers is not None:
                readers.discard(obj)
                if not readers:
                    del self._readers[(source, kind, name)]


def _moved(
    old_index: Mapping[str, Mapping[str, SpecObject]],
    new_index: Mapping[str, Mapping[str, SpecObject]],
    old_names: Mapping[str, AbstractSet[str]],
    new_names: Mapping[str, AbstractSet[str]],
) -> Iterator[tuple[str, str, str]]:
    """Each lookup whose answer differs between two runs: ("index", kind, name) where the
    object of that name differs, ("names", kind, name) where the name came or went."""
    empty_objects: Mapping[str, SpecObject] = {}
    for kind in old_index.keys() | new_index.keys():
        old = old_index.get(kind, empty_objects)
        new = new_index.get(kind, empty_objects)
        for name in old.keys() ^ new.keys():
            yield "index", kind, name
        for name, obj in new.items():
            if old.get(name, obj) is not obj:
                yield "index", kind, name
    empty: AbstractSet[str] = frozenset()
    for kind in old_names.keys() | new_names.keys():
        for name in old_names.get(kind, empty) ^ new_names.get(kind, empty):
            yield "names", kind, name
