"""Deployment: a model served as an endpoint on a cluster (or through a cloud provider).

Only the shape of each field is checked here; whether the SLO targets can all hold and
whether the references resolve is decided by the validator, which sees the whole repo.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from reconciler.specs.autoscaling import Autoscaling
from reconciler.specs.common import (
    ClusterRef,
    CredentialRef,
    ModelRef,
    NonEmptyStr,
    ProjectRef,
    SloRange,
    SpecModel,
    TemplateRef,
)
from reconciler.specs.envelope import Document
from reconciler.specs.rollout import RolloutGate

Strategy = Literal["green", "recreate"]


class DeployConfig(SpecModel):
    """The expected load, and the SLO ranges that sizing must meet (units in docs/spec.md)."""

    concurrent_requests: int = Field(gt=0)
    avg_sequence_length: int = Field(gt=0, description="tokens generated per request")
    avg_context_length: int = Field(gt=0, description="tokens of prompt per request")
    per_session_tokens_per_sec: SloRange | None = Field(
        default=None, description="tokens/s per session, [min, max]"
    )
    ttft: SloRange | None = Field(default=None, description="time to first token, ms, [min, max]")
    e2e_latency: SloRange | None = Field(
        default=None, description="end-to-end latency, seconds, [min, max]"
    )


SERVED_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class Adapter(SpecModel):
    """A LoRA adapter served on the Deployment's base model under a name of its own."""

    name: str = Field(
        pattern=SERVED_NAME_PATTERN,
        description="the model name clients send and GET /v1/models lists for this adapter",
    )
    model: ModelRef = Field(
        description="a Model of the repo holding the adapter's files (any source; resolved "
        "and security-scanned like any Model before the endpoint serves it)"
    )


class DeploymentSpec(SpecModel):
    """Which model to serve, where, how, and under which load."""

    project: ProjectRef | None = None
    model: ModelRef
    cluster: ClusterRef | None = Field(default=None, description="none for a cloud model")
    template: TemplateRef | None = Field(
        default=None, description="a DeploymentTemplate's name, or a built-in template"
    )
    credential: CredentialRef | None = None
    endpoint_name: NonEmptyStr
    strategy: Strategy = Field(
        default="green",
        description="green: new workers ready before old ones go; recreate: stop, then start",
    )
    deploy_config: DeployConfig
    workers: int | None = Field(
        default=None, gt=0, description="null: sized from deploy_config; a number pins it"
    )
    suspend: bool = Field(default=False, description="true: the daemon leaves it as it is")
    adapters: list[Adapter] = Field(
        default_factory=list,
        description="LoRA adapters served beside the base model, each under its own name; "
        "the template must say how its server takes them (runtime.lora)",
    )

    autoscaling: Autoscaling | None = Field(
        default=None,
        description="workers moved between bounds by the server's LLM metrics; leave "
        "workers unset",
    )

    rollout_gate: RolloutGate | None = Field(
        default=None,
        description="a new revision first takes a share of the traffic and is promoted only "
        "if what was measured meets deploy_config's ttft and e2e_latency and the gate's "
        "max_error_rate; otherwise it is rolled back (strategy green only; on a kubernetes "
        "Cluster the share is set at its ingress_url and vllm metrics measure it)",
    )

    @model_validator(mode="after")
    def _gate_needs_green(self) -> DeploymentSpec:
        if self.rollout_gate is not None and self.strategy != "green":
            raise PydanticCustomError(
                "gate_strategy",
                "rollout_gate measures the new revision beside the serving one: it needs "
                "strategy green, not recreate",
            )
        return self

    @model_validator(mode="after")
    def _autoscaling_or_workers(self) -> DeploymentSpec:
        if self.autoscaling is not None and self.workers is not None:
            raise PydanticCustomError(
                "autoscaling_workers",
                "workers and autoscaling both set the worker count: leave workers unset "
                "(autoscaling.min_workers and max_workers bound it)",
            )
        return self

    @model_validator(mode="after")
    def _adapter_names_unique(self) -> DeploymentSpec:
        seen = {self.endpoint_name}
        for adapter in self.adapters:
            if adapter.name in seen:
                raise PydanticCustomError(
                    "adapter_name",
                    f"adapter name {adapter.name!r} is used twice (or is the endpoint_name): "
                    "each adapter needs a name of its own",
                )
            seen.add(adapter.name)
        return self


class DeploymentDocument(Document):
    """A Deployment document."""

    kind: Literal["Deployment"]
    spec: DeploymentSpec
