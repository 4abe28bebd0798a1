"""Model: an entry of the model zoo and where its weights come from.

The source is one of four shapes picked by ``provider_type``; each has only the fields
that make sense for it (a ``url`` source must pin its bytes with ``sha256``). ``parameters``
and ``dtype`` feed the sizing estimate of Deployments with ``workers: null``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    PlainValidator,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from reconciler.specs.common import (
    AbsolutePath,
    ClusterRef,
    CredentialRef,
    HttpUrl,
    Modality,
    NonEmptyStr,
    SpecModel,
    Tag,
    relocate_union_errors,
)
from reconciler.specs.envelope import Document

HF_REPO_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$"
_HF_REPO = re.compile(HF_REPO_PATTERN)
SHA256_PATTERN = r"^[0-9a-fA-F]{64}$"
_SHA256 = re.compile(SHA256_PATTERN)
PARAMETERS_PATTERN = r"^[0-9]+(\.[0-9]+)?[KMBT]?$"
_PARAMETERS = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([KMBT]?)$")
_SCALE = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}


def _check_hf_repo(value: str) -> str:
    if not _HF_REPO.fullmatch(value):
        raise PydanticCustomError(
            "hf_repo",
            f"uri {value!r} is not a Hugging Face repo id: use 'owner/name', "
            "e.g. 'microsoft/Phi-3.5-mini-instruct'",
        )
    return value


def _check_sha256(value: str) -> str:
    if not _SHA256.fullmatch(value):
        raise PydanticCustomError(
            "sha256",
            f"sha256 {value!r} is not a SHA-256 digest: it must be 64 hex characters",
        )
    return value


def _check_parameters(value: object) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return int(value)
    if not isinstance(value, str) or not _PARAMETERS.fullmatch(value.strip().upper()):
        raise PydanticCustomError(
            "parameters",
            f"parameters {value!r} is not a parameter count: write an integer or a number "
            "with K, M, B or T, e.g. '3.8B'",
        )
    return str(value)


HuggingFaceRepo = Annotated[
    str,
    AfterValidator(_check_hf_repo),
    WithJsonSchema({"type": "string", "pattern": HF_REPO_PATTERN, "description": "owner/name"}),
]
Sha256 = Annotated[
    str,
    AfterValidator(_check_sha256),
    WithJsonSchema({"type": "string", "pattern": SHA256_PATTERN}),
]
ParameterCount = Annotated[
    int | str,
    PlainValidator(_check_parameters),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "exclusiveMinimum": 0},
                {"type": "string", "pattern": "(?i)" + PARAMETERS_PATTERN},
            ],
            "description": "number of parameters: 3800000000 or '3.8B'",
        }
    ),
]

Dtype = Literal["float32", "float16", "bfloat16", "fp8", "int8", "int4"]


class HuggingFaceSource(SpecModel):
    """A repo on the Hugging Face hub (or the mirror named by ``HF_ENDPOINT``)."""

    provider_type: Literal["hugging_face"]
    uri: HuggingFaceRepo
    revision: NonEmptyStr = Field(default="main", description="branch, tag or commit sha")
    credential: CredentialRef | None = Field(
        default=None, description="a Credential, for gated or private repos"
    )


class CloudModelSource(SpecModel):
    """A model served by a provider (OpenAI, ...); nothing to download or scan."""

    provider_type: Literal["cloud_model"]
    provider: NonEmptyStr
    uri: NonEmptyStr
    credential: CredentialRef | None = None


class UrlSource(SpecModel):
    """A file or archive fetched over HTTP(S), pinned by its SHA-256."""

    provider_type: Literal["url"]
    uri: HttpUrl
    sha256: Sha256
    credential: CredentialRef | None = None


class DiskSource(SpecModel):
    """Files already on the daemon's host (or a mounted volume)."""

    provider_type: Literal["disk"]
    uri: AbsolutePath


ModelSource = Annotated[
    HuggingFaceSource | CloudModelSource | UrlSource | DiskSource,
    Discriminator("provider_type"),
]
PROVIDER_TYPES = ("hugging_face", "cloud_model", "url", "disk")


class ModelCache(SpecModel):
    """Clusters the model's files are pre-pulled to before any Deployment of it rolls out."""

    clusters: list[ClusterRef] = Field(
        min_length=1,
        description="local: the daemon's shared model cache; kubernetes: every node, by a "
        "DaemonSet into a host folder that the Deployments' pods then read",
    )

    @field_validator("clusters")
    @classmethod
    def _unique(cls, clusters: list[str]) -> list[str]:
        twice = sorted({name for name in clusters if clusters.count(name) > 1})
        if twice:
            raise PydanticCustomError(
                "cache_clusters", f"cache.clusters names {', '.join(twice)} more than once"
            )
        return clusters


class ModelSpec(SpecModel):
    display_name: str | None = None
    modality: Modality
    source: ModelSource
    author: str | None = None
    tags: list[Tag] = Field(default_factory=list)
    icon: str | None = None
    security_scan: Literal["required", "skip"] = Field(
        default="required",
        description="required: a high-severity finding blocks every deployment of it",
    )
    parameters: ParameterCount | None = Field(
        default=None, description="size for sizing estimates: 3800000000 or '3.8B'"
    )
    dtype: Dtype | None = Field(default=None, description="weight type for sizing estimates")
    suspend: bool = Field(default=False, description="true: the daemon leaves it as it is")
    cache: ModelCache | None = Field(
        default=None,
        description="pre-pull the files to these Clusters before rollout (hugging_face "
        "sources); Deployments there start from the cache",
    )

    @field_validator("source", mode="wrap")
    @classmethod
    def _source_errors_at_yaml_keys(
        cls, value: object, handler: ValidatorFunctionWrapHandler
    ) -> ModelSource:
        try:
            source: ModelSource = handler(value)
        except ValidationError as e:
            raise relocate_union_errors(e, tag_field="provider_type", tags=PROVIDER_TYPES) from None
        return source

    @property
    def parameter_count(self) -> int | None:
        """``parameters`` as an integer (``'3.8B'`` -> 3_800_000_000), or None."""
        if self.parameters is None or isinstance(self.parameters, int):
            return self.parameters
        match = _PARAMETERS.fullmatch(self.parameters.strip().upper())
        assert match is not None  # checked on validation
        return round(float(match.group(1)) * _SCALE[match.group(2)])


class ModelDocument(Document):
    """A Model document."""

    kind: Literal["Model"]
    spec: ModelSpec
