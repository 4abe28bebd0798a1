"""GitSource.file_origin: the commit that first added a file, through edits and a rename,
as the workflow dashboard's creator and createdAt read it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.drivers.git_source import GitSource
from tests.conftest import git

if TYPE_CHECKING:
    from conftest import MakeGitRemote


def test_the_first_addition_survives_edits_and_a_rename(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files={"clusters.yaml": "kind: Cluster\n"})
    writer = remote.writer
    added = writer.commit_and_push({"workflows/train.yaml": "kind: Workflow\n"}, "add train")
    writer.commit_and_push({"workflows/train.yaml": "kind: Workflow\n# edited\n"}, "edit")
    git(writer.path, "mv", "workflows/train.yaml", "workflows/training.yaml")
    renamed = writer.commit("rename")
    writer.push()
    source = GitSource(remote.url, "main", tmp_path / "copy")
    head = source.sync()

    origin = source.file_origin("workflows/training.yaml", head)
    assert origin is not None
    assert origin.sha == added and origin.summary == "add train"
    assert origin.author_name == git(remote.path, "log", "-1", "--format=%an", added)
    before_rename = source.file_origin("workflows/train.yaml", f"{renamed}~1")
    assert before_rename is not None and before_rename.sha == added
    assert source.file_origin("workflows/never.yaml", head) is None
    assert source.file_origin("clusters.yaml", head) is not None
