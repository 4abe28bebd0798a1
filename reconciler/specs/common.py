"""Types shared by every spec kind: names, durations, URLs, SLO ranges, the model base.

Each constrained string is a plain ``str`` checked by one function that raises a
``PydanticCustomError`` whose text a person can act on (pydantic's own "String should
match pattern ..." is not), and carries the same rule as a JSON Schema fragment so that
editors and the loader agree.

Strictness (the same for every kind, set on :class:`SpecModel`): pydantic's strict mode.
A string field takes only strings, an integer field only integers (not ``"10"``, ``10.0``
or ``true``), a number field integers or floats (never booleans), a boolean field only
booleans (not ``"yes"``). YAML already gives scalars their types, so this is what the
JSON Schema says too. Sequences are lists, except the ``[min, max]`` pairs, which are
tuples.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from reconciler.core.durations import DurationError, parse_duration


class SpecModel(BaseModel):
    """Base of every spec model: unknown keys are errors, values are immutable and strict."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _string_schema(**schema: Any) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", **schema})


def _fail(error_type: str, message: str) -> PydanticCustomError:
    # No context: the message is shown as written, braces in user values included.
    return PydanticCustomError(error_type, message)


# --- names ---------------------------------------------------------------------------

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DNS_LABEL = re.compile(DNS_LABEL_PATTERN)
_DNS_LABEL_RULE = "a-z, 0-9, '-', 1-63 chars, starting and ending alphanumeric"


def dns_label_check(what: str) -> Callable[[str], str]:
    """A check that ``value`` is a lowercase DNS label; ``what`` opens the error text."""

    def check(value: str) -> str:
        if len(value) > 63 or not _DNS_LABEL.fullmatch(value):
            raise _fail(
                "dns_label", f"{what} {value!r} is not a lowercase DNS label ({_DNS_LABEL_RULE})"
            )
        return value

    return check


_DNS_LABEL_SCHEMA = {"pattern": DNS_LABEL_PATTERN, "minLength": 1, "maxLength": 63}

ObjectName = Annotated[
    str,
    AfterValidator(dns_label_check("metadata.name")),
    _string_schema(**_DNS_LABEL_SCHEMA, description="lowercase DNS label, unique per kind"),
]
"""``metadata.name``: a lowercase DNS label."""


# References to other objects by metadata.name; whether they resolve is the validator's.
ClusterRef = Annotated[
    str,
    AfterValidator(dns_label_check("Cluster name")),
    _string_schema(**_DNS_LABEL_SCHEMA, description="the metadata.name of a Cluster"),
]
ModelRef = Annotated[
    str,
    AfterValidator(dns_label_check("Model name")),
    _string_schema(**_DNS_LABEL_SCHEMA, description="the metadata.name of a Model"),
]
TemplateRef = Annotated[
    str,
    AfterValidator(dns_label_check("DeploymentTemplate name")),
    _string_schema(**_DNS_LABEL_SCHEMA, description="the metadata.name of a DeploymentTemplate"),
]
CredentialRef = Annotated[
    str,
    AfterValidator(dns_label_check("Credential name")),
    _string_schema(**_DNS_LABEL_SCHEMA, description="the metadata.name of a Credential"),
]
ProjectRef = Annotated[
    str,
    AfterValidator(dns_label_check("Project name")),
    _string_schema(**_DNS_LABEL_SCHEMA, description="the metadata.name of a Project"),
]

Namespace = Annotated[
    str,
    AfterValidator(dns_label_check("namespace")),
    _string_schema(**_DNS_LABEL_SCHEMA, description="a Kubernetes namespace"),
]


SECRET_NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$"
_SECRET_NAME = re.compile(SECRET_NAME_PATTERN)


def _check_secret_name(value: str) -> str:
    if len(value) > 253 or not _SECRET_NAME.fullmatch(value):
        raise _fail(
            "secret_name",
            f"secret {value!r} is not a secret name: use letters, digits, '-', '_' or '.', "
            "1-253 chars, starting and ending with a letter or digit (the value itself "
            "never goes in Git)",
        )
    return value


SecretName = Annotated[
    str,
    AfterValidator(_check_secret_name),
    _string_schema(
        **{
            "pattern": SECRET_NAME_PATTERN,
            "minLength": 1,
            "maxLength": 253,
            "description": "the name of a secret in the daemon host's secret store",
        },
    ),
]
"""The name of a secret on the daemon's host; never a secret value."""

NonEmptyStr = Annotated[str, Field(min_length=1)]


# --- durations -----------------------------------------------------------------------

DURATION_PATTERN = r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)\s*$"


def _check_duration(value: object) -> str:
    # Plain validator: a number (``timeout: 30``) gets the duration message, not "string".
    try:
        parse_duration(value)  # type: ignore[arg-type]  # it reports non-strings itself
    except DurationError as e:
        raise _fail("duration", str(e)) from e
    assert isinstance(value, str)
    return str(value)


Duration = Annotated[
    str,
    PlainValidator(_check_duration),
    _string_schema(
        pattern=DURATION_PATTERN, description="a number and a unit: 500ms, 30s, 5m, 2h, 1d"
    ),
]
"""A duration as written in the spec (``30s``); read seconds with :func:`seconds`."""


def seconds(duration: str) -> float:
    """Seconds of a duration that has already been validated."""
    return parse_duration(duration)


# --- URLs, paths, colours ------------------------------------------------------------


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
        raise _fail("http_url", f"{value!r} is not an http(s) URL, e.g. 'https://host/path'")
    return value


HttpUrl = Annotated[
    str,
    AfterValidator(_check_http_url),
    _string_schema(
        **{"pattern": r"^https?://[^\s/]+", "format": "uri", "description": "an http(s) URL"},
    ),
]


def _check_absolute_path(value: str) -> str:
    if not value.startswith("/"):
        raise _fail("absolute_path", f"{value!r} is not an absolute path: it must start with '/'")
    return value


AbsolutePath = Annotated[
    str,
    AfterValidator(_check_absolute_path),
    _string_schema(**{"pattern": "^/", "description": "an absolute path"}),
]

HEX_COLOR_PATTERN = r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"
_HEX_COLOR = re.compile(HEX_COLOR_PATTERN)


def _check_hex_color(value: str) -> str:
    if not _HEX_COLOR.fullmatch(value):
        raise _fail("hex_color", f"color {value!r} is not a hex colour such as '#1a2b3c' or '#abc'")
    return value


HexColor = Annotated[
    str, AfterValidator(_check_hex_color), _string_schema(**{"pattern": HEX_COLOR_PATTERN})
]

QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$"
_QUANTITY = re.compile(QUANTITY_PATTERN)


def check_quantity(value: str) -> str:
    """Check a Kubernetes quantity such as ``500m`` or ``32Gi``."""
    if not _QUANTITY.fullmatch(value):
        raise _fail(
            "quantity",
            f"{value!r} is not a Kubernetes quantity such as '8', '500m', '32Gi' or '512M'",
        )
    return value


Quantity = Annotated[
    str,
    AfterValidator(check_quantity),
    _string_schema(
        **{"pattern": QUANTITY_PATTERN, "description": "a Kubernetes quantity: 8, 500m, 32Gi"},
    ),
]


# --- shared vocabulary ---------------------------------------------------------------

Modality = Literal["llm", "embedding", "reranker", "vision", "audio"]


class Tag(SpecModel):
    """A label shown in the model zoo, with its colour."""

    name: NonEmptyStr
    color: HexColor


# --- free-form values ---------------------------------------------------------------


def _plain_value(value: object, where: str) -> PlainValue:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, list):
        return [_plain_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        result: dict[str, PlainValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _fail("plain_value", f"key {key!r} at {where or 'top'} must be a string")
            result[key] = _plain_value(item, f"{where}.{key}" if where else key)
        return result
    raise _fail(
        "plain_value",
        f"{where or 'value'}: a {type(value).__name__} ({value!s}) is not a plain value "
        "(string, number, boolean, null, list or mapping); quote it to pass it as text",
    )


def _check_plain_value(value: object) -> PlainValue:
    return _plain_value(value, "")


PlainValue = Annotated[JsonValue, PlainValidator(_check_plain_value), WithJsonSchema({})]
"""Any YAML value made of strings, numbers, booleans, null, lists and string-keyed maps.

Returned as plain ``dict``/``list``/scalars even when the loader gives ruamel.yaml types.
"""


# --- SLO ranges ----------------------------------------------------------------------

PositiveNumber = Annotated[float, Field(gt=0)]


def _list_to_tuple(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


def _check_range(pair: tuple[float, float]) -> tuple[float, float]:
    low, high = pair
    if low > high:
        raise _fail("slo_range", f"[min, max] range [{low:g}, {high:g}] has min greater than max")
    return pair


SloRange = Annotated[
    tuple[PositiveNumber, PositiveNumber],
    BeforeValidator(_list_to_tuple),
    AfterValidator(_check_range),
    Field(description="[min, max] with 0 < min <= max"),
]
"""A ``[min, max]`` pair of positive numbers with min <= max."""


class SloTargets(SpecModel):
    """The SLO ranges of a deployment; each is optional (no target)."""

    per_session_tokens_per_sec: SloRange | None = Field(
        default=None, description="tokens/s per session, [min, max]"
    )
    ttft: SloRange | None = Field(default=None, description="time to first token, ms, [min, max]")
    e2e_latency: SloRange | None = Field(
        default=None, description="end-to-end latency, seconds, [min, max]"
    )


# --- discriminated unions ------------------------------------------------------------


def relocate_union_errors(
    error: ValidationError, *, tag_field: str, tags: tuple[str, ...]
) -> ValidationError:
    """The errors of a discriminated union, located at the keys the YAML file has.

    pydantic puts the chosen tag into each location (``source.url.uri``); the loader maps
    locations to YAML keys, so the tag is dropped (``source.uri``), and a missing or
    unknown tag is reported at ``tag_field`` with the accepted values.
    """
    choices = ", ".join(tags)
    details: list[InitErrorDetails] = []
    for item in error.errors():
        loc = tuple(item["loc"])
        if item["type"] == "union_tag_invalid":
            message = f"{tag_field} {item['ctx']['tag']!r} is not one of {choices}"
            details.append(_detail(tag_field, message, (tag_field,), item["input"]))
        elif item["type"] == "union_tag_not_found":
            message = f"{tag_field} is required: one of {choices}"
            details.append(_detail(f"{tag_field}_missing", message, (), item["input"]))
        else:
            if loc and loc[0] in tags:
                loc = loc[1:]
            details.append(_detail(item["type"], item["msg"], loc, item["input"]))
    return ValidationError.from_exception_data(error.title, details)


def _detail(
    error_type: str, message: str, loc: tuple[str | int, ...], value: object
) -> InitErrorDetails:
    return InitErrorDetails(type=_fail(error_type, message), loc=loc, input=value)
