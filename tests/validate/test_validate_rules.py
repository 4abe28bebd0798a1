"""Every validation rule: a fixture repo that breaks it, and the exact lines validate prints.

Each fixture folder under fixtures/ is a small spec repo. The expected output is the whole
output, so a rule that stops firing, fires twice or moves its position fails here.
"""

# ruff: noqa: E501  (expected output lines are kept whole, as validate prints them)

from __future__ import annotations

import os
from pathlib import Path

import pytest
from validate_fixtures import FIXTURES, lines_of, validate_fixture

from reconciler.core.validation.repo import ValidateOptions

EXPECTED: dict[str, list[str]] = {
    "billion_laughs": [
        "lol.yaml:10:8: error: alias expansion exceeds 10000 nodes (billion-laughs guard)",
    ],
    "cloud_serving": [
        "deployments.yaml:8:13: error: a cloud model without spec.cluster is served by its provider and runs nothing, so it takes no template; set spec.cluster to serve it through a gateway there (cloud-gateway by default) (Deployment/template-without-cluster)",
        "deployments.yaml:19:13: error: template 'vllm' serves model files; a cloud model on a cluster is served through a gateway template: the built-in cloud-gateway (the default) or one whose runtime.command takes {upstream_url} (Deployment/model-server-for-cloud)",
        "deployments.yaml:29:12: error: Cluster 'gpu-pool' is a kubernetes cluster; the cloud gateway runs on local clusters only (it has no container image yet): use a local Cluster, or remove spec.cluster to use the provider's endpoint (Deployment/gateway-on-kubernetes)",
        "deployments.yaml:39:13: error: template 'cloud-gateway' is a cloud gateway: it serves cloud models only (Deployment/gateway-for-files)",
        "objects.yaml:16:60: error: base_url 'http://10.0.0.5:8080/v1' would send the provider key in clear text: use https (http only on a loopback address) (Credential/openai-prod)",
        "objects.yaml:21:60: error: base_url is for cloud provider credentials; 'hugging_face' is not one (anthropic, azure_openai, bedrock, cohere, groq, mistral, openai, together, vertex) (Credential/hf-token)",
    ],
    "custom_tags": [
        "tags.yaml:5:7: error: tag '!!python/object:os.system' is not allowed: specs use plain YAML values only",
        "tags.yaml:13:13: error: tag '!foo' is not allowed: specs use plain YAML values only",
    ],
    "duplicate_across_files": [
        "b-second.yaml:13:9: error: duplicate Credential/openai-prod: already defined at a-first.yaml:4:9 (Credential/openai-prod)",
    ],
    "duplicate_in_file": [
        "credentials.yaml:8:18: error: duplicate Credential/hf-token: already defined at credentials.yaml:3:18 (Credential/hf-token)",
    ],
    "duplicate_key": [
        "credential.yaml:8:3: error: duplicate key 'provider'",
    ],
    "envelope": [
        "docs.yaml:2:1: error: a document must be a mapping with apiVersion, kind, metadata and spec",
        "docs.yaml:4:1: error: missing required field 'kind'; one of Credential, Project, Cluster, DeploymentTemplate, Model, Deployment, Workflow",
        "docs.yaml:10:7: error: unknown kind 'Credentail' (did you mean 'Credential'?); one of Credential, Project, Cluster, DeploymentTemplate, Model, Deployment, Workflow",
        "docs.yaml:15:13: error: apiVersion must be 'reconciler/v1', got 'reconciler/v2' (Credential/old-api)",
    ],
    "inline_secrets": [
        "specs.yaml:8:11: error: inline secret value: 'secret' takes the NAME of a secret in the daemon host's secret store, not its value (value not shown) (Credential/value-not-name)",
        "specs.yaml:16:11: error: inline secret value: 'secret' takes the NAME of a secret in the daemon host's secret store, not its value (value not shown) (Credential/value-with-spaces)",
        "specs.yaml:26:10: error: inline secret value: this looks like a password in a URL; secrets never go in Git, name one instead (value not shown) (Model/password-in-url)",
        "specs.yaml:35:9: error: inline secret value: this looks like a Hugging Face token; secrets never go in Git, name one instead (value not shown) (Workflow/leaky)",
        "specs.yaml:45:24: error: inline secret value under 'api_key': name a secret instead (a Credential with `secret: <name>`); value not shown (Workflow/leaky)",
    ],
    "names": [
        "docs.yaml:4:9: error: metadata.name 'Upper_Case' is not a lowercase DNS label (a-z, 0-9, '-', 1-63 chars, starting and ending alphanumeric) (Credential/Upper_Case)",
        "docs.yaml:12:9: error: metadata.name 'this-name-is-sixty-four-characters-long-which-is-one-too-many-xy' is not a lowercase DNS label (a-z, 0-9, '-', 1-63 chars, starting and ending alphanumeric) (Credential/this-name-is-sixty-four-characters-long-which-is-one-too-many-xy)",
        "docs.yaml:20:9: error: metadata.name: input should be a valid string (Credential)",
    ],
    "references": [
        "deployments.yaml:6:12: error: Project 'reserch' does not exist (did you mean 'research'?); add the Project, or set projects.create_missing in the daemon config (Deployment/typos)",
        "deployments.yaml:7:10: error: Model 'phi-3-5-mni' does not exist (did you mean 'phi-3-5-mini'?) (Deployment/typos)",
        "deployments.yaml:8:12: error: Cluster 'xeon-dv' does not exist (did you mean 'xeon-dev'?) (Deployment/typos)",
        "deployments.yaml:9:13: error: DeploymentTemplate 'chat-low-latncy' does not exist (did you mean 'chat-low-latency'?) (Deployment/typos)",
        "deployments.yaml:10:15: error: Credential 'hf-tokens' does not exist (did you mean 'hf-token'?) (Deployment/typos)",
        "deployments.yaml:19:10: error: Model 'phi-3-5-mini' is self-hosted (hugging_face): the Deployment needs a cluster (Deployment/no-cluster)",
        "deployments.yaml:29:10: error: Model 'zzzz' does not exist (Deployment/nothing-close)",
        "targets.yaml:33:17: error: Credential 'hf-tokn' does not exist (did you mean 'hf-token'?) (Model/phi-3-5-mini)",
    ],
    "schema": [
        "docs.yaml:7:3: error: unknown field 'spec.colour' (Model/unknown-field)",
        "docs.yaml:17:1: error: missing required field 'spec.modality' (Model/missing-field)",
        "docs.yaml:29:9: error: spec.tags: input should be a valid list (Model/wrong-type)",
        "docs.yaml:40:13: error: spec.modality: input should be 'llm', 'embedding', 'reranker', 'vision' or 'audio', got 'hologram' (Model/bad-enum)",
        "docs.yaml:42:20: error: spec.source.provider_type: provider_type 'ftp' is not one of hugging_face, cloud_model, url, disk (Model/bad-enum)",
        "docs.yaml:49:1: error: spec.kubeconfig: kubeconfig is required when driver is kubernetes: name the secret that holds it, e.g. kubeconfig: {secret: my-cluster-kubeconfig} (Cluster/bad-kubeconfig)",
    ],
    "slo": [
        "deployments.yaml:35:11: error: spec.deploy_config.ttft: [min, max] range [900, 100] has min greater than max (Deployment/min-above-max)",
        "deployments.yaml:49:33: error: per_session_tokens_per_sec min 100 tokens/s is below the 500 tokens/s needed to generate avg_sequence_length 1000 tokens within e2e_latency max 3 s after ttft max 1000 ms (Deployment/too-slow)",
        "deployments.yaml:66:18: error: e2e_latency max 2 s leaves no time for generation after the ttft min 5000 ms (Deployment/units-mixed-up)",
        "deployments.yaml:81:11: error: ttft max 2000 ms is not below e2e_latency max 2 s: no time is left to generate tokens (Deployment/no-generation-time)",
        "deployments.yaml:97:33: error: per_session_tokens_per_sec min 100 tokens/s is below the 200 tokens/s needed to generate avg_sequence_length 300 tokens within e2e_latency max 2 s after ttft max 500 ms (Deployment/template-defaults)",
        "deployments.yaml:107:26: error: spec.deploy_config.concurrent_requests: input should be greater than 0 (Deployment/zero-requests)",
    ],
    "workflow_graph": [
        "workflows.yaml:15:11: error: cycle in provision graph: a -> b -> c -> a (Workflow/cyclic)",
        "workflows.yaml:26:16: error: duplicate node id 'fetch' in provision (first used by node #1) (Workflow/ids-and-types)",
        "workflows.yaml:27:29: error: unknown step type 'k8s_jbo' for node 'train' (did you mean 'k8s_job'?); known types: add_model, create_connector, delete_connector, delete_model, deploy_model, fail, http_request, k8s_job, noop, register_local_pretrained_model, register_remote_model, scale_deployment, scan_model, undeploy_model, wait_ready (Workflow/ids-and-types)",
        "workflows.yaml:28:29: error: unknown step type 'check_secret' for node 'check'; known types: add_model, create_connector, delete_connector, delete_model, deploy_model, fail, http_request, k8s_job, noop, register_local_pretrained_model, register_remote_model, scale_deployment, scan_model, undeploy_model, wait_ready (Workflow/ids-and-types)",
        "workflows.yaml:30:33: error: edge dest 'trian' is not a node of provision (did you mean 'train'?) (Workflow/ids-and-types)",
        "workflows.yaml:48:13: error: previous_node_inputs of 'second' names 'frist', which is not an upstream node: no node has that id (did you mean 'first'?) (Workflow/passing)",
        "workflows.yaml:49:20: error: node 'first' (http_request) has no output 'endpoint_url'; it gives: body, json, status (Workflow/passing)",
        "workflows.yaml:52:18: error: unknown parameter 'taget' in ${{ taget }}: declare it in spec.user_params (did you mean 'target'?) (Workflow/passing)",
        "workflows.yaml:53:19: error: ${{ ghost.status }} names 'ghost', which is not a node of this workflow (Workflow/passing)",
        "workflows.yaml:53:19: error: node 'first' (http_request) has no output 'logs'; it gives: body, json, status (Workflow/passing)",
        "workflows.yaml:57:13: error: previous_node_inputs of 'third' names 'fourth', which is not upstream of 'third' but runs after it: cycle third -> fourth -> third (Workflow/passing)",
        "workflows.yaml:60:65: warning: input 'colour' is not used by step type 'http_request' (Workflow/passing)",
        "workflows.yaml:74:32: error: invalid duration 'soon': use a number and a unit (ms, s, m, h, d), e.g. '30s' (Workflow/inputs)",
        "workflows.yaml:77:24: error: node 'job' (k8s_job) is missing required input 'cluster' (Workflow/inputs)",
        "workflows.yaml:80:24: error: malformed ${{ }} placeholder in the inputs of 'report': use ${{ param }} or ${{ node_id.output }} (Workflow/inputs)",
    ],
    "workflow_references": [
        "workflows.yaml:11:12: error: Project 'reserch' does not exist; add the Project, or set projects.create_missing in the daemon config (Workflow/refs)",
        "workflows.yaml:20:25: error: Deployment 'phi-chatt' does not exist (Workflow/refs)",
        "workflows.yaml:24:25: warning: Deployment 'phi-chat' (from spec.user_params) does not exist; it must be given at execution time (Workflow/refs)",
        "workflows.yaml:28:22: error: Cluster 'locl' does not exist (did you mean 'local'?) (Workflow/refs)",
    ],
    # `provider: n` is the string 'n' (YAML 1.2), not false: the catalogue names it unknown.
    "yaml12_scalars": [
        "models.yaml:17:58: error: unknown cloud provider 'n'; known providers: anthropic, "
        "azure_openai, bedrock, cohere, groq, mistral, openai, together, vertex (Model/norway)",
    ],
    "yaml_syntax": [
        "broken.yaml:5:5: error: invalid YAML: while parsing a flow sequence, did not find "
        "expected ',' or ']' (it began at line 4, column 9)",
    ],
}

HOST_ONLY = {"host_checks"}


def test_every_fixture_folder_has_its_expected_output() -> None:
    assert set(os.listdir(FIXTURES)) == set(EXPECTED) | HOST_ONLY


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_fixture_gives_exactly_the_expected_lines(fixture: str) -> None:
    assert lines_of(validate_fixture(fixture)) == EXPECTED[fixture]


def test_all_problems_of_all_files_come_in_one_run(tmp_path: Path) -> None:
    for name in ("envelope", "references", "slo", "workflow_graph"):
        for source in (FIXTURES / name).iterdir():
            (tmp_path / f"{name}-{source.name}").write_bytes(source.read_bytes())
    lines = lines_of(validate_fixture(str(tmp_path)))
    expected = [
        f"{name}-{line}"
        for name in ("envelope", "references", "slo", "workflow_graph")
        for line in EXPECTED[name]
    ]
    assert sorted(lines) == sorted(expected)


def test_secret_values_are_never_printed() -> None:
    text = "\n".join(lines_of(validate_fixture("inline_secrets")))
    for leaked in ("FAKEFAKE", "horse", "Hunter2", "plain-text-value"):
        assert leaked not in text


def test_a_secret_value_echoed_by_another_check_is_masked(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Credential\nmetadata: {name: c}\n"
        "spec: {provider: openai, secret: sk-proj-fakefakefakefakefake01}\n"
        "---\napiVersion: reconciler/v1\nkind: Deployment\nmetadata: {name: d}\n"
        "spec:\n  model: sk-proj-fakefakefakefakefake01\n  endpoint_name: e\n"
        "  deploy_config: {concurrent_requests: 1, avg_sequence_length: 1, "
        "avg_context_length: 1}\n"
    )
    lines = lines_of(validate_fixture(str(tmp_path)))
    assert not any("fakefake" in line for line in lines)
    assert "d.yaml:10:10: error: Model '***' does not exist (Deployment/d)" in lines


def test_implicit_projects_accept_a_missing_project() -> None:
    options = ValidateOptions(implicit_projects=True)
    lines = lines_of(validate_fixture("references", options=options))
    assert not any("Project" in line for line in lines)
    assert len(lines) == len(EXPECTED["references"]) - 1


class _Host:
    def secret_exists(self, name: str) -> bool:
        return name == "present-secret"

    def path_exists(self, path: str) -> bool:
        return False


def test_host_checks_warn_about_missing_secrets_and_paths() -> None:
    result = validate_fixture("host_checks", host=_Host())
    assert result.ok
    assert lines_of(result) == [
        "specs.yaml:9:40: warning: secret 'missing-secret' is not on this host (looked in $CREDENTIALS_DIRECTORY, the secrets directory and RECONCILER_SECRET_*); the daemon will report SecretNotFound (Credential/hf-token)",
        "specs.yaml:16:38: warning: model path /nonexistent/reconciler/models/minilm does not exist on this host (Model/on-disk)",
    ]


def test_without_host_checks_nothing_about_the_host_is_said() -> None:
    assert lines_of(validate_fixture("host_checks")) == []


def test_yaml12_scalars_stay_strings() -> None:
    result = validate_fixture("yaml12_scalars")
    (model,) = result.objects
    assert model.doc.value["metadata"]["labels"] == {
        "country": "NO",
        "enabled": "on",
        "answer": "yes",
        "released": "2001-12-14",
        "port": "8080",
        "duration": "1:20",
    }
    assert model.doc.value["spec"]["display_name"] == "off"
    assert model.doc.value["spec"]["author"] == "y"
