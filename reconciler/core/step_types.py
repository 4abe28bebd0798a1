"""The catalogue of step types: what each takes and what it gives.

Pure data, shared by validation (unknown types, unknown outputs, missing inputs) and by
the step registry, whose implementations must match these signatures.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class StepSignature:
    """Inputs and outputs of one step type.

    ``open_inputs``: the step takes the fields of a spec, so any input name is accepted.
    ``workflow_use``: whether a Workflow node may use this type (internal chain steps may not).
    """

    name: str
    required: frozenset[str]
    optional: frozenset[str]
    outputs: frozenset[str]
    open_inputs: bool = False
    workflow_use: bool = True
    summary: str = ""

    @property
    def inputs(self) -> frozenset[str]:
        return self.required | self.optional


def _sig(
    name: str,
    required: tuple[str, ...] = (),
    optional: tuple[str, ...] = (),
    outputs: tuple[str, ...] = (),
    *,
    open_inputs: bool = False,
    workflow_use: bool = True,
    summary: str = "",
) -> StepSignature:
    return StepSignature(
        name=name,
        required=frozenset(required),
        optional=frozenset(optional),
        outputs=frozenset(outputs),
        open_inputs=open_inputs,
        workflow_use=workflow_use,
        summary=summary,
    )


CATALOGUE: dict[str, StepSignature] = {
    sig.name: sig
    for sig in (
        _sig("noop", optional=("delay",), summary="do nothing, optionally after a delay"),
        _sig(
            "fail",
            required=("message",),
            optional=("until_attempt",),
            summary="fail with a message (until an attempt number, if given)",
        ),
        _sig(
            "http_request",
            required=("method", "url"),
            optional=("headers", "body", "expect_status", "timeout"),
            outputs=("status", "body", "json"),
            summary="send an HTTP request and check its status",
        ),
        _sig(
            "wait_ready",
            required=("deployment",),
            optional=("timeout",),
            outputs=("endpoint_url",),
            summary="wait until a Deployment is Ready; give its endpoint URL",
        ),
        _sig(
            "k8s_job",
            required=("cluster", "image"),
            optional=("command", "args", "env", "gpus", "node_timeout"),
            outputs=("logs", "exit_code", "outputs"),
            summary="run a container to completion on a cluster",
        ),
        _sig(
            "add_model",
            outputs=("model_id",),
            open_inputs=True,
            summary="register a model and resolve its source",
        ),
        _sig(
            "scan_model",
            outputs=("model_id", "findings", "max_severity"),
            open_inputs=True,
            summary="security-scan every file of a model",
        ),
        _sig(
            "deploy_model",
            outputs=("endpoint_url", "workers"),
            open_inputs=True,
            summary="create or update an endpoint serving a model",
        ),
        _sig(
            "undeploy_model",
            open_inputs=True,
            summary="remove an endpoint",
        ),
        _sig(
            "scale_deployment",
            outputs=("workers",),
            open_inputs=True,
            summary="change the worker count of an endpoint",
        ),
        _sig(
            "remove_model",
            open_inputs=True,
            workflow_use=False,
            summary="remove a model from the registry",
        ),
        _sig(
            "check_cluster",
            open_inputs=True,
            outputs=("reachable", "gpus"),
            workflow_use=False,
            summary="connect to a cluster and observe its GPU inventory",
        ),
        _sig(
            "release_cluster",
            open_inputs=True,
            workflow_use=False,
            summary="forget a cluster (nothing on it is touched)",
        ),
        _sig(
            "check_secret",
            open_inputs=True,
            workflow_use=False,
            summary="resolve a credential's secret on the daemon host",
        ),
        _sig(
            "record_spec",
            open_inputs=True,
            workflow_use=False,
            summary="record a spec that has no outside effect",
        ),
    )
}

WORKFLOW_STEP_TYPES: tuple[str, ...] = tuple(
    sorted(name for name, sig in CATALOGUE.items() if sig.workflow_use)
)
