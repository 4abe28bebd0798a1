"""What a Deployment or a k8s_job node asks of its Cluster, checked at validate time.

A Cluster's ``gpu.count`` bounds the GPUs of what runs on it; a local Cluster runs
commands, not images. Each refusal names both numbers, at the line that asks.
"""

# ruff: noqa: E501  (expected output lines are kept whole, as validate prints them)

from __future__ import annotations

from pathlib import Path

from validate_fixtures import lines_of, validate_folder

CLUSTERS = """\
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: xeon-dev}
spec:
  driver: kubernetes
  kubeconfig: {secret: xeon-dev-kubeconfig}
  gpu: {type: nvidia-a100-80gb, count: 8}
---
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: elastic}
spec:
  driver: kubernetes
  kubeconfig: {secret: elastic-kubeconfig}
---
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: local}
spec:
  driver: local
---
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: gpu-box}
spec:
  driver: local
  gpu: {type: nvidia-l4, count: 2}
---
apiVersion: reconciler/v1
kind: DeploymentTemplate
metadata: {name: four-gpus}
spec:
  modality: llm
  runtime: {image: "vllm/vllm-openai:v0.6.3", port: 8000, health_path: /health}
  resources: {gpus_per_worker: 4}
---
apiVersion: reconciler/v1
kind: Model
metadata: {name: phi}
spec:
  modality: llm
  source: {provider_type: hugging_face, uri: microsoft/Phi-3.5-mini-instruct}
"""


def _deployment(name: str, *, cluster: str, template: str, workers: str) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  model: phi
  cluster: {cluster}
  template: {template}
  endpoint_name: {name}
  workers: {workers}
  deploy_config: {{concurrent_requests: 8, avg_sequence_length: 100, avg_context_length: 100}}
"""


def _validate(tmp_path: Path, name: str, text: str) -> list[str]:
    (tmp_path / "clusters.yaml").write_text(CLUSTERS, encoding="utf-8")
    (tmp_path / name).write_text(text, encoding="utf-8")
    return lines_of(validate_folder(tmp_path))


def test_a_deployment_needing_more_gpus_than_its_cluster_has_is_refused(tmp_path: Path) -> None:
    text = "---\n".join(
        [
            _deployment("pinned", cluster="xeon-dev", template="four-gpus", workers="3"),
            _deployment("fits", cluster="xeon-dev", template="four-gpus", workers="2"),
            _deployment("elastic", cluster="elastic", template="four-gpus", workers="30"),
            _deployment("sized", cluster="xeon-dev", template="vllm", workers="9"),
            _deployment("on-cpu", cluster="local", template="four-gpus", workers="1"),
        ]
    )
    assert _validate(tmp_path, "deployments.yaml", text) == [
        "deployments.yaml:9:12: error: needs 12 GPU(s) (3 worker(s) x 4 GPU(s) per worker (template four-gpus)) and Cluster 'xeon-dev' has 8 (its spec.gpu.count); lower the workers, or run it on a Cluster with more GPUs (Deployment/pinned)",
        "deployments.yaml:42:12: error: needs 9 GPU(s) (9 worker(s) x 1 GPU(s) per worker (template vllm)) and Cluster 'xeon-dev' has 8 (its spec.gpu.count); lower the workers, or run it on a Cluster with more GPUs (Deployment/sized)",
    ]


def test_a_deployment_left_to_sizing_is_refused_when_one_worker_is_too_big(
    tmp_path: Path,
) -> None:
    text = _deployment("big", cluster="xeon-dev", template="four-gpus", workers="null").replace(
        "count: 8", "count: 2"
    )
    clusters = CLUSTERS.replace("count: 8", "count: 2")
    (tmp_path / "clusters.yaml").write_text(clusters, encoding="utf-8")
    (tmp_path / "deployments.yaml").write_text(text, encoding="utf-8")
    assert lines_of(validate_folder(tmp_path)) == [
        "deployments.yaml:6:12: error: needs 4 GPU(s) (at least 1 worker (sized) x 4 GPU(s) per worker (template four-gpus)) and Cluster 'xeon-dev' has 2 (its spec.gpu.count); lower the workers, or run it on a Cluster with more GPUs (Deployment/big)"
    ]


WORKFLOW = """\
apiVersion: reconciler/v1
kind: Workflow
metadata: {name: jobs}
spec:
  user_params: {where: xeon-dev}
  workflows:
    provision:
      nodes:
        - id: too_many
          type: k8s_job
          user_inputs: {cluster: xeon-dev, image: "ghcr.io/example/evaluator:1.4", gpus: 9}
        - id: no_image
          type: k8s_job
          user_inputs: {cluster: xeon-dev, args: ["--fast"]}
        - id: image_on_host
          type: k8s_job
          user_inputs: {cluster: local, image: "busybox:1.36", command: ["true"]}
        - id: nothing_to_run
          type: k8s_job
          user_inputs: {cluster: local}
        - id: gpu_on_host
          type: k8s_job
          user_inputs: {cluster: gpu-box, command: [nvidia-smi], gpus: 3}
        - id: no_gpus_on_host
          type: k8s_job
          user_inputs: {cluster: local, command: [nvidia-smi], gpus: 1}
        - id: fine
          type: k8s_job
          user_inputs: {cluster: gpu-box, command: [nvidia-smi], gpus: 2}
        - id: elastic
          type: k8s_job
          user_inputs: {cluster: elastic, image: "busybox:1.36", gpus: 64}
        - id: decided_at_run_time
          type: k8s_job
          user_inputs: {cluster: "${{ where }}", gpus: 64}
"""


def test_job_nodes_must_fit_their_cluster(tmp_path: Path) -> None:
    assert _validate(tmp_path, "workflows.yaml", WORKFLOW) == [
        "workflows.yaml:11:90: error: node 'too_many' (k8s_job) asks for 9 GPU(s) and Cluster 'xeon-dev' has 8 (its spec.gpu.count) (Workflow/jobs)",
        "workflows.yaml:14:24: error: node 'no_image' (k8s_job) is missing required input 'image': Cluster 'xeon-dev' runs containers (Workflow/jobs)",
        "workflows.yaml:17:41: error: node 'image_on_host' (k8s_job): Cluster 'local' is local and runs `command` on its host; it cannot run an image: remove image, or run the job on a kubernetes Cluster (Workflow/jobs)",
        "workflows.yaml:20:24: error: node 'nothing_to_run' (k8s_job): Cluster 'local' is local: give the program to run on its host in `command` (Workflow/jobs)",
        "workflows.yaml:23:72: error: node 'gpu_on_host' (k8s_job) asks for 3 GPU(s) and Cluster 'gpu-box' has 2 (its spec.gpu.count) (Workflow/jobs)",
        "workflows.yaml:26:70: error: node 'no_gpus_on_host' (k8s_job) asks for 1 GPU(s) and Cluster 'local' has 0 (its spec.gpu.count) (Workflow/jobs)",
    ]
