"""DeploymentTemplate: how endpoints of one modality run (image or command, resources).

Deployments name a template; its ``defaults`` fill the SLO ranges a Deployment leaves out.
``args`` and ``command`` may hold placeholders (``{model_path}``, ``{port}``, ...) that the
driver fills; they are plain strings here.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from reconciler.specs.common import (
    QUANTITY_PATTERN,
    Modality,
    NonEmptyStr,
    SloTargets,
    SpecModel,
    check_quantity,
)
from reconciler.specs.envelope import Document


def _check_http_path(value: str) -> str:
    if not value.startswith("/"):
        raise PydanticCustomError(
            "http_path", f"health_path {value!r} must be an HTTP path starting with '/'"
        )
    return value


HttpPath = Annotated[
    str,
    AfterValidator(_check_http_path),
    WithJsonSchema({"type": "string", "pattern": "^/"}),
]


def _check_amount(value: object, *, fractions: bool) -> str | int | float:
    if isinstance(value, str):
        return check_quantity(value)
    numbers = (int, float) if fractions else (int,)
    if isinstance(value, numbers) and not isinstance(value, bool) and value > 0:
        return value
    unit = "cores" if fractions else "bytes"
    raise PydanticCustomError(
        "quantity",
        f"{value!r} is not an amount: a positive number of {unit}, or a Kubernetes quantity "
        "such as '500m' or '32Gi'",
    )


CpuAmount = Annotated[
    str | int | float,
    PlainValidator(lambda value: _check_amount(value, fractions=True)),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string", "pattern": QUANTITY_PATTERN},
            ]
        }
    ),
]
MemoryAmount = Annotated[
    str | int,
    PlainValidator(lambda value: _check_amount(value, fractions=False)),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "exclusiveMinimum": 0},
                {"type": "string", "pattern": QUANTITY_PATTERN},
            ]
        }
    ),
]


LoraStyle = Literal["vllm", "llama-cpp-python"]
MetricsStyle = Literal["vllm", "llama.cpp"]


class Runtime(SpecModel):
    """What runs: an image (kubernetes driver) and/or an argv (local driver)."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["image"], "properties": {"image": {"type": "string"}}},
                {"required": ["command"], "properties": {"command": {"type": "array"}}},
            ]
        }
    )

    image: NonEmptyStr | None = Field(default=None, description="container image (kubernetes)")
    args: list[str] = Field(default_factory=list)
    command: list[NonEmptyStr] | None = Field(
        default=None,
        min_length=1,
        description="argv run on the host (local driver); same placeholders",
    )
    port: int = Field(default=8000, ge=1, le=65535)
    health_path: HttpPath = "/health"
    env: dict[str, str] = Field(default_factory=dict)
    lora: LoraStyle | None = Field(
        default=None,
        description="how the server takes LoRA adapters (a Deployment's adapters): vllm "
        "(--enable-lora --lora-modules name=path), llama-cpp-python (one config-file entry "
        "per adapter, {server_config}); null: the server takes none",
    )

    metrics: MetricsStyle | None = Field(
        default=None,
        description="which Prometheus metrics the server exposes, for autoscaling: vllm "
        "(vllm:num_requests_waiting, vllm:time_to_first_token_seconds, "
        "vllm:gpu_cache_usage_perc) or llama.cpp (llamacpp:requests_deferred, "
        "llamacpp:kv_cache_usage_ratio; the server run with --metrics); null: none known",
    )

    @model_validator(mode="after")
    def _runs_something(self) -> Runtime:
        if self.image is None and self.command is None:
            raise PydanticCustomError(
                "runtime_empty",
                "runtime needs an image (kubernetes driver) or a command (local driver)",
            )
        return self


class Resources(SpecModel):
    """What one worker asks for; unset GPUs are sized from the model."""

    gpus_per_worker: int | None = Field(default=None, ge=0)
    cpu: CpuAmount | None = Field(
        default=None, description='cores: 8, 0.5 or a quantity such as "500m"'
    )
    memory: MemoryAmount | None = Field(
        default=None, description="bytes, or a quantity such as 32Gi"
    )


class DeploymentTemplateSpec(SpecModel):
    modality: Modality
    runtime: Runtime
    resources: Resources = Field(default_factory=Resources)
    defaults: SloTargets = Field(
        default_factory=SloTargets, description="SLO ranges for deployments that set none"
    )


class DeploymentTemplateDocument(Document):
    """A DeploymentTemplate document."""

    kind: Literal["DeploymentTemplate"]
    spec: DeploymentTemplateSpec
