"""Which model reads which kind, and one entry point that parses any document.

:func:`parse_document` picks the model by ``kind`` before validating, so error locations
are the document's own keys (``spec.source.uri``), never prefixed by a union tag, and the
loader can map each one to a YAML position.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Final

from pydantic import Discriminator, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from reconciler.specs.cluster import ClusterDocument
from reconciler.specs.credential import CredentialDocument
from reconciler.specs.deployment import DeploymentDocument
from reconciler.specs.envelope import Document
from reconciler.specs.kinds import KINDS as KINDS
from reconciler.specs.kinds import Kind as Kind
from reconciler.specs.model import ModelDocument
from reconciler.specs.project import ProjectDocument
from reconciler.specs.template import DeploymentTemplateDocument
from reconciler.specs.workflow import WorkflowDocument

SpecDocument = Annotated[
    CredentialDocument
    | ProjectDocument
    | ClusterDocument
    | DeploymentTemplateDocument
    | ModelDocument
    | DeploymentDocument
    | WorkflowDocument,
    Discriminator("kind"),
]
"""Any document; a pydantic discriminated union on ``kind`` (used for the JSON Schema)."""

DOCUMENT_MODELS: Final[Mapping[str, type[Document]]] = {
    "Credential": CredentialDocument,
    "Project": ProjectDocument,
    "Cluster": ClusterDocument,
    "DeploymentTemplate": DeploymentTemplateDocument,
    "Model": ModelDocument,
    "Deployment": DeploymentDocument,
    "Workflow": WorkflowDocument,
}

_PLURALS: Final[Mapping[str, str]] = {kind: kind.lower() + "s" for kind in KINDS}


def kind_plural(kind: str) -> str:
    """The folder of a kind's status files: ``status/<kind_plural(kind)>/<name>.yaml``."""
    try:
        return _PLURALS[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}") from None


def parse_document(data: object) -> SpecDocument:
    """Validate one YAML document (already parsed) into its kind's model.

    Raises ``pydantic.ValidationError``; each error's ``loc`` is a path of keys and list
    indexes inside ``data`` (empty for the document itself) and its ``msg`` reads on its own.
    """
    if not isinstance(data, Mapping):
        raise _error(
            "document_type",
            "a document must be a mapping with apiVersion, kind, metadata and spec, "
            f"got {type(data).__name__}",
            (),
            data,
        )
    kind = data.get("kind")
    if kind is None:
        raise _error("kind_missing", f"kind is required: one of {', '.join(KINDS)}", (), data)
    model = DOCUMENT_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        message = f"kind {kind!r} is not one of {', '.join(KINDS)}"
        raise _error("kind", message, ("kind",), kind)
    document: SpecDocument = model.model_validate(data)  # type: ignore[assignment]
    return document


def _error(
    error_type: str, message: str, loc: tuple[str | int, ...], value: object
) -> ValidationError:
    detail = InitErrorDetails(type=PydanticCustomError(error_type, message), loc=loc, input=value)
    return ValidationError.from_exception_data("Document", [detail])
