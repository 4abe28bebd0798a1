"""The daemon's own configuration (``reconciler.yaml``), loaded once at start and on reload.

docs/config.md fixes the fields; every one has a default that serves a single
machine, unknown fields are errors, and a bad file is refused with the file, line, field
path and what to change, so a typo never starts a daemon that silently ignores it. The
YAML goes through the project's one loader (:mod:`reconciler.load.documents`: YAML 1.2
core schema, duplicate keys refused, positions on demand). The same essentials can be
given as flags for a config-less start (:func:`config_from_flags`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, get_args

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from reconciler.core.durations import DurationError, parse_duration
from reconciler.drivers.secrets import InvalidSecretName, validate_secret_name
from reconciler.load.documents import SourceFile, load_file

CONFIG_ENV = "RECONCILER_CONFIG"
DEFAULT_CONFIG_PATH = Path("/etc/reconciler/reconciler.yaml")

Role = Literal["viewer", "operator", "editor", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "editor", "admin")
WriteMode = Literal["commit", "branch", "off"]
LogLevel = Literal["debug", "info", "warning", "error"]

Loc = tuple[str | int, ...]


# --- errors ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with the configuration, at a field path (``repo.poll_interval``)."""

    loc: Loc
    message: str
    source: str = "<config>"
    line: int | None = None
    col: int | None = None
    label: str | None = None  # shown instead of the field path (a command-line flag)

    @property
    def field(self) -> str:
        if self.label is not None:
            return self.label
        text = ""
        for element in self.loc:
            text += f"[{element}]" if isinstance(element, int) else f".{element}"
        return text.lstrip(".")

    def format(self) -> str:
        where = self.source
        if self.line is not None:
            where += f":{self.line}" + (f":{self.col}" if self.col is not None else "")
        field = self.field
        return f"{where}: {field}: {self.message}" if field else f"{where}: {self.message}"


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` lists every problem found."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(p.format() for p in self.problems))


# --- field types ----------------------------------------------------------------------


def _duration(value: object) -> object:
    try:
        seconds = parse_duration(value)  # type: ignore[arg-type]
    except DurationError as exc:
        raise ValueError(str(exc)) from None
    if seconds <= 0:
        raise ValueError(f"duration {value!r} must be longer than zero")
    return value


def _secret_name(value: object) -> object:
    if value is None:
        return None
    try:
        return validate_secret_name(value)  # type: ignore[arg-type]
    except InvalidSecretName as exc:
        raise ValueError(str(exc)) from None


_REF_BAD = re.compile(r"(^[-/.])|(\.\.)|([\s~^:?*\[\\])|(//)|(@\{)|([/.]$)|(\.lock$)")


def _branch(value: object) -> object:
    if not isinstance(value, str) or not value or _REF_BAD.search(value):
        raise ValueError(f"{value!r} is not a usable git branch name")
    return value


def _relative_path(value: object) -> object:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty path relative to the repository root")
    pure = PurePosixPath(value)
    if pure.is_absolute() or ".." in pure.parts:
        raise ValueError(f"{value!r} must be relative to the repository root, without '..'")
    return value


Duration = Annotated[str, BeforeValidator(_duration)]
"""A duration as written (``30s``); validated by :func:`parse_duration`, kept as text."""
Branch = Annotated[str, BeforeValidator(_branch)]
RepoPath = Annotated[str, BeforeValidator(_relative_path)]
SecretName = Annotated[str | None, BeforeValidator(_secret_name)]


def split_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as (host, port); raise ValueError."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{text!r} is not HOST:PORT, e.g. 127.0.0.1:8080")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: write an IPv6 address in brackets, e.g. [::1]:8080")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from 0 to 65535")
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    """Whether ``host`` can only be reached from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("expected HOST:PORT, e.g. 127.0.0.1:8080")
    split_listen(value)
    return value


def role_allows(role: Role, required: Role) -> bool:
    """Roles are ordered viewer < operator < editor < admin."""
    return ROLES.index(role) >= ROLES.index(required)


# --- models ---------------------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _is_local_path(url: str) -> bool:
    if "://" in url:
        return False
    colon = url.find(":")
    return colon < 0 or "/" in url[:colon]  # "host:path" and "user@host:path" are ssh


class RepoConfig(_Section):
    """The state repo: where the specs are and how often to look."""

    url: str = Field(default="/srv/state-repo", min_length=1)
    branch: Branch = "main"
    paths: list[RepoPath] = Field(default_factory=lambda: ["."], min_length=1)
    poll_interval: Duration = "60s"

    @field_validator("url")
    @classmethod
    def _absolute_local_path(cls, value: str, info: pydantic.ValidationInfo) -> str:
        if _is_local_path(value) and not Path(value).is_absolute():
            return str((_base_dir(info) / value).resolve())
        return value

    @property
    def poll_interval_seconds(self) -> float:
        return parse_duration(self.poll_interval)


class StatusConfig(_Section):
    """Where status files are committed (docs/status.md)."""

    branch: Branch = "reconciler/status"
    path: RepoPath | None = None

    @property
    def directory(self) -> str:
        """The folder holding the status files on ``branch``."""
        return (self.path or "status").rstrip("/")


_PRINCIPAL = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
TokenName = Annotated[str, Field(pattern=_PRINCIPAL)]
"""A token's name: the user it stands for (API commits are authored under it)."""
GroupName = Annotated[str, Field(pattern=_PRINCIPAL)]
_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def _project_name(value: object) -> object:
    if not isinstance(value, str) or not _DNS_LABEL.fullmatch(value):
        raise ValueError(f"{value!r} is not a Project name (a lowercase DNS label)")
    return value


def _role_name(value: object) -> object:
    if not isinstance(value, str) or not value or len(value) > 63 or value != value.strip():
        raise ValueError(f"{value!r} is not a role name as spec.permissions gives one")
    return value


ProjectName = Annotated[str, BeforeValidator(_project_name)]
"""A Project's ``metadata.name`` (a lowercase DNS label)."""
ProjectRoleName = Annotated[str, BeforeValidator(_role_name)]
"""A role a Project's ``spec.permissions`` names (``admin``, ``data-scientist``)."""


class ApiToken(_Section):
    """A bearer token, stored as the SHA-256 hex digest of the token, never the token."""

    name: TokenName
    role: Role
    sha256: str
    groups: list[GroupName] = Field(default_factory=list)
    """Groups the token's user belongs to; api.project_roles grants roles to groups."""

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise ValueError(
                "expected the SHA-256 hex digest of the token (64 hex digits, e.g. from "
                '`printf %s "$TOKEN" | sha256sum`), never the token itself'
            )
        return value.lower()


class RoleGrant(_Section):
    """Who holds one role of one project: users (token names) and groups."""

    users: list[TokenName] = Field(default_factory=list)
    groups: list[GroupName] = Field(default_factory=list)


class ApiConfig(_Section):
    """The HTTP API; with no tokens it is read-only and must listen on loopback."""

    listen: Annotated[str, BeforeValidator(_listen)] = "127.0.0.1:8080"
    write_mode: WriteMode = "commit"
    webhook_secret: SecretName = None
    tokens: list[ApiToken] = Field(default_factory=list)
    project_roles: dict[ProjectName, dict[ProjectRoleName, RoleGrant]] = Field(
        default_factory=dict
    )
    """Per Project name, per role its ``spec.permissions`` names, who holds that role
    (docs/api.md, Projects)."""
    metrics_public: bool = False
    """true: GET /metrics answers without a bearer token, so a Prometheus scraper needs
    none (the metrics hold counts, durations, kinds, phases and the state repo's URL with
    any credentials hidden; no object names, no secrets);
    false: once api.tokens exist, /metrics needs a token of any role (docs/operations.md
    shows a Prometheus scrape config with a token file)."""

    @property
    def host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]


class ClustersConfig(_Section):
    max_concurrent_steps: int = Field(default=8, ge=1, le=1024)
    """Steps running at once on one cluster."""


class ProjectsConfig(_Section):
    create_missing: bool = False
    """Create a Project a Deployment names but the repo lacks (docs/spec.md, References)."""


class ExecutorConfig(_Section):
    """Retry backoff: each node's own ``retry_delay`` doubles up to this cap."""

    step_retry_cap: Duration = "5m"

    @property
    def step_retry_cap_seconds(self) -> float:
        return parse_duration(self.step_retry_cap)


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


class LoadConfig(_Section):
    """Limits on each spec file the daemon loads (the loader's diagnostics name these
    keys); the defaults fit real specs, raise them for unusual repos."""

    max_file_bytes: int = Field(default=1024 * 1024, ge=1)
    max_documents: int = Field(default=1000, ge=1)
    max_depth: int = Field(default=64, ge=1, le=10_000)
    max_alias_expansion: int = Field(default=10_000, ge=1)
    max_nodes: int = Field(default=500_000, ge=1)


class HttpConfig(_Section):
    deny_private: bool = False
    """true: outbound calls (http_request steps, notifications) reach public addresses only."""


_EMAIL = re.compile(r"^[^@\s,<>]+@[^@\s,<>]+$")


def _email(value: object) -> object:
    if not isinstance(value, str) or not _EMAIL.fullmatch(value):
        raise ValueError(f"{value!r} is not an email address, e.g. reconciler@example.com")
    return value


def _http_url(value: object) -> object:
    if value is None:
        return None
    if not isinstance(value, str) or not re.match(r"^https?://[^\s/]+", value):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


EmailAddress = Annotated[str, BeforeValidator(_email)]


class SmtpConfig(_Section):
    """The SMTP server that Workflow email notifications go through."""

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    """starttls: upgrade the connection (required); tls: TLS from the start (port 465);
    none: plain text, for a relay on the same host only."""
    sender: EmailAddress
    """The From: address."""
    username: str | None = Field(default=None, min_length=1)
    password_secret: SecretName = None
    """The *name* of the secret holding the password."""
    timeout: Duration = "30s"

    @pydantic.model_validator(mode="after")
    def _login_complete(self) -> SmtpConfig:
        if (self.username is None) != (self.password_secret is None):
            raise ValueError("username and password_secret go together: give both or neither")
        return self


class NotificationDefaults(_Section):
    """The channels of a Workflow whose ``config.notifications`` is enabled and names none
    of its own (the workflow dashboard's ``options.enableNotifications``)."""

    webhook: Annotated[str | None, BeforeValidator(_http_url)] = None
    webhook_secret: SecretName = None
    slack_webhook_secret: SecretName = None
    email_to: list[EmailAddress] = Field(default_factory=list)

    @pydantic.model_validator(mode="after")
    def _secret_needs_webhook(self) -> NotificationDefaults:
        if self.webhook_secret is not None and self.webhook is None:
            raise ValueError("webhook_secret signs the webhook's bodies: give webhook too")
        return self

    @property
    def any(self) -> bool:
        return bool(self.webhook or self.slack_webhook_secret or self.email_to)


class NotificationsConfig(_Section):
    smtp: SmtpConfig | None = None
    defaults: NotificationDefaults = Field(default_factory=NotificationDefaults)

    @pydantic.model_validator(mode="after")
    def _mail_needs_smtp(self) -> NotificationsConfig:
        if self.defaults.email_to and self.smtp is None:
            raise ValueError("defaults.email_to needs an SMTP server: set notifications.smtp")
        return self


class LoggingConfig(_Section):
    level: Annotated[LogLevel, BeforeValidator(_lower)] = "info"
    format: Literal["auto", "json", "text"] = "auto"
    """json lines, text lines for people, or auto: text on a terminal, json otherwise."""


class ShardKubeconfig(_Section):
    """Which secret holds the kubeconfig of the cluster the Leases live in."""

    secret: SecretName
    context: str | None = None


class ShardingConfig(_Section):
    """Several replicas sharing the work by shard, each shard held through a Kubernetes
    Lease (docs/operations.md, "Running several replicas"). Off unless present."""

    shards: int = Field(default=4, ge=1, le=1024)
    identity: str | None = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$")
    """This replica's name in the Leases (default: $POD_NAME, else the host name)."""
    namespace: str | None = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    """Where the Leases and handover ConfigMaps live (default: the pod's namespace)."""
    lease_prefix: str = Field(default="reconciler", pattern=r"^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$")
    lease_duration: Duration = "15s"
    renew_deadline: Duration = "10s"
    retry_period: Duration = "2s"
    handover_grace: Duration = "20s"
    checkpoint_interval: Duration = "2s"
    kubeconfig: ShardKubeconfig | None = None
    advertise_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    """The URL other replicas forward API requests to (default: http://$POD_IP:PORT)."""

    def seconds(self, name: str) -> float:
        return parse_duration(getattr(self, name))


def _base_dir(info: pydantic.ValidationInfo) -> Path:
    context = info.context if isinstance(info.context, Mapping) else {}
    base = context.get("base_dir")
    return Path(base) if base is not None else Path.cwd()


class Config(_Section):
    """The whole daemon configuration (docs/config.md)."""

    repo: RepoConfig = Field(default_factory=RepoConfig)
    resync_interval: Duration = "5m"
    status: StatusConfig = Field(default_factory=StatusConfig)
    state_dir: Path = Path("/var/lib/reconciler")
    secrets_dir: Path | None = Path("/etc/reconciler/secrets")
    runtimes_dir: Path | None = None
    """Where local model-server virtualenvs are built (default: <state_dir>/runtimes);
    several daemons of one host may share it, each runtime built once."""
    api: ApiConfig = Field(default_factory=ApiConfig)
    clusters: ClustersConfig = Field(default_factory=ClustersConfig)
    projects: ProjectsConfig = Field(default_factory=ProjectsConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    load: LoadConfig = Field(default_factory=LoadConfig)
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    sharding: ShardingConfig = Field(default_factory=ShardingConfig)

    @property
    def sharded(self) -> bool:
        """The ``sharding:`` section is present: run as one replica of several."""
        return "sharding" in self.model_fields_set

    @field_validator("state_dir", "secrets_dir", "runtimes_dir")
    @classmethod
    def _absolute(cls, value: Path | None, info: pydantic.ValidationInfo) -> Path | None:
        if value is None or value.is_absolute():
            return value
        return (_base_dir(info) / value).resolve()

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> Config:
        problems = cross_field_problems(self)
        if problems:
            raise ConfigError(problems)  # not a ValueError: pydantic lets it through
        return self

    @property
    def resync_interval_seconds(self) -> float:
        return parse_duration(self.resync_interval)


def cross_field_problems(config: Config) -> list[ConfigProblem]:
    """Rules that involve more than one field."""
    problems: list[ConfigProblem] = []
    api = config.api
    if not api.tokens and not is_loopback(api.host):
        problems.append(
            ConfigProblem(
                ("api", "listen"),
                f"{api.listen!r} is not a loopback address, but no api.tokens are configured: "
                "without tokens the API listens on loopback only. Add tokens or listen on "
                "127.0.0.1.",
            )
        )
    seen_names: dict[str, int] = {}
    seen_digests: dict[str, int] = {}
    for index, token in enumerate(api.tokens):
        if token.name in seen_names:
            problems.append(
                ConfigProblem(
                    ("api", "tokens", index, "name"),
                    f"token name {token.name!r} is already used by api.tokens"
                    f"[{seen_names[token.name]}]",
                )
            )
        if token.sha256 in seen_digests:
            problems.append(
                ConfigProblem(
                    ("api", "tokens", index, "sha256"),
                    f"the same digest is already given to api.tokens[{seen_digests[token.sha256]}]",
                )
            )
        seen_names.setdefault(token.name, index)
        seen_digests.setdefault(token.sha256, index)
    problems.extend(_grant_problems(api))
    sharding = config.sharding
    timing = [sharding.seconds(n) for n in ("retry_period", "renew_deadline", "lease_duration")]
    if not timing[0] < timing[1] < timing[2]:
        problems.append(
            ConfigProblem(
                ("sharding", "renew_deadline"),
                "needs sharding.retry_period < sharding.renew_deadline < "
                "sharding.lease_duration (a holder stops acting before its lease can lapse)",
            )
        )
    if config.status.branch == config.repo.branch and config.status.path is None:
        problems.append(
            ConfigProblem(
                ("status", "path"),
                f"status.branch is the watched branch {config.repo.branch!r}: set status.path "
                "(e.g. 'status/') so status files stay apart from specs",
            )
        )
    return problems


def _grant_problems(api: ApiConfig) -> list[ConfigProblem]:
    """Each project role grant names someone, and only users and groups api.tokens has,
    so a misspelt name is an error rather than a grant to nobody."""
    problems: list[ConfigProblem] = []
    users = {token.name for token in api.tokens}
    groups = {group for token in api.tokens for group in token.groups}
    for project, roles in api.project_roles.items():
        for role, grant in roles.items():
            where: Loc = ("api", "project_roles", project, role)
            if not grant.users and not grant.groups:
                problems.append(
                    ConfigProblem(where, "the grant names no users and no groups: add some "
                                  "or remove the role")
                )
            for index, user in enumerate(grant.users):
                if user not in users:
                    problems.append(
                        ConfigProblem(
                            (*where, "users", index),
                            f"user {user!r} is no api.tokens entry's name "
                            f"(names: {', '.join(sorted(users)) or 'none'})",
                        )
                    )
            for index, group in enumerate(grant.groups):
                if group not in groups:
                    problems.append(
                        ConfigProblem(
                            (*where, "groups", index),
                            f"group {group!r} is in no api.tokens entry's groups "
                            f"(groups: {', '.join(sorted(groups)) or 'none'})",
                        )
                    )
    return problems


# --- loading --------------------------------------------------------------------------


def _model_at(loc: Loc) -> type[BaseModel] | None:
    model: type[BaseModel] | None = Config
    for element in loc:
        if isinstance(element, int):
            continue
        field = model.model_fields.get(element) if model else None
        if field is None:
            return None
        candidates = [field.annotation, *get_args(field.annotation)]
        model = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
    return model


def _problem_from(error: Any) -> ConfigProblem:
    loc: Loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        owner = _model_at(loc[:-1])
        known = f" (known fields: {', '.join(owner.model_fields)})" if owner else ""
        return ConfigProblem(loc, f"unknown field {loc[-1]!r}{known}")
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "literal_error":
        message += f" (got {error['input']!r})"
    return ConfigProblem(loc, message)


def _validate(
    raw: Mapping[str, Any],
    *,
    source: str,
    base_dir: Path,
    locate: Callable[..., tuple[int, int]] | None = None,
    labels: Mapping[Loc, str] | None = None,
) -> Config:
    try:
        return Config.model_validate(raw, context={"base_dir": base_dir})
    except pydantic.ValidationError as exc:
        problems = [_problem_from(e) for e in exc.errors(include_url=False)]
        cause: Exception = exc
    except ConfigError as exc:
        problems = list(exc.problems)
        cause = exc
    placed: list[ConfigProblem] = []
    for problem in problems:
        line = col = None
        if locate is not None:
            unknown = problem.message.startswith("unknown field")
            line, col = locate(problem.loc, key=unknown)
        label = (labels or {}).get(problem.loc)
        placed.append(dataclasses.replace(problem, source=source, line=line, col=col, label=label))
    raise ConfigError(placed) from cause


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a config file; raise ConfigError naming file, line and field."""
    file = Path(path)
    source = str(file)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigError(
            [ConfigProblem((), f"cannot read the config file: {exc.strerror or exc}", source)]
        ) from exc
    loaded = load_file(SourceFile(path=source, data=data))
    if loaded.diagnostics:
        raise ConfigError(
            [ConfigProblem((), d.message, source, d.line, d.col) for d in loaded.diagnostics]
        )
    documents = loaded.documents
    if len(documents) > 1:
        second = documents[1]
        raise ConfigError(
            [
                ConfigProblem(
                    (),
                    "expected one YAML document, found a second",
                    source,
                    second.line,
                    second.col,
                )
            ]
        )
    if not documents:
        raw: object = {}
    else:
        raw = documents[0].value
    if not isinstance(raw, dict):
        first = documents[0]
        raise ConfigError(
            [
                ConfigProblem(
                    (),
                    "expected a mapping of fields (repo:, api:, ...)",
                    source,
                    first.line,
                    first.col,
                )
            ]
        )
    return _validate(
        raw,
        source=source,
        base_dir=file.parent.resolve(),
        locate=documents[0].locate if documents else None,
    )


_FLAG_LABELS: dict[Loc, str] = {
    ("repo", "url"): "--repo",
    ("repo", "branch"): "--branch",
    ("state_dir",): "--state-dir",
    ("api", "listen"): "--listen",
}


def config_from_flags(
    *,
    repo: str,
    branch: str | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    listen: str | None = None,
) -> Config:
    """A config for ``reconciler run --repo ...`` without a file; defaults elsewhere."""
    raw: dict[str, Any] = {"repo": {"url": repo}}
    if branch is not None:
        raw["repo"]["branch"] = branch
    if state_dir is not None:
        raw["state_dir"] = os.fspath(state_dir)
    if listen is not None:
        raw["api"] = {"listen": listen}
    return _validate(raw, source="command line", base_dir=Path.cwd(), labels=_FLAG_LABELS)


def config_path(
    flag: str | os.PathLike[str] | None, *, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The config file to load: ``--config``, else ``$RECONCILER_CONFIG``, else None."""
    if flag is not None:
        return Path(flag)
    env = os.environ if environ is None else environ
    value = env.get(CONFIG_ENV)
    return Path(value) if value else None
