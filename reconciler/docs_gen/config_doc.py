"""docs/config.md and the commented example configs, from the daemon's config model.

Types, defaults, bounds and choices are read from :class:`reconciler.daemon.config.Config`
itself; what each field means is written once, in :data:`MEANINGS`, and a field the
model has but :data:`MEANINGS` lacks stops the generator (so a new field cannot go
undocumented). The commented YAML files hold every field at its default: loading one
gives the same config as no file at all (a test checks it), and sections that are off
unless present (``api:``) are commented out.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from reconciler.daemon.config import DEFAULT_CONFIG_PATH, Config

REGENERATE = "python -m reconciler.docs_gen"
WIDTH = 88

SECTIONS: dict[str, str] = {
    "repo": "The state repo: where the specs are and how often to look.",
    "status": "Where the daemon commits status files (docs/status.md).",
    "api": "The HTTP API (docs/api.md). It is served only when this section is present "
    "(or `reconciler run --listen` is given); without it the daemon serves no API. With "
    "no `tokens` it is read-only and must listen on loopback.",
    "clusters": "Limits per cluster.",
    "projects": "Projects a Deployment names.",
    "executor": "Running steps.",
    "logging": "Log lines on stderr (the journal under systemd).",
    "http": "Outbound HTTP: `http_request` steps and notifications.",
    "notifications": "Where Workflow notifications go besides each Workflow's own webhook: "
    "the SMTP server for email, and the channels of a Workflow that turns notifications on "
    "without naming any. Changes apply at the next restart.",
    "sharding": "Several replicas sharing the work by shard, each shard held through a "
    "Kubernetes Lease (docs/operations.md, Running several replicas). Off unless this "
    "section is present; a single daemon needs none of it.",
    "load": "Limits on each spec file the daemon loads; validate's `--max-...` flags "
    "set the same limits. The defaults fit real specs; raise them for unusual repos.",
}
"""Each section's purpose."""

OPT_IN_SECTIONS = frozenset({"api", "sharding"})
"""Sections whose presence turns a feature on: their defaults apply once present."""

MEANINGS: dict[str, str] = {
    "repo.url": "the state repo: a local path or any URL git can fetch and push "
    "(ssh, https, file); a relative path is taken from the config file's folder",
    "repo.branch": "the branch to watch",
    "repo.paths": "spec roots inside the repo, relative, without `..`",
    "repo.poll_interval": (
        "how often to look for new commits when no webhook or watch event arrives "
        "(a repo on a local path is fetched only when its branch moved)"
    ),
    "resync_interval": "compare everything again even with no push",
    "status.branch": "the branch status files are committed to",
    "status.path": "the folder of the status files (null: `status`); required when "
    "`status.branch` is the watched branch",
    "state_dir": "the daemon's state: the SQLite store, the git copies, model caches, "
    "runtimes, local endpoints",
    "secrets_dir": "one file per secret, named like the secret; null for none",
    "runtimes_dir": "where model-server virtualenvs are built (null: "
    "`<state_dir>/runtimes`); daemons of one host may share it",
    "api.listen": "HOST:PORT of the HTTP API (`[v6]:PORT` for IPv6; port 0 picks a free "
    "one); without tokens it must be loopback",
    "api.write_mode": "how API writes reach Git: `commit`, `branch` (a review branch per "
    "write) or `off`",
    "api.webhook_secret": "the *name* of the secret that signs Git webhooks (null: "
    "webhooks are refused)",
    "api.tokens": "bearer tokens; roles `viewer` < `operator` (sync, execute, cancel) < "
    "`editor` (writes) < `admin`",
    "api.project_roles": "who holds each role a Project's `spec.permissions` names: "
    "`PROJECT: {ROLE: {users: [token names], groups: [groups]}}`; inside a Project with "
    "permissions a write or action also needs a role whose access allows it (docs/api.md, "
    "Projects); every user and group must be one `api.tokens` has",
    "api.metrics_public": "true: `/metrics` answers without a token (for a Prometheus "
    "that cannot send one); every other route still needs one",
    "api.tokens[].name": "who the token is: API writes are committed under this name",
    "api.tokens[].role": "what the token may do",
    "api.tokens[].groups": "the groups the token's user is in, for `api.project_roles`",
    "api.tokens[].sha256": 'the hex digest of the token, never the token: `printf %s "$TOKEN" '
    "| sha256sum`",
    "clusters.max_concurrent_steps": "steps running at once on one cluster",
    "projects.create_missing": "create a Project a Deployment names but the repo lacks "
    "(else that is a validation error)",
    "executor.step_retry_cap": "a failing step's retry delay doubles from its node's "
    "`retry_delay` up to this cap",
    "logging.level": "the least severe level logged",
    "logging.format": "`json` lines, `text` lines for people, or `auto`: text on a "
    "terminal, json otherwise (`reconciler run --log-format` overrides)",
    "http.deny_private": "true: outbound calls reach public addresses only (loopback, "
    "private and link-local addresses are refused)",
    "load.max_file_bytes": "largest spec file read, in bytes (`--max-file-bytes`)",
    "load.max_documents": "most YAML documents in one file (`--max-documents`)",
    "load.max_depth": "deepest nesting of values (`--max-depth`)",
    "load.max_alias_expansion": "most values YAML aliases may expand to in one document "
    "(`--max-alias-expansion`)",
    "load.max_nodes": "most YAML nodes in one document (`--max-nodes`)",
    "notifications.smtp": "the SMTP server email notifications go through (null: no "
    "email)",
    "notifications.smtp.host": "the SMTP server's host name",
    "notifications.smtp.port": "its port (587 for STARTTLS, 465 for TLS)",
    "notifications.smtp.security": "`starttls`: upgrade the connection (required); `tls`: "
    "TLS from the start; `none`: plain text, for a relay on the same host only",
    "notifications.smtp.sender": "the From: address",
    "notifications.smtp.username": "the login (with `password_secret`; null: no login)",
    "notifications.smtp.password_secret": "the *name* of the secret holding the password",
    "notifications.smtp.timeout": "how long one delivery may take",
    "notifications.defaults": "the channels of a Workflow whose notifications are enabled "
    "and name none of their own (the dashboard's `options.enableNotifications`)",
    "notifications.defaults.webhook": "an http(s) URL every such notification is POSTed to",
    "notifications.defaults.webhook_secret": "the *name* of the secret that signs those "
    "bodies",
    "notifications.defaults.slack_webhook_secret": "the *name* of the secret holding a "
    "Slack incoming-webhook URL",
    "notifications.defaults.email_to": "addresses to mail (needs `notifications.smtp`)",
    "sharding.shards": "how many shards the objects are split into; every replica must "
    "say the same (changing it moves objects between shards: see docs/operations.md)",
    "sharding.identity": "this replica's name in the Leases (null: `$POD_NAME`, else the "
    "host name); unique per replica and stable across its restarts",
    "sharding.namespace": "where the Leases and handover ConfigMaps live (null: the pod's "
    "own namespace)",
    "sharding.lease_prefix": "Leases are named `PREFIX-shard-N` and `PREFIX-member-ID`, "
    "handover ConfigMaps `PREFIX-handover-N`",
    "sharding.lease_duration": "how long a lease nobody renews stays held: a dead "
    "replica's shards move after this",
    "sharding.renew_deadline": "a holder that could not renew for this long stops acting "
    "on the shard (before the lease can lapse)",
    "sharding.retry_period": "how often leases are renewed and free ones tried",
    "sharding.handover_grace": "how long a running step of a shard that moves may take "
    "to end before it is interrupted (the next holder runs it again)",
    "sharding.checkpoint_interval": "how often a held shard's handover is saved while "
    "its objects move (what a replica taking over after a crash continues from)",
    "sharding.kubeconfig": "the kubeconfig of the cluster holding the Leases, by secret "
    "(null: the pod's service account)",
    "sharding.kubeconfig.secret": "the *name* of the secret holding the kubeconfig",
    "sharding.kubeconfig.context": "its context (null: the current-context)",
    "sharding.advertise_url": "the URL other replicas forward API requests to (null: "
    "`http://$POD_IP:PORT` of `api.listen`)",
}

EXAMPLES: dict[str, list[str]] = {
    "api.webhook_secret": ["webhook_secret: webhook-hmac   # a secret NAME"],
    "api.tokens": [
        "tokens:",
        '  - {name: ci-bot, role: operator, sha256: "<hex digest of the token>"}',
    ],
    "api.project_roles": [
        "project_roles:",
        "  research:                     # a Project's metadata.name",
        "    data-scientist: {groups: [ml-team]}",
        "    admin: {users: [alice]}",
    ],
    "status.path": ["path: status/   # with status.branch equal to repo.branch"],
}
"""Commented example lines shown under a field in the YAML files."""

_VALIDATOR_TYPES = {
    "_duration": "duration",
    "_branch": "branch name",
    "_relative_path": "relative path",
    "_secret_name": "secret name",
    "_listen": "HOST:PORT",
}


class UndocumentedField(Exception):
    """The model has a field :data:`MEANINGS` does not describe."""


@dataclasses.dataclass(frozen=True)
class Row:
    """One documented field."""

    path: str
    type: str
    default: Any
    has_default: bool
    meaning: str
    section: str | None


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _list_item_model(annotation: Any) -> type[BaseModel] | None:
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        return _submodel(item)
    return None


def _named_type(metadata: Any) -> str | None:
    """The type a field's validator stands for (``duration`` for ``_duration``)."""
    for item in metadata:
        name = getattr(getattr(item, "func", None), "__name__", None)
        if name in _VALIDATOR_TYPES:
            return _VALIDATOR_TYPES[name]
    return None


def _type_text(field: FieldInfo) -> str:
    annotation = field.annotation
    named = _named_type(field.metadata)
    optional = False
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        optional = len(members) < len(get_args(annotation))
        annotation = members[0] if len(members) == 1 else annotation
    named = named or _named_type(getattr(annotation, "__metadata__", ()))
    if named is not None:
        text = named
    elif get_origin(annotation) is Literal:
        text = " \\| ".join(f"`{value}`" for value in get_args(annotation))
    elif annotation is bool:
        text = "boolean"
    elif annotation is int:
        text = "integer" + _bounds(field)
    elif annotation is str:
        text = "string"
    elif annotation is Path:
        text = "path"
    elif get_origin(annotation) is dict:
        text = "mapping"
    elif get_origin(annotation) is list:
        (item,) = get_args(annotation)
        inner = _named_type(getattr(item, "__metadata__", ())) or {str: "string"}.get(
            getattr(item, "__origin__", item)
        )
        text = "list of mappings" if _submodel(item) is not None else f"list of {inner}s"
    else:
        text = getattr(annotation, "__name__", str(annotation))
    return text + (" or null" if optional else "")


def _bounds(field: FieldInfo) -> str:
    low = high = None
    for item in field.metadata:
        if isinstance(item, annotated_types.Ge):
            low = item.ge
        if isinstance(item, annotated_types.Le):
            high = item.le
    if low is not None and high is not None:
        return f", {low} to {high}"
    if low is not None:
        return f", {low} or more"
    return ""


def _rows(model: type[BaseModel], prefix: str, section: str | None) -> Iterator[Row]:
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        nested = _submodel(field.annotation)
        if nested is not None:
            yield from _rows(nested, f"{path}.", section or name)
            continue
        meaning = MEANINGS.get(path)
        if meaning is None:
            raise UndocumentedField(
                f"config field {path!r} has no meaning in reconciler/docs_gen/config_doc.py "
                "MEANINGS: describe it there, then run " + REGENERATE
            )
        has_default = not field.is_required()
        default = field.get_default(call_default_factory=True) if has_default else None
        yield Row(path, _type_text(field), default, has_default, meaning, section)
        item = _list_item_model(field.annotation)
        if item is not None:
            yield from _rows(item, f"{path}[].", section)


def rows() -> list[Row]:
    """Every field of the config, in the model's order; UndocumentedField if one lacks
    a meaning."""
    return list(_rows(Config, "", None))


def yaml_value(value: Any) -> str:
    """A default as it is written in YAML."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(json.dumps(yaml_value(v)) for v in value) + "]"
    return str(value)


def _default_cell(row: Row) -> str:
    if not row.has_default:
        return "required"
    text = "null" if row.default is None else f"`{yaml_value(row.default)}`"
    if row.section in OPT_IN_SECTIONS:
        text += f" (once `{row.section}:` is present)"
    return text


def _cell(text: str) -> str:
    """Table-safe: a pipe not already escaped is escaped."""
    return re.sub(r"(?<!\\)\|", r"\\|", text)


INTRO = f"""\
# Daemon configuration

<!-- Generated by `{REGENERATE}` from reconciler/daemon/config.py; do not edit by hand. -->

One YAML file, `reconciler.yaml`: the path comes from `--config FILE`, else
`$RECONCILER_CONFIG`; the systemd unit uses `{DEFAULT_CONFIG_PATH}`. Every field has a
default that serves a single machine, and unknown fields are errors: a bad file is
refused with the file, line and field (`reconciler.yaml:3:3: repo.poll_intervl: unknown
field ...`), so a typo never starts a daemon that ignores it. Check a file without
starting anything:

```
reconciler check-config {DEFAULT_CONFIG_PATH}   # exit 0 valid, 1 with each problem
```

`systemctl reload reconciler` (SIGHUP) re-reads the file. Relative paths (`repo.url`
when it is a local path, `state_dir`, `secrets_dir`, `runtimes_dir`) are taken relative
to the config file's folder. Durations are a number and a unit: `500ms`, `30s`, `5m`,
`2h`, `1d`. `systemd/reconciler.yaml` is the whole file with every field at its default,
commented.
"""

OUTRO = """\
## Rules across fields

- Without `api.tokens`, `api.listen` must be a loopback address.
- Token names and digests are unique.
- Every user an `api.project_roles` grant names is a token's name, every group is in some
  token's `groups`, and each grant names at least one of them.
- `status.branch` equal to `repo.branch` needs `status.path`.
- `sharding.retry_period` < `sharding.renew_deadline` < `sharding.lease_duration`.

## Without a file

The essentials work as flags, everything else at its default (`--listen` turns the API
on, like an `api:` section):

```
reconciler run --repo URL_OR_PATH [--branch main] [--state-dir DIR] [--listen HOST:PORT]
```
"""


def render_markdown() -> str:
    """docs/config.md: the top-level fields, then one table per section."""
    all_rows = rows()
    groups: dict[str | None, list[Row]] = {None: []}
    for row in all_rows:
        groups.setdefault(row.section, []).append(row)
    lines = [INTRO, "## Fields", ""]
    for section, members in groups.items():
        if section is None:
            lines += ["### Top level", ""]
        else:
            lines += [f"### `{section}`", "", SECTIONS[section], ""]
        lines += ["| field | type | default | meaning |", "|---|---|---|---|"]
        lines += [
            f"| `{r.path}` | {_cell(r.type)} | {_default_cell(r)} | {_cell(r.meaning)} |"
            for r in members
        ]
        lines.append("")
    lines.append(OUTRO)
    return "\n".join(lines).rstrip("\n") + "\n"


def _comment(text: str, indent: str) -> list[str]:
    plain = text.replace("`", "")
    return [f"{indent}# {line}" for line in textwrap.wrap(plain, WIDTH - len(indent) - 2)]


def render_yaml(header: str) -> str:
    """A config file holding every field at its default, each with its meaning."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    current: str | None = "-"
    opened: list[str] = []
    for row in rows():
        if "[]" in row.path:
            continue
        opt_in = row.section in OPT_IN_SECTIONS
        prefix = "# " if opt_in else ""
        if row.section != current:
            current = row.section
            opened = []
            lines.append("")
            if current is not None:
                lines += _comment(SECTIONS[current], "")
                lines.append(f"{prefix}{current}:")
        *parents, key = row.path.split(".")[1 if row.section is not None else 0 :]
        for depth, parent in enumerate(parents):  # a mapping inside the section
            if opened[: depth + 1] != parents[: depth + 1]:
                opened = parents[: depth + 1]
                lines.append(f"{prefix}{'  ' * (depth + 1)}{parent}:")
        opened = opened[: len(parents)]
        indent = "  " * (len(parents) + (1 if row.section is not None else 0))
        lines += _comment(row.meaning, indent)
        lines.append(f"{prefix}{indent}{key}: {yaml_value(row.default)}")
        for number, example in enumerate(EXAMPLES.get(row.path, [])):
            lines.append(f"{indent}# {'e.g. ' if number == 0 else '     '}{example}")
    return "\n".join(lines) + "\n"


SYSTEMD_HEADER = f"""\
{DEFAULT_CONFIG_PATH}: the daemon's configuration (docs/config.md).
Generated by `{REGENERATE}` from the config model; do not edit it by hand.
Every value shown is the default, so this file behaves exactly like no file: change what
you need. Sections marked with `# ` before their key (api:) are off until uncommented.
Unknown fields are errors; check a change with `reconciler check-config FILE` before
`systemctl reload reconciler`."""

TEMPLATE_HEADER = f"""\
The daemon's configuration for this state repo, to copy onto the daemon's host as
{DEFAULT_CONFIG_PATH} (or give it with `reconciler run --config FILE`); it is not read
from the repo. Set repo.url to this repo's clone URL. Every value shown is the default,
so this file behaves exactly like no file; sections marked with `# ` before their key
(api:) are off until uncommented. Check a change with `reconciler check-config FILE`.
Generated by `{REGENERATE}` (docs/config.md lists every field)."""

PROJECT = Path(__file__).resolve().parents[2]
PAGES: dict[str, str] = {
    "docs/config.md": "markdown",
    "systemd/reconciler.yaml": "systemd",
    "state-repo-template/.reconciler/reconciler.yaml": "template",
}


def render(kind: str) -> str:
    if kind == "markdown":
        return render_markdown()
    return render_yaml(SYSTEMD_HEADER if kind == "systemd" else TEMPLATE_HEADER)


def pages() -> dict[str, str]:
    """Project-relative path -> its generated text."""
    return {path: render(kind) for path, kind in PAGES.items()}
