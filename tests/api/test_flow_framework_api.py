"""The flow framework's workflow API over real HTTP against a real daemon and Git remote.

The reference document's example template (create_connector -> register_remote_model ->
deploy_model) is created as JSON and as YAML, exactly as the document gives it, and
provisioned, read, deprovisioned, updated and deleted; each write is a commit in the
remote's history authored by the caller's token name, and the template's inline
credential value reaches neither the remote's history nor any response.
"""

from __future__ import annotations

import copy
import json
import re
import stat
from typing import Any

import yaml

from tests.api.conftest import API_SEED, RunningDaemon, StartApi, wait_until
from tests.conftest import git

BASE = "/_plugins/_flow_framework/workflow"
CREDENTIAL_VALUE = "12345"
HEX_RUN = re.compile(r"[0-9a-f]{12,}")
ROTATED_VALUE = "rotated-key-77aa0c"

# The reference's example, as it gives it (flow-framework-create-workflow.txt).
REFERENCE_JSON: dict[str, Any] = {
    "name": "createconnector-registerremotemodel-deploymodel",
    "description": "This template creates a connector to a remote model, registers it, and "
    "deploys that model",
    "use_case": "REMOTE_MODEL_DEPLOYMENT",
    "version": {"template": "1.0.0", "compatibility": ["2.12.0", "3.0.0"]},
    "workflows": {
        "provision": {
            "nodes": [
                {
                    "id": "create_connector_1",
                    "type": "create_connector",
                    "user_inputs": {
                        "name": "OpenAI Chat Connector",
                        "description": "The connector to public OpenAI model service for GPT 3.5",
                        "version": "1",
                        "protocol": "http",
                        "parameters": {"endpoint": "api.openai.com", "model": "gpt-3.5-turbo"},
                        "credential": {"openAI_key": "12345"},
                        "actions": [
                            {
                                "action_type": "predict",
                                "method": "POST",
                                "url": "https://${parameters.endpoint}/v1/chat/completions",
                            }
                        ],
                    },
                },
                {
                    "id": "register_model_2",
                    "type": "register_remote_model",
                    "previous_node_inputs": {"create_connector_1": "connector_id"},
                    "user_inputs": {
                        "name": "openAI-gpt-3.5-turbo",
                        "function_name": "remote",
                        "description": "test model",
                    },
                },
                {
                    "id": "deploy_model_3",
                    "type": "deploy_model",
                    "previous_node_inputs": {"register_model_2": "model_id"},
                },
            ],
            "edges": [
                {"source": "create_connector_1", "dest": "register_model_2"},
                {"source": "register_model_2", "dest": "deploy_model_3"},
            ],
        }
    },
}

REFERENCE_YAML = """\
# This name is required
name: createconnector-registerremotemodel-deploymodel
# Other fields are optional but useful
description: This template creates a connector to a remote model, registers it, and
  deploys that model
# Other templates with a similar use case can be searched
use_case: REMOTE_MODEL_DEPLOYMENT
version:
  # Templates may be versioned by their authors
  template: 1.0.0
  # Compatibility with OpenSearch 2.12.0 and higher and 3.0.0 and higher
  compatibility:
  - 2.12.0
  - 3.0.0
# One or more workflows can be included, presently only provision is supported
workflows:
  provision:
    # These nodes are the workflow steps corresponding to ML Commons APIs
    nodes:
    # This ID must be unique to this workflow
    - id: create_connector_1
      # There may be multiple steps with the same type
      type: create_connector
      # These inputs match the Create Connector API body
      user_inputs:
        name: OpenAI Chat Connector
        description: The connector to public OpenAI model service for GPT 3.5
        version: '1'
        protocol: http
        parameters:
          endpoint: api.openai.com
          model: gpt-3.5-turbo
        credential:
          openAI_key: '12345'
        actions:
        - action_type: predict
          method: POST
          url: https://${parameters.endpoint}/v1/chat/completions
    # This ID must be unique to this workflow
    - id: register_model_2
      type: register_remote_model
      # This step needs the connector_id produced as an output of the previous step
      previous_node_inputs:
        create_connector_1: connector_id
      # These inputs match the Register Model API body
      user_inputs:
        name: openAI-gpt-3.5-turbo
        function_name: remote
        description: test model
    # This ID must be unique to this workflow
    - id: deploy_model_3
      type: deploy_model
      # This step needs the model_id produced as an output of the previous step
      previous_node_inputs:
        register_model_2: model_id
    # Since the nodes include previous_node_inputs these are optional to define
    # They will be added automatically and included in the stored template
    # Additional edges may also be added here if required for sequencing
    edges:
    - source: create_connector_1
      dest: register_model_2
    - source: register_model_2
      dest: deploy_model_3
"""


def _author(api: RunningDaemon, commit: str) -> str:
    return git(api.remote.path, "log", "-1", "--format=%an <%ae>", commit)


def _without_ids(text: str) -> str:
    """``text`` without long hex runs (execution ids, commits, hashes): the reference's
    secret, ``12345``, turns up inside a random id now and then, which is no leak."""
    return HEX_RUN.sub("", text)


def _assert_value_nowhere(api: RunningDaemon, value: str) -> None:
    """``value`` is in no file of any commit of the remote, no commit message, no reply."""
    revisions = git(api.remote.path, "rev-list", "--all").split()
    assert revisions
    for revision in revisions:
        listed = git(api.remote.path, "ls-tree", "-r", "--name-only", revision).splitlines()
        for path in listed:
            text = git(api.remote.path, "show", f"{revision}:{path}")
            assert value not in _without_ids(text), f"{value!r} in {path} at {revision}"
    messages = git(api.remote.path, "log", "--all", "--format=%B")
    assert value not in _without_ids(messages)
    for reply in api.client.replies:
        assert value not in _without_ids(reply.text), reply.text


async def _served(api: RunningDaemon, workflow_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        reply = await api.client.get(f"{BASE}/{workflow_id}")
        return reply.json() if reply.status == 200 else None

    found: dict[str, Any] = await wait_until(f"workflow {workflow_id} served", probe)
    return found


async def _state(api: RunningDaemon, workflow_id: str, wanted: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        body: dict[str, Any] = (
            await api.client.get(f"{BASE}/{workflow_id}/_status?all=true")
        ).json()
        assert body["state"] != "FAILED", body
        return body if body["state"] == wanted else None

    found: dict[str, Any] = await wait_until(f"workflow {workflow_id} {wanted}", probe)
    return found


async def test_reference_json_template_lives_its_whole_life(start_api: StartApi) -> None:
    api = await start_api()
    client = api.client
    before = api.remote.tip()
    assert (await client.post(BASE, role="viewer", json=REFERENCE_JSON)).status == 403
    assert (await client.post(BASE, role=None, json=REFERENCE_JSON)).status == 401
    assert api.remote.tip() == before

    created = await client.post(BASE, role="editor", json=REFERENCE_JSON)
    assert created.status == 201, created.text
    answer = created.json()
    workflow_id = answer["workflow_id"]
    assert workflow_id.startswith("createconnector-registerremotemodel-deploymodel-")
    assert api.remote.tip() == answer["commit"] and answer["branch"] == "main"
    assert git(api.remote.path, "rev-parse", f"{answer['commit']}^") == before
    assert _author(api, answer["commit"]) == "editor-bot <editor-bot@reconciler.api>"
    written = api.remote.read(f"workflows/{workflow_id}.yaml").decode()
    document = yaml.safe_load(written)
    connector_node = document["spec"]["workflows"]["provision"]["nodes"][0]
    secret_name = connector_node["user_inputs"]["credential"]["openAI_key"]
    assert secret_name.startswith(f"{workflow_id}.create_connector_1.openAI_key.")
    assert CREDENTIAL_VALUE not in written
    stored = api.state_dir.parent / "secrets" / secret_name
    assert stored.read_text() == CREDENTIAL_VALUE
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600

    template = await _served(api, workflow_id)
    assert template["name"] == REFERENCE_JSON["name"]
    assert template["version"] == REFERENCE_JSON["version"]
    assert template["use_case"] == "REMOTE_MODEL_DEPLOYMENT"
    nodes = template["workflows"]["provision"]["nodes"]
    assert [n["id"] for n in nodes] == ["create_connector_1", "register_model_2", "deploy_model_3"]
    assert nodes[0]["user_inputs"]["credential"] == {"openAI_key": secret_name}
    assert (
        template["workflows"]["provision"]["edges"]
        == REFERENCE_JSON["workflows"]["provision"]["edges"]
    )
    fresh = (await client.get(f"{BASE}/{workflow_id}/_status")).json()
    assert fresh == {"workflow_id": workflow_id, "state": "NOT_STARTED", "resources_created": []}

    assert (await client.post(f"{BASE}/{workflow_id}/_provision", role="viewer")).status == 403
    started = await client.post(f"{BASE}/{workflow_id}/_provision", role="operator")
    assert started.status == 200, started.text
    assert started.json()["workflow_id"] == workflow_id
    done = await _state(api, workflow_id, "COMPLETED")
    assert done["provisioning_progress"] == "DONE"
    assert isinstance(done["provision_start_time"], int)
    assert done["provision_end_time"] >= done["provision_start_time"]
    made = done["resources_created"]
    assert [(r["workflow_step_name"], r["workflow_step_id"], r["resource_type"]) for r in made] == [
        ("create_connector", "create_connector_1", "connector_id"),
        ("register_remote_model", "register_model_2", "model_id"),
        ("deploy_model", "deploy_model_3", "model_id"),
    ]
    assert made[0]["resource_id"].startswith("connector-")
    assert made[1]["resource_id"] == made[2]["resource_id"]
    store = api.daemon.store
    assert store is not None
    connector = store.get_value(f"flow/connector/{made[0]['resource_id']}")
    assert connector["credential"] == {"openAI_key": secret_name}
    # The connector is a Credential for OpenAI naming the stored secret; the model is a
    # cloud Model through it, deployed at the provider's endpoint.
    assert connector["credential_spec"] == {"provider": "openai", "secret": secret_name}
    remote = store.get_value(f"flow/remote_model/{made[1]['resource_id']}")
    assert remote["deployed"] is True
    assert remote["source"]["uri"] == "openai/gpt-3.5-turbo"
    assert remote["endpoint_url"] == "https://api.openai.com/v1"
    plain = (await client.get(f"{BASE}/{workflow_id}/_status")).json()
    assert "provisioning_progress" not in plain and plain["resources_created"] == made
    assert (await client.post(f"{BASE}/{workflow_id}/_provision", role="operator")).status == 409

    changed = copy.deepcopy(REFERENCE_JSON)
    changed["description"] = "changed"
    refused = await client.put(f"{BASE}/{workflow_id}", role="editor", json=changed)
    assert refused.status == 409 and "NOT_STARTED" in refused.json()["detail"]

    assert (await client.post(f"{BASE}/{workflow_id}/_deprovision", role="viewer")).status == 403
    undone = await client.post(f"{BASE}/{workflow_id}/_deprovision", role="operator")
    assert undone.status == 200, undone.text
    after = await _state(api, workflow_id, "NOT_STARTED")
    assert after["resources_created"] == [] and after["provisioning_progress"] == "NOT_STARTED"
    assert store.get_value(f"flow/connector/{made[0]['resource_id']}") is None
    assert store.get_value(f"flow/remote_model/{made[1]['resource_id']}") is None

    # Once deprovisioned it may be updated: the template read back, changed and sent again
    # keeps its credential's secret name.
    template = await _served(api, workflow_id)
    # GET adds what the server keeps; a template read back and sent again may carry it.
    assert isinstance(template["last_provisioned_time"], int)
    assert template["user"] == {"name": "editor-bot"}
    created_time = template["created_time"]
    assert isinstance(created_time, int) and template["last_updated_time"] >= created_time
    template["description"] = "changed"
    updated = await client.put(f"{BASE}/{workflow_id}", role="admin", json=template)
    assert updated.status == 200, updated.text
    assert _author(api, updated.json()["commit"]) == "admin-bot <admin-bot@reconciler.api>"
    assert api.remote.tip() == updated.json()["commit"]
    assert secret_name in api.remote.read(f"workflows/{workflow_id}.yaml").decode()
    assert stored.read_text() == CREDENTIAL_VALUE

    # A new value for the credential is a new secret, named in a new commit.
    template["workflows"]["provision"]["nodes"][0]["user_inputs"]["credential"] = {
        "openAI_key": ROTATED_VALUE
    }
    rotated = await client.put(f"{BASE}/{workflow_id}", role="editor", json=template)
    assert rotated.status == 200, rotated.text
    document = yaml.safe_load(api.remote.read(f"workflows/{workflow_id}.yaml"))
    node = document["spec"]["workflows"]["provision"]["nodes"][0]
    new_name = node["user_inputs"]["credential"]["openAI_key"]
    assert new_name != secret_name and new_name.startswith(f"{workflow_id}.create_connector_1.")
    assert (stored.parent / new_name).read_text() == ROTATED_VALUE
    assert stored.read_text() == CREDENTIAL_VALUE

    async def changed_served() -> bool:
        return (await _served(api, workflow_id))["description"] == "changed"

    await wait_until("the update served", changed_served)
    served = await _served(api, workflow_id)
    assert served["created_time"] == created_time and served["user"] == {"name": "editor-bot"}
    assert served["last_updated_time"] >= created_time

    deleted = await client.delete(f"{BASE}/{workflow_id}", role="editor")
    assert deleted.status == 200, deleted.text
    gone = deleted.json()
    assert gone["result"] == "deleted" and gone["_id"] == workflow_id
    assert _author(api, gone["commit"]) == "editor-bot <editor-bot@reconciler.api>"
    assert f"workflows/{workflow_id}.yaml" not in api.remote.paths()
    # Its stored secrets (the first value and the rotated one) go with it.
    assert not stored.exists() and not (stored.parent / new_name).exists()
    assert not list(stored.parent.glob(f"{workflow_id}.*"))

    async def absent() -> bool:
        return (await client.get(f"{BASE}/{workflow_id}")).status == 404

    await wait_until("the deleted workflow gone", absent)
    _assert_value_nowhere(api, CREDENTIAL_VALUE)
    _assert_value_nowhere(api, ROTATED_VALUE)


async def test_reference_yaml_template_with_provision_true(start_api: StartApi) -> None:
    api = await start_api()
    client = api.client
    created = await client.post(
        f"{BASE}?provision=true",
        role="editor",
        data=REFERENCE_YAML.encode(),
        headers={"Content-Type": "application/yaml"},
    )
    assert created.status == 201, created.text
    answer = created.json()
    workflow_id = answer["workflow_id"]
    assert answer["execution_id"]
    assert _author(api, answer["commit"]) == "editor-bot <editor-bot@reconciler.api>"
    done = await _state(api, workflow_id, "COMPLETED")
    assert [r["workflow_step_id"] for r in done["resources_created"]] == [
        "create_connector_1",
        "register_model_2",
        "deploy_model_3",
    ]
    template = await _served(api, workflow_id)
    assert template["version"] == {"template": "1.0.0", "compatibility": ["2.12.0", "3.0.0"]}
    assert isinstance(template["last_provisioned_time"], int)

    broken = await client.post(
        BASE, role="editor", data=b"name: [unclosed", headers={"Content-Type": "application/yaml"}
    )
    assert broken.status == 400 and "line" in broken.json()["detail"]
    # A key that YAML loads as a number has no JSON meaning: refused, naming where.
    numbered = await client.post(
        BASE,
        role="editor",
        data=b"name: n\nui_metadata:\n  1e100: []\n  ok: 1\n",
        headers={"Content-Type": "application/yaml"},
    )
    assert numbered.status == 400, numbered.text
    assert "in ui_metadata: 1e+100" in numbered.json()["detail"]
    _assert_value_nowhere(api, CREDENTIAL_VALUE)


def _draft_template() -> dict[str, Any]:
    template = copy.deepcopy(REFERENCE_JSON)
    template["name"] = "work in progress"
    template["workflows"]["provision"]["nodes"][2]["type"] = "deploy_somewhere"
    return template


async def test_draft_saved_with_validation_none_then_finished(start_api: StartApi) -> None:
    api = await start_api()
    client = api.client
    before = api.remote.tip()
    rejected = await client.post(BASE, role="editor", json=_draft_template())
    assert rejected.status == 400 and "deploy_somewhere" in rejected.text
    assert api.remote.tip() == before

    saved = await client.post(f"{BASE}?validation=none", role="editor", json=_draft_template())
    assert saved.status == 201, saved.text
    draft = saved.json()
    workflow_id = draft["workflow_id"]
    assert workflow_id.startswith("work-in-progress-") and draft["draft"] is True
    assert "deploy_somewhere" in draft["problem"]
    assert api.remote.tip() == before, "a draft is never committed"
    read = (await client.get(f"{BASE}/{workflow_id}")).json()
    assert read["draft"] is True and read["name"] == "work in progress"
    credential = read["workflows"]["provision"]["nodes"][0]["user_inputs"]["credential"]
    assert credential["openAI_key"].startswith(f"{workflow_id}.create_connector_1.openAI_key.")
    status = (await client.get(f"{BASE}/{workflow_id}/_status")).json()
    assert status["state"] == "NOT_STARTED"
    refused = await client.post(f"{BASE}/{workflow_id}/_provision", role="operator")
    assert refused.status == 409 and "draft" in refused.json()["detail"]
    search = {"query": {"match": {"name": "progress"}}}
    hits = (await client.post(f"{BASE}/_search", json=search)).json()["hits"]
    assert [h["_id"] for h in hits["hits"]] == [workflow_id]

    finished = copy.deepcopy(read)
    for key in ("draft", "problem"):
        finished.pop(key)
    finished["workflows"]["provision"]["nodes"][2]["type"] = "deploy_model"
    committed = await client.put(f"{BASE}/{workflow_id}", role="editor", json=finished)
    assert committed.status == 200, committed.text
    assert _author(api, committed.json()["commit"]) == "editor-bot <editor-bot@reconciler.api>"
    assert f"workflows/{workflow_id}.yaml" in api.remote.paths()
    template = await _served(api, workflow_id)
    assert "draft" not in template and template["name"] == "work in progress"

    leaky = _draft_template()
    leaky["workflows"]["provision"]["nodes"][1]["user_inputs"]["api_key"] = "sk-draft-5c1e9a"
    refused_draft = await client.post(f"{BASE}?validation=none", role="editor", json=leaky)
    assert refused_draft.status == 400 and "api_key" in refused_draft.json()["detail"]
    other = await client.post(f"{BASE}?validation=none", role="editor", json=_draft_template())
    other_id = other.json()["workflow_id"]
    secrets_dir = api.state_dir.parent / "secrets"
    assert list(secrets_dir.glob(f"{other_id}.*"))
    dropped = await client.delete(f"{BASE}/{other_id}", role="editor")
    assert dropped.status == 200 and "commit" not in dropped.json()
    assert not list(secrets_dir.glob(f"{other_id}.*")), "a dropped draft's secrets go too"
    assert list(secrets_dir.glob(f"{workflow_id}.*")), "another workflow's secrets stay"
    assert (await client.get(f"{BASE}/{other_id}")).status == 404
    _assert_value_nowhere(api, CREDENTIAL_VALUE)
    _assert_value_nowhere(api, "sk-draft-5c1e9a")


async def test_steps_and_search(start_api: StartApi) -> None:
    api = await start_api()
    client = api.client
    steps = (await client.get(f"{BASE}/_steps")).json()
    assert steps["create_connector"]["outputs"] == ["connector_id"]
    assert steps["create_connector"]["required_plugins"] == []
    assert "credential" in steps["create_connector"]["inputs"]
    assert "model_id" in steps["register_remote_model"]["outputs"]
    assert {"deploy_model", "noop", "http_request"} <= set(steps)
    only = (await client.get(f"{BASE}/_steps?workflow_step=deploy_model,create_connector")).json()
    assert sorted(only) == ["create_connector", "deploy_model"]
    unknown = await client.get(f"{BASE}/_steps?workflow_step=teleport")
    assert unknown.status == 400 and "teleport" in unknown.json()["detail"]

    created = await client.post(BASE, role="editor", json=REFERENCE_JSON)
    workflow_id = created.json()["workflow_id"]
    await _served(api, workflow_id)
    everything = (await client.get(f"{BASE}/_search")).json()["hits"]
    assert workflow_id in [h["_id"] for h in everything["hits"]]
    assert everything["total"]["value"] >= 4  # the seeded Workflows read as templates too
    by_use_case = {
        "query": {
            "bool": {
                "must": [{"term": {"use_case": "REMOTE_MODEL_DEPLOYMENT"}}],
                "must_not": [{"match": {"name": "unrelated"}}],
            }
        },
        "size": 5,
    }
    found = (await client.post(f"{BASE}/_search", json=by_use_case)).json()
    assert found["hits"]["total"] == {"value": 1, "relation": "eq"}
    hit = found["hits"]["hits"][0]
    assert hit["_id"] == workflow_id and hit["_source"]["name"] == REFERENCE_JSON["name"]
    bad = await client.post(f"{BASE}/_search", json={"query": {"fuzzy": {"name": "x"}}})
    assert bad.status == 400 and "fuzzy" in bad.json()["detail"]
    assert (await client.get(f"{BASE}/absent-workflow")).status == 404
    assert (await client.get(f"{BASE}/absent-workflow/_status")).status == 404
    unknown_field = {**REFERENCE_JSON, "owner": "someone"}
    refused = await client.post(BASE, role="editor", json=unknown_field)
    assert refused.status == 400 and "owner" in refused.json()["detail"]
    assert json.loads(created.text)["workflow_id"] == workflow_id


def _placeholder_template() -> dict[str, Any]:
    template = copy.deepcopy(REFERENCE_JSON)
    connector = template["workflows"]["provision"]["nodes"][0]["user_inputs"]
    connector["credential"] = {"openAI_key": "${{ openai_key }}"}
    return template


async def test_credential_given_at_provision_goes_to_the_secret_store(start_api: StartApi) -> None:
    api = await start_api()
    client = api.client
    value = "prov-time-key-5e7d21c9"
    created = await client.post(BASE, role="editor", json=_placeholder_template())
    assert created.status == 201, created.text
    workflow_id = created.json()["workflow_id"]
    served = await _served(api, workflow_id)
    assert served["workflows"]["provision"]["user_params"] == {"openai_key": ""}

    undeclared = await client.post(
        f"{BASE}/{workflow_id}/_provision", role="operator", json={"nope": "x"}
    )
    assert undeclared.status == 400 and "nope" in undeclared.json()["detail"]

    # Without the value the connector has no secret to name: the provision fails.
    first = await client.post(f"{BASE}/{workflow_id}/_provision", role="operator")
    assert first.status == 200, first.text

    async def failed() -> dict[str, Any] | None:
        body: dict[str, Any] = (await client.get(f"{BASE}/{workflow_id}/_status?all=true")).json()
        return body if body["state"] == "FAILED" else None

    status = await wait_until("the provision without a credential to fail", failed)
    assert status["provisioning_progress"] == "FAILED" and "credential" in status["error"]
    refused = await client.put(f"{BASE}/{workflow_id}", role="editor", json=served)
    assert refused.status == 409 and "FAILED" in refused.json()["detail"]

    # A FAILED workflow may be provisioned again, now with the value.
    started = await client.post(
        f"{BASE}/{workflow_id}/_provision", role="operator", json={"openai_key": value}
    )
    assert started.status == 200, started.text
    await _state(api, workflow_id, "COMPLETED")
    stored = api.state_dir.parent / "secrets" / f"{workflow_id}.param.openai_key"
    assert stored.read_text() == value
    run = (await client.get(f"/api/v1/executions/{started.json()['execution_id']}")).json()
    assert run["params"]["openai_key"] == f"{workflow_id}.param.openai_key"
    unknown = await client.post(
        f"{BASE}/{workflow_id}/_provision", role="operator", json={"nope": "x"}
    )
    assert unknown.status == 409  # COMPLETED: nothing runs, whatever the params

    # Create and provision in one request, the value given as a query parameter.
    before = api.remote.tip()
    early = await client.post(f"{BASE}?openai_key=x", role="editor", json=_placeholder_template())
    assert early.status == 400 and "provision=true" in early.json()["detail"]
    wrong = await client.post(
        f"{BASE}?provision=true&other_key=x", role="editor", json=_placeholder_template()
    )
    assert wrong.status == 400 and "other_key" in wrong.json()["detail"]
    assert api.remote.tip() == before
    second = "query-key-0b8e44f1"
    both = await client.post(
        f"{BASE}?provision=true&openai_key={second}", role="editor", json=_placeholder_template()
    )
    assert both.status == 201, both.text
    other_id = both.json()["workflow_id"]
    await _state(api, other_id, "COMPLETED")
    assert (api.state_dir.parent / "secrets" / f"{other_id}.param.openai_key").read_text() == second
    _assert_value_nowhere(api, value)
    _assert_value_nowhere(api, second)


GIT_WORKFLOW = """\
apiVersion: reconciler/v1
kind: Workflow
metadata: {name: nightly, labels: {team: eval}}
spec:
  description: Nightly evaluation
  priority: high
  tags: [eval]
  trigger: manual
  config: {retries: 2, retry_delay: 5s}
  workflows:
    provision:
      nodes:
        - {id: score, type: noop, user_inputs: {delay: 10ms}}
"""


async def test_update_of_a_workflow_written_in_git_keeps_what_templates_lack(
    start_api: StartApi,
) -> None:
    api = await start_api(files={**API_SEED, "nightly.yaml": GIT_WORKFLOW})
    client = api.client
    template = await _served(api, "nightly")
    assert template == {
        "name": "nightly",
        "description": "Nightly evaluation",
        "workflows": {
            "provision": {
                "nodes": [{"id": "score", "type": "noop", "user_inputs": {"delay": "10ms"}}],
                "edges": [],
            }
        },
    }
    template["description"] = "Nightly evaluation, from the flow framework"
    template["use_case"] = "MODEL_EVALUATION"
    template["workflows"]["provision"]["nodes"].append({"id": "report", "type": "noop"})
    updated = await client.put(
        f"{BASE}/nightly",
        role="editor",
        data=yaml.safe_dump(template).encode(),
        headers={"Content-Type": "application/yaml"},
    )
    assert updated.status == 200, updated.text
    assert _author(api, updated.json()["commit"]) == "editor-bot <editor-bot@reconciler.api>"
    written = yaml.safe_load(api.remote.read("nightly.yaml"))
    assert written["metadata"]["labels"] == {"team": "eval"}
    spec = written["spec"]
    assert spec["priority"] == "high" and spec["tags"] == ["eval"]
    assert spec["config"] == {"retries": 2, "retry_delay": "5s"} and spec["trigger"] == "manual"
    assert spec["description"] == "Nightly evaluation, from the flow framework"
    assert spec["use_case"] == "MODEL_EVALUATION"
    assert [n["id"] for n in spec["workflows"]["provision"]["nodes"]] == ["score", "report"]


async def test_review_branch_mode(start_api: StartApi) -> None:
    api = await start_api(write_mode="branch")
    client = api.client
    before = api.remote.tip()
    refused = await client.post(f"{BASE}?provision=true", role="editor", json=REFERENCE_JSON)
    assert refused.status == 409 and "review" in refused.json()["detail"]
    created = await client.post(BASE, role="editor", json=REFERENCE_JSON)
    assert created.status == 201, created.text
    answer = created.json()
    assert answer["branch"].startswith("reconciler/api/") and api.remote.tip() == before
    assert api.remote.tip(answer["branch"]) == answer["commit"]
    assert _author(api, answer["commit"]) == "editor-bot <editor-bot@reconciler.api>"
    assert f"workflows/{answer['workflow_id']}.yaml" in api.remote.paths(answer["branch"])
    _assert_value_nowhere(api, CREDENTIAL_VALUE)


async def test_writes_off_refuses_without_storing_anything(start_api: StartApi) -> None:
    api = await start_api(write_mode="off")
    before = api.remote.tip()
    refused = await api.client.post(BASE, role="editor", json=REFERENCE_JSON)
    assert refused.status == 403 and "write_mode" in refused.json()["detail"]
    assert api.remote.tip() == before
    assert not list((api.state_dir.parent / "secrets").glob("createconnector-*"))
