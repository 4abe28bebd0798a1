"""Writes become Git: over real HTTP against a real daemon on a real bare Git remote.

Each write is checked in the remote's history with its author; branch mode makes a review
branch and leaves the watched branch alone; ``off`` refuses; a document that would not
validate is a 422 and no commit; a push race lost to someone else is rebuilt on their
commit so both changes land.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import yaml

from reconciler.drivers.git_writer import GitIdentity, GitWriter
from tests.api.conftest import API_SEED, RunningDaemon, StartApi, wait_until
from tests.conftest import MakeGitRemote, git
from tests.daemon.conftest import workflow


def _author(api: RunningDaemon, revision: str) -> str:
    return git(api.remote.path, "log", "-1", "--format=%an <%ae>", revision)


async def _task_done(api: RunningDaemon, task_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        task: dict[str, Any] = (await api.client.get(f"/api/v1/tasks/{task_id}")).json()
        assert task["status"] != "failed", task
        return task if task["status"] == "done" else None

    done: dict[str, Any] = await wait_until(f"write task {task_id} done", probe)
    return done


async def test_put_creates_then_updates_then_delete_removes(start_api: StartApi) -> None:
    api = await start_api()
    client = api.client
    before = api.remote.tip()
    created = await client.put(
        "/api/v1/objects/Workflow/nightly", role="editor", data=workflow("nightly").encode()
    )
    assert created.status == 202, created.text
    answer = created.json()
    assert answer["path"] == "workflows/nightly.yaml" and answer["branch"] == "main"
    assert api.remote.tip() == answer["commit"]
    assert git(api.remote.path, "rev-parse", f"{answer['commit']}^") == before
    assert _author(api, answer["commit"]) == "editor-bot <editor-bot@reconciler.api>"
    written = yaml.safe_load(api.remote.read("workflows/nightly.yaml"))
    assert written["metadata"]["name"] == "nightly"
    done = await _task_done(api, answer["task_id"])
    assert done["object"] == "Workflow/nightly" and done["requested_by"] == "editor-bot"

    async def listed() -> bool:
        reply = await client.get("/api/v1/objects/Workflow/nightly")
        return reply.status == 200

    await wait_until("Workflow/nightly served", listed)

    # Update an object that lives in a seeded file: the same file is rewritten, as JSON body.
    document = yaml.safe_load(workflow("smoke", nodes=2))
    updated = await client.put("/api/v1/objects/Workflow/smoke", role="admin", json=document)
    assert updated.status == 202, updated.text
    assert updated.json()["path"] == "workflows.yaml"
    assert _author(api, updated.json()["commit"]) == "admin-bot <admin-bot@reconciler.api>"
    nodes = yaml.safe_load(api.remote.read("workflows.yaml"))["spec"]["workflows"]["provision"]
    assert [n["id"] for n in nodes["nodes"]] == ["n0", "n1"]
    await _task_done(api, updated.json()["task_id"])

    same = await client.put("/api/v1/objects/Workflow/smoke", role="admin", json=document)
    assert same.status == 409 and "nothing was committed" in same.json()["detail"]

    deleted = await client.delete("/api/v1/objects/Workflow/nightly", role="editor")
    assert deleted.status == 202, deleted.text
    assert "workflows/nightly.yaml" not in api.remote.paths()
    assert api.remote.tip() == deleted.json()["commit"]
    await _task_done(api, deleted.json()["task_id"])
    gone = await client.delete("/api/v1/objects/Workflow/nightly", role="editor")
    assert gone.status == 404


async def test_roles_and_mismatched_documents_are_refused(start_api: StartApi) -> None:
    api = await start_api()
    before = api.remote.tip()
    body = workflow("nightly").encode()
    for role in ("viewer", "operator"):
        reply = await api.client.put("/api/v1/objects/Workflow/nightly", role=role, data=body)
        assert reply.status == 403 and "editor" in reply.json()["detail"]
    assert (await api.client.put("/api/v1/objects/Workflow/x", role=None, data=body)).status == 401
    other = await api.client.put("/api/v1/objects/Workflow/other", role="editor", data=body)
    assert other.status == 422 and "metadata.name" in other.json()["detail"]
    unknown = await api.client.put("/api/v1/objects/Widget/nightly", role="editor", data=body)
    assert unknown.status == 404
    broken = await api.client.put("/api/v1/objects/Workflow/x", role="editor", data=b"a: [")
    assert broken.status == 400
    assert api.remote.tip() == before


async def test_a_document_that_would_not_validate_is_422_and_no_commit(
    start_api: StartApi,
) -> None:
    api = await start_api()
    before = api.remote.tip()
    document = yaml.safe_load(workflow("nightly"))
    document["spec"]["workflows"]["provision"]["edges"] = [{"source": "n0", "dest": "nope"}]
    reply = await api.client.put("/api/v1/objects/Workflow/nightly", role="editor", json=document)
    assert reply.status == 422, reply.text
    problem = reply.json()
    assert "nothing was committed" in problem["detail"]
    assert problem["diagnostics"] and any("nope" in d for d in problem["diagnostics"])
    assert any("workflows/nightly.yaml" in d for d in problem["diagnostics"])
    assert api.remote.tip() == before
    assert "workflows/nightly.yaml" not in api.remote.paths()


async def test_branch_mode_pushes_a_review_branch_and_leaves_main(start_api: StartApi) -> None:
    api = await start_api(write_mode="branch")
    main = api.remote.tip()
    reply = await api.client.put(
        "/api/v1/objects/Workflow/nightly", role="editor", data=workflow("nightly").encode()
    )
    assert reply.status == 202, reply.text
    answer = reply.json()
    assert answer["branch"] == f"reconciler/api/{answer['task_id']}"
    assert answer["status"] == "review"
    assert api.remote.tip() == main
    assert api.remote.tip(answer["branch"]) == answer["commit"]
    assert git(api.remote.path, "rev-parse", f"{answer['commit']}^") == main
    assert "workflows/nightly.yaml" in api.remote.paths(answer["branch"])
    assert _author(api, answer["commit"]).startswith("editor-bot ")
    task = (await api.client.get(f"/api/v1/tasks/{answer['task_id']}")).json()
    assert task["status"] == "review" and task["mode"] == "branch"


async def test_write_mode_off_refuses(start_api: StartApi) -> None:
    api = await start_api(write_mode="off")
    before = api.remote.tip()
    reply = await api.client.put(
        "/api/v1/objects/Workflow/nightly", role="admin", data=workflow("nightly").encode()
    )
    assert reply.status == 403 and "write_mode: off" in reply.json()["detail"]
    deleted = await api.client.delete("/api/v1/objects/Workflow/smoke", role="admin")
    assert deleted.status == 403
    assert api.remote.tip() == before


def test_a_push_lost_to_another_writer_is_rebuilt_on_their_commit(
    tmp_path: Path, make_git_remote: MakeGitRemote
) -> None:
    """Someone pushes between our read of the tip and our push: we retry on top of theirs."""
    remote = make_git_remote(files={"a.yaml": "a: 1\n"})
    other = remote.clone("other")
    seen_tips: list[str] = []
    checked: list[str] = []
    raced = threading.Event()

    def before_push(attempt: int) -> None:
        if attempt == 1:
            other.commit_and_push({"b.yaml": "b: 2\n"}, "Someone else's change")
            raced.set()

    def edit(tip: str) -> dict[str, bytes | None]:
        seen_tips.append(tip)
        return {"c.yaml": b"c: 3\n"}

    writer = GitWriter(remote.url, workdir=tmp_path / "writer", before_push=before_push)
    result = writer.write(
        base="main",
        branch="main",
        author=GitIdentity("editor-bot", "editor-bot@reconciler.api"),
        message="Write c",
        edit=edit,
        check=checked.append,
    )
    assert raced.is_set() and result.attempts == 2
    assert seen_tips[1] == other.head() and seen_tips[0] != seen_tips[1]
    assert checked[-1] == result.commit and len(checked) == 2
    assert remote.tip() == result.commit
    assert {"a.yaml", "b.yaml", "c.yaml"} <= remote.paths()
    assert git(remote.path, "log", "-1", "--format=%an", result.commit) == "editor-bot"
    assert writer.contains(result.commit, other.head(), branch="main")
    assert not writer.contains(other.head(), result.commit, branch="main")
    writer.close()


async def test_dashboard_update_and_delete_commit(start_api: StartApi) -> None:
    api = await start_api()
    client = api.client
    odd = await client.put(
        "/api/workflows/train", role="editor", json={"colour": "teal", "priority": "high"}
    )
    assert odd.status == 422 and "colour" in odd.json()["detail"]
    reply = await client.put(
        "/api/workflows/train",
        role="editor",
        json={"description": "Nightly training", "priority": "high", "tags": ["ml"]},
    )
    assert reply.status == 200, reply.text
    answer = reply.json()
    assert answer["priority"] == "high" and answer["description"] == "Nightly training"
    assert api.remote.tip() == answer["commit"]
    assert _author(api, answer["commit"]).startswith("editor-bot ")
    spec = yaml.safe_load(api.remote.read("manual.yaml"))["spec"]
    assert spec["priority"] == "high" and spec["tags"] == ["ml"]
    assert spec["user_params"] == {"epochs": 1, "delay": "10ms"}  # the rest is kept
    await _task_done(api, answer["taskId"])

    async def high() -> bool:
        found = (await client.get("/api/workflows/train")).json()
        return bool(found.get("priority") == "high")

    await wait_until("the dashboard reads the new priority", high)
    deleted = await client.delete("/api/workflows/train", role="editor")
    assert deleted.status == 200 and deleted.json()["success"] is True
    assert "manual.yaml" not in api.remote.paths()
    assert (await client.delete("/api/workflows/train", role="operator")).status == 403


TEAM_HEAD = """\
# Team workflows: edited by people and by the API
apiVersion: reconciler/v1
kind: Workflow
metadata: {name: first, labels: {team: ml}}   # the first one
spec:
  trigger: manual
  tags: [nightly, gpu]
  workflows:
    provision:
      nodes:
        - {id: a, type: noop, user_inputs: {delay: 10ms}}
      edges: []
"""
TEAM_MIDDLE_MARKER = """\
---
# The middle workflow: the API changes this one
"""
TEAM_MIDDLE = """\
apiVersion: reconciler/v1
kind: Workflow
metadata:
  name: middle
spec:
  trigger: manual
  # a comment inside
  tags: [one, two]
  description: "quoted text"
  workflows:
    provision:
      nodes:
        - {id: a, type: noop, user_inputs: {delay: 10ms}}
        - {id: b, type: noop, user_inputs: {delay: 10ms}}
      edges:
        - {source: a, dest: b}
"""
TEAM_TAIL = """\

# a comment after the middle, before the third
---   # the third
apiVersion: reconciler/v1
kind: Workflow
metadata: {name: third}
spec: {trigger: manual, workflows: {provision: {nodes: [{id: a, type: noop}], edges: []}}}
"""
TEAM = TEAM_HEAD + TEAM_MIDDLE_MARKER + TEAM_MIDDLE + TEAM_TAIL


async def test_a_write_changes_only_its_own_lines(start_api: StartApi) -> None:
    api = await start_api(files={**API_SEED, "team.yaml": TEAM})
    document = yaml.safe_load(TEAM_MIDDLE)
    document["spec"]["tags"] = ["one", "two", "three"]
    document["spec"]["priority"] = "high"
    reply = await api.client.put("/api/v1/objects/Workflow/middle", role="editor", json=document)
    assert reply.status == 202, reply.text
    assert reply.json()["path"] == "team.yaml"
    written = api.remote.read("team.yaml").decode()
    middle = TEAM_MIDDLE.replace("tags: [one, two]", "tags: [one, two, three]")
    expected = TEAM_HEAD + TEAM_MIDDLE_MARKER + middle + "  priority: high\n" + TEAM_TAIL
    assert written == expected
    await _task_done(api, reply.json()["task_id"])

    # The dashboard's update changes a document through a function of it: the same.
    dashboard = await api.client.put(
        "/api/workflows/third", role="editor", json={"priority": "low"}
    )
    assert dashboard.status == 200, dashboard.text
    third = api.remote.read("team.yaml").decode()
    assert third.startswith(expected.removesuffix(TEAM_TAIL.splitlines(True)[-1]))
    assert third.endswith(
        "spec: {trigger: manual, workflows: {provision: {nodes: [{id: a, type: noop}], "
        "edges: []}}, priority: low}\n"
    )


async def test_a_delete_of_the_middle_document_keeps_the_others_byte_identical(
    start_api: StartApi,
) -> None:
    api = await start_api(files={**API_SEED, "team.yaml": TEAM})
    reply = await api.client.delete("/api/v1/objects/Workflow/middle", role="editor")
    assert reply.status == 202, reply.text
    written = api.remote.read("team.yaml").decode()
    # Its --- line, the comment under it, its content and the blank line after it go;
    # the comment standing before the next --- stays with the third document.
    assert written == TEAM_HEAD + TEAM_TAIL.lstrip("\n")
    await _task_done(api, reply.json()["task_id"])

    first = await api.client.delete("/api/v1/objects/Workflow/first", role="editor")
    assert first.status == 202, first.text
    assert api.remote.read("team.yaml").decode() == TEAM_TAIL.lstrip("\n")
    last = await api.client.delete("/api/v1/objects/Workflow/third", role="editor")
    assert last.status == 202, last.text
    assert "team.yaml" not in api.remote.paths()
