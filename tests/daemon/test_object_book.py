"""ObjectBook.replace_desired: the keys a new revision added, removed or changed.

The loader hands back the same objects for files it did not parse again, so the book
looks only at objects new to a revision and those gone from it. These cases check that
what it reports equals a comparison of the whole desired state, revision after revision.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.core.validation.repo import ParsedFile, load_and_parse, validate_parsed
from reconciler.daemon.object_book import ObjectBook
from reconciler.engine.store import Store
from reconciler.load.documents import SourceFile

PROJECT = (
    "apiVersion: reconciler/v1\nkind: Project\nmetadata: {{name: {name}}}\n"
    "spec: {{description: {text}}}\n"
)


class Repo:
    """Files parsed once per blob, like the snapshot loader's cache."""

    def __init__(self) -> None:
        self.files: dict[str, ParsedFile] = {}
        self._blob = 0

    def write(self, path: str, *docs: tuple[str, str]) -> None:
        self._blob += 1
        text = "---\n".join(PROJECT.format(name=name, text=text) for name, text in docs)
        source = SourceFile(path=path, data=text.encode(), blob=f"{self._blob:040x}")
        self.files[path] = load_and_parse(source)

    def objects(self) -> list:
        result = validate_parsed(self.files[path] for path in sorted(self.files))
        assert result.ok, result.diagnostics
        return list(result.objects)


def _hashes(book: ObjectBook) -> dict[str, str]:
    return {key: desired.state.spec_hash for key, desired in book.desired.items()}


def test_each_revision_reports_exactly_what_moved(tmp_path: Path) -> None:
    repo = Repo()
    for f in range(20):
        repo.write(f"f{f}.yaml", *((f"p{f}-{i}", "same") for i in range(5)))
    book = ObjectBook(Store(tmp_path / "state.db"))
    assert len(book.replace_desired(repo.objects())) == 100
    assert book.replace_desired(repo.objects()) == set()

    steps = [
        # one object of a file edited: the file's other objects are parsed again, unchanged
        lambda: repo.write(
            "f3.yaml", *((f"p3-{i}", "edited" if i == 2 else "same") for i in range(5))
        ),
        # a file removed, another added
        lambda: (repo.files.pop("f4.yaml"), repo.write("new.yaml", ("fresh", "x"))),
        # an object moves to another file, unchanged
        lambda: (
            repo.write("f5.yaml", *((f"p5-{i}", "same") for i in range(4))),
            repo.write("f6.yaml", *((f"p6-{i}", "same") for i in range(5)), ("p5-4", "same")),
        ),
        # an object put back as it was before
        lambda: repo.write("f3.yaml", *((f"p3-{i}", "same") for i in range(5))),
        # a removed object added back
        lambda: repo.write("f4.yaml", ("p4-0", "same")),
    ]
    expected = [{"Project/p3-2"}, {f"Project/p4-{i}" for i in range(5)} | {"Project/fresh"},
                set(), {"Project/p3-2"}, {"Project/p4-0"}]  # fmt: skip
    for step, want in zip(steps, expected, strict=True):
        before = _hashes(book)
        step()
        changed = book.replace_desired(repo.objects())
        after = _hashes(book)
        assert changed == want
        assert changed == {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        assert set(book.states()) == set(after)
        assert all(book.states()[k].spec_hash == h for k, h in after.items())
