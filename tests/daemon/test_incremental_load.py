"""Incremental loading: only blobs that changed since the last load are parsed again."""

from __future__ import annotations

from pathlib import Path

from reconciler.daemon.snapshot import SnapshotLoader
from reconciler.drivers.git_source import GitSource
from tests.conftest import MakeGitRemote

PROJECT = (
    "apiVersion: reconciler/v1\nkind: Project\nmetadata: {{name: p{i}}}\n"
    "spec: {{description: d{i}}}\n"
)


def test_one_file_commit_parses_one_file(make_git_remote: MakeGitRemote, tmp_path: Path) -> None:
    files = {f"projects/p{i}.yaml": PROJECT.format(i=i) for i in range(50)}
    remote = make_git_remote(files=files)
    source = GitSource(str(remote.path), "main", tmp_path / "source")
    loader = SnapshotLoader(source=source)

    first = loader.load(source.sync())
    assert (first.files, first.parsed, len(first.result.objects)) == (50, 50, 50)

    remote.writer.commit_and_push({"projects/p7.yaml": PROJECT.format(i=7).replace("d7", "new")})
    second = loader.load(source.sync())
    assert (second.files, second.parsed) == (50, 1)
    described = {o.name: o.spec["description"] for o in second.result.objects}
    assert described["p7"] == "new" and described["p8"] == "d8"

    remote.writer.commit_and_push(
        {"projects/p8.yaml": None, "projects/extra.yaml": PROJECT.format(i=99)}
    )
    third = loader.load(source.sync())
    assert (third.files, third.parsed) == (50, 1)
    assert "p8" not in {o.name for o in third.result.objects}


def test_a_broken_file_is_reported_and_the_rest_still_loads(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files={"a.yaml": PROJECT.format(i=1), "b.yaml": "kind: [unclosed\n"})
    source = GitSource(str(remote.path), "main", tmp_path / "source")
    snapshot = SnapshotLoader(source=source).load(source.sync())
    assert not snapshot.ok
    assert [d.path for d in snapshot.errors] == ["b.yaml"]
    assert [o.name for o in snapshot.result.objects] == ["p1"]
