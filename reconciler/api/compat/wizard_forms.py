"""The add-cluster wizard's multipart form, read into a step body, and its kubeconfig.

The form's text fields become a step body (numbers and booleans from their text); the
``configuration_file`` part, a kubeconfig, is kept apart so it reaches only the secret
store: the body holds a placeholder. Errors never quote the kubeconfig.
"""

from __future__ import annotations

from typing import Any

import yaml
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from reconciler.api.problems import BadRequest, PayloadTooLarge, Unprocessable

MAX_KUBECONFIG_BYTES = 256 * 1024
"""Largest kubeconfig the add-cluster form takes (the whole body has the app's cap)."""


def _form_number(value: str, field: str) -> int:
    if not value.strip().isdigit():
        raise Unprocessable(f"{field}: expected a whole number, as text")
    return int(value)


async def cluster_form(request: web.Request) -> tuple[dict[str, Any], bytes | None]:
    """The add-cluster form as a step body, and the kubeconfig's bytes (kept apart)."""
    if request.content_type not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raise BadRequest("add-cluster takes a multipart/form-data body (configuration_file=@...)")
    try:
        form = await request.post()
    except (ValueError, HttpProcessingError):  # no boundary, a broken part
        raise BadRequest("the multipart body is malformed (check its boundary)") from None
    body: dict[str, Any] = {}
    kubeconfig: bytes | None = None
    for key in form:
        if len(form.getall(key)) > 1:
            raise Unprocessable(f"{key}: given more than once")
        value = form[key]
        if key == "configuration_file":
            if isinstance(value, str):  # a text part (curl -F 'configuration_file=<path')
                kubeconfig = value.encode("utf-8")
            elif isinstance(value, web.FileField):
                kubeconfig = value.file.read(MAX_KUBECONFIG_BYTES + 1)
            else:
                raise Unprocessable("configuration_file: expected the kubeconfig file")
            if len(kubeconfig) > MAX_KUBECONFIG_BYTES:
                raise PayloadTooLarge(
                    f"configuration_file: a kubeconfig is at most {MAX_KUBECONFIG_BYTES} bytes"
                )
            body[key] = ""
            continue
        if not isinstance(value, str):
            raise Unprocessable(f"{key}: expected a text field, not a file")
        if key in ("step_number", "workflow_total_steps"):
            body[key] = _form_number(value, key)
        elif key == "trigger_workflow":
            if value.lower() not in ("true", "false"):
                raise Unprocessable("trigger_workflow: expected true or false")
            body[key] = value.lower() == "true"
        else:
            body[key] = value
    return body, kubeconfig


def kubeconfig_text(raw: bytes) -> str:
    """The kubeconfig as text, if it looks like one; errors never quote its content."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Unprocessable("configuration_file: the kubeconfig is not UTF-8 text") from None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise Unprocessable(f"configuration_file: the kubeconfig is not valid YAML{at}") from None
    if not isinstance(value, dict) or not isinstance(value.get("clusters"), list):
        raise Unprocessable("configuration_file: not a kubeconfig (a mapping with clusters)")
    return text
