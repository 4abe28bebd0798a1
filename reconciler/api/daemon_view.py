"""The running daemon as a :class:`~reconciler.api.view.DaemonView`, and its server.

Reads go to the store the daemon writes (objects with their status documents,
executions, steps) and to the reconciler's last validated revision; actions go through
the daemon's public entry points (``trigger``, the executor's ``submit`` and ``cancel``).
:func:`serving` is the hook ``Daemon(serve=...)`` runs: it starts the API on the daemon's
loop once the store is open and stops it before the store closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from reconciler.api.app import ApiServer, ApiSettings, create_app
from reconciler.api.auth import TokenBook
from reconciler.api.documents import API_TASK_WORKFLOW_RUN
from reconciler.api.metrics import ApiMetrics
from reconciler.api.redaction import BodyRedactor
from reconciler.api.shapes.native import REF_PATTERN
from reconciler.api.view import ObjectOrigin, PlannedRef, Readiness, SourceInfo, ViewError
from reconciler.api.webhooks import WebhookGuard
from reconciler.api.writes import SpecWrites
from reconciler.core.chain_builders import (
    graph_steps,
    literal_name,
    workflow_deprovision_chain,
    workflow_rank,
)
from reconciler.core.chains import Chain
from reconciler.core.diff import ObjectState, diff_states, state_from
from reconciler.core.plan import plan_changes
from reconciler.core.validation.repo import ValidateOptions
from reconciler.daemon import provisioning
from reconciler.daemon.config import Config
from reconciler.daemon.logs import Redactor
from reconciler.daemon.object_memo import load_memos
from reconciler.daemon.object_progress import ObjectProgress
from reconciler.daemon.reconcile import LAST_APPLIED, SOURCE_STATUS, Reconciler
from reconciler.daemon.service import Daemon
from reconciler.daemon.snapshot import SnapshotLoader
from reconciler.drivers.git_source import GitSource, GitSourceError
from reconciler.drivers.git_writer import GitWriter
from reconciler.drivers.secrets import InvalidSecretName, SecretNotStored
from reconciler.engine.cancellation import CancelReport
from reconciler.engine.executor import Executor
from reconciler.engine.records import ExecutionId
from reconciler.engine.store import Store, StoreError

log = logging.getLogger("reconciler.api")

READY_PROBE_KEY = "api.readyz_probe"
_REF = re.compile(REF_PATTERN)
_PARAM_TYPES = (str, int, float, bool, type(None))


class ApiListenError(OSError):
    """The API cannot listen where the config says (a port in use, an unknown address)."""


class DaemonAdapter:
    """:class:`~reconciler.api.view.DaemonView` over a running :class:`Daemon`."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon
        self._plan_sources: dict[str, GitSource] = {}
        self._authors: dict[str, str] = {}
        self._origins: dict[str, tuple[str, ObjectOrigin | None]] = {}
        """By file path: the revision it was looked up at, and the origin found."""

    # -- parts, present once the daemon runs ------------------------------------------------

    @property
    def store(self) -> Store:
        store = self._daemon.store
        if store is None:
            raise ViewError("the daemon has not opened its store yet", reason="unavailable")
        return store

    def _executor(self) -> Executor:
        executor = self._daemon.executor
        if executor is None:
            raise ViewError("the daemon's executor is not running", reason="unavailable")
        return executor

    def _reconciler(self) -> Reconciler:
        reconciler = self._daemon.reconciler
        if reconciler is None:
            raise ViewError("the daemon has not started reconciling yet", reason="unavailable")
        return reconciler

    # -- reads ------------------------------------------------------------------------------

    def readiness(self) -> Readiness:
        loaded = self._daemon.ready
        try:
            self.store.set_value(READY_PROBE_KEY, time.time())
            writable, problem = True, ""
        except (StoreError, ViewError) as exc:
            writable, problem = False, f"the state store refuses writes: {exc}"
        except Exception as exc:  # sqlite3 errors, a full disk
            writable, problem = False, f"the state store refuses writes: {exc}"
        if not loaded:
            problem = problem or "the first load of the state repo has not finished"
        return Readiness(loaded=loaded, store_writable=writable, detail=problem or "ready")

    def desired(self) -> Mapping[str, ObjectState]:
        reconciler = self._daemon.reconciler
        return reconciler.desired_states() if reconciler is not None else {}

    def source(self) -> SourceInfo:
        reconciler = self._reconciler()
        status = self.store.get_value(SOURCE_STATUS)
        applied = self.store.get_value(LAST_APPLIED)
        return SourceInfo(
            url=reconciler.source.display_url,
            branch=reconciler.source.branch,
            last_seen_revision=reconciler.last_seen,
            last_applied_revision=applied if isinstance(applied, str) else None,
            status=status if isinstance(status, dict) else None,
        )

    def implemented_step_types(self) -> frozenset[str]:
        """The step types the running daemon can run (its own registry)."""
        return self._reconciler().step_types

    async def origin_of(self, kind: str, name: str) -> ObjectOrigin | None:
        reconciler = self._reconciler()
        path = reconciler.source_path(f"{kind}/{name}")
        revision = reconciler.last_seen
        if path is None or revision is None:
            return None
        cached = self._origins.get(path)
        if cached is None or cached[0] != revision:
            try:
                info = await asyncio.to_thread(reconciler.source.file_origin, path, revision)
            except GitSourceError:
                return None
            origin = (
                ObjectOrigin(author=info.author_name, created_at=info.authored_at, commit=info.sha)
                if info is not None
                else None
            )
            cached = self._origins[path] = (revision, origin)
        return cached[1]

    def notification_defaults(self) -> frozenset[str]:
        defaults = self._daemon.config.notifications.defaults
        named = {
            "webhook": defaults.webhook,
            "slack": defaults.slack_webhook_secret,
            "email": defaults.email_to,
        }
        return frozenset(channel for channel, given in named.items() if given)

    async def author_of(self, revision: str) -> str | None:
        if revision not in self._authors:
            source = self._reconciler().source
            try:
                info = await asyncio.to_thread(source.commit_info, revision)
            except GitSourceError:
                return None
            self._authors[revision] = info.author_name
        return self._authors[revision]

    # -- actions ----------------------------------------------------------------------------

    def trigger(self, *, reason: str, resync: bool = False, expect: Sequence[str] = ()) -> None:
        reconciler = self._daemon.reconciler
        if reconciler is not None:
            for key in expect:
                reconciler.expect(key)
        self._daemon.trigger(reason, resync=resync)

    def store_secret(self, *, name: str, value: str, replace: bool = False) -> None:
        try:
            self._daemon.resolver.store(name, value, replace=replace)
        except InvalidSecretName as exc:
            raise ViewError(str(exc), reason="invalid") from exc
        except SecretNotStored as exc:
            reason = "conflict" if "already exists" in str(exc) else "unavailable"
            raise ViewError(str(exc), reason=reason) from exc

    def forget_secrets(self, *, prefix: str, exact: bool = False) -> list[str]:
        return self._daemon.resolver.remove_stored(prefix, exact=exact)

    def object_status(self, key: str) -> Mapping[str, Any] | None:
        return self._reconciler().status_of(key)

    def resync_object(self, key: str) -> None:
        self._reconciler().request(key, resync=True)

    def explain(self, key: str) -> Mapping[str, Any] | None:
        return self._reconciler().explain(key)

    def object_progress(self, key: str) -> ObjectProgress:
        return self._reconciler().progress_of(key)

    def cancel(self, execution_id: str) -> CancelReport:
        return self._executor().cancel(execution_id)

    def start_workflow(
        self,
        *,
        name: str,
        params: Mapping[str, Any],
        requested_by: str,
        environment: str | None = None,
    ) -> ExecutionId:
        state = self._workflow(name)
        if state.suspended:
            raise ViewError(f"Workflow {name!r} is suspended (spec.suspend)", reason="conflict")
        spec = state.spec
        graph = (spec.get("workflows") or {}).get("provision")
        if not isinstance(graph, Mapping):
            raise ViewError(f"Workflow {name!r} has no provision graph", reason="invalid")
        defaults = dict(spec.get("user_params") or {})
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            known = ", ".join(sorted(defaults)) or "none"
            raise ViewError(
                f"params.{unknown[0]}: Workflow {name!r} declares no such user_param "
                f"(declared: {known})",
                reason="invalid",
            )
        for param, value in params.items():
            if not isinstance(value, _PARAM_TYPES):
                raise ViewError(
                    f"params.{param}: expected a string, number, boolean or null",
                    reason="invalid",
                )
        recorded = self.store.get_object("Workflow", name)
        if recorded is None or recorded.spec_hash != state.spec_hash:
            raise ViewError(
                f"Workflow {name!r} is still being reconciled at this revision; start it once "
                "its phase is Ready",
                reason="conflict",
            )
        params = dict(params)
        if environment is not None:
            listed = [str(e) for e in spec.get("environments") or []]
            if environment not in listed:
                raise ViewError(
                    f"environment: Workflow {name!r} runs in {', '.join(listed) or 'no named'} "
                    f"environments, not {environment!r}",
                    reason="invalid",
                )
            if "environment" in defaults:
                params.setdefault("environment", environment)
        self._refuse_while_running(name)
        steps = graph_steps(spec, graph)
        cluster = next(
            (
                found
                for step in steps
                if step.type == "k8s_job"
                and (found := literal_name(step.inputs.get("cluster"))) is not None
            ),
            None,
        )
        revision = self._reconciler().last_seen or ""
        chain = Chain(
            kind="Workflow",
            name=name,
            action="execute",
            revision=revision,
            spec_hash=state.spec_hash,
            steps=steps,
            cluster=cluster,
            params={**defaults, **params},
        )
        hooks = self._reconciler().workflow_hooks
        if hooks is not None:  # aimed at a cluster of its environments (the one asked for)
            chain = hooks.targets.target(chain, environment=environment, given=set(params))
        return self._submit_run(
            chain,
            requested_by=requested_by,
            uses="uses",
            record={"params": dict(params), "environment": environment},
            said="workflow started through the API",
        )

    def deprovision_workflow(self, *, name: str, requested_by: str) -> ExecutionId:
        """Run Workflow ``name``'s deprovision now while its spec stays in Git."""
        state = self._workflow(name)
        self._refuse_while_running(name)
        planned = workflow_deprovision_chain(state, self._reconciler().last_seen or "")
        try:
            chain = provisioning.deprovision_chain(planned, self.store)
        except provisioning.NothingProvisioned as exc:
            raise ViewError(str(exc), reason="conflict") from exc
        return self._submit_run(
            chain,
            requested_by=requested_by,
            uses="deprovisions with",
            record={"action": "deprovision"},
            said="workflow deprovision started through the API",
        )

    # -- shared by the runs the API starts -------------------------------------------------

    def _workflow(self, name: str) -> ObjectState:
        state = self.desired().get(f"Workflow/{name}")
        if state is None:
            raise ViewError(f"no Workflow {name!r} in the last valid revision", reason="not_found")
        return state

    def _refuse_while_running(self, name: str) -> None:
        running = self.store.list_executions(
            kind="Workflow", name=name, statuses=("queued", "running"), limit=1
        )
        if running:
            raise ViewError(
                f"Workflow {name!r} has execution {running[0].id} {running[0].status}; "
                "wait for it or cancel it first",
                reason="conflict",
            )

    def _submit_run(
        self,
        chain: Chain,
        *,
        requested_by: str,
        uses: str,
        record: Mapping[str, Any],
        said: str,
    ) -> ExecutionId:
        """Submit a run the API asked for (trigger ``api``), recorded as an API task."""
        name = chain.name
        missing = [t for t in chain.step_types() if t not in self.implemented_step_types()]
        if missing:
            raise ViewError(
                f"Workflow {name!r} {uses} step types this build cannot run: "
                f"{', '.join(missing)}",
                reason="conflict",
            )
        try:
            state = self.desired().get(f"Workflow/{name}")
            rank = workflow_rank(state.spec) if state is not None else 2
            execution_id = self._executor().submit(chain, trigger="api", rank=rank)
        except ValueError as exc:  # node inputs that cannot be filled, a graph refused
            raise ViewError(str(exc), reason="invalid") from exc
        self.store.create_api_task(
            kind=API_TASK_WORKFLOW_RUN,
            payload={
                "execution_id": execution_id,
                "workflow": name,
                "trigger": "api",
                "requested_by": requested_by,
                **record,
            },
            status="submitted",
        )
        log.info(said, extra={"workflow": name, "execution": execution_id, "by": requested_by})
        return execution_id

    async def plan_for(self, ref: str | None) -> PlannedRef:
        reconciler = self._reconciler()
        config = self._daemon.config
        watched = reconciler.source.branch
        name = ref or watched
        if not _REF.fullmatch(name):
            raise ViewError(f"ref {name!r} is not a branch name or commit", reason="invalid")
        source, revision = await asyncio.to_thread(self._resolve, name, watched, reconciler)
        loader = SnapshotLoader(
            source=source,
            roots=config.repo.paths,
            options=ValidateOptions(implicit_projects=config.projects.create_missing),
        )
        snapshot = await asyncio.to_thread(loader.load, revision)
        if not snapshot.ok:
            problems = tuple(d.format() for d in snapshot.errors)
            return PlannedRef(ref=name, revision=revision, plan=None, diagnostics=problems)
        desired: dict[str, ObjectState] = {}
        for obj in snapshot.result.objects:
            state = state_from(obj)
            desired.setdefault(state.key, state)
        current = {
            key: applied
            for key, memo in load_memos(self.store).items()
            if (applied := memo.applied_state) is not None
        }
        changes = diff_states(desired, current)
        plan = plan_changes(
            changes, desired=desired, current=current, revision=revision, size=True
        )
        return PlannedRef(ref=name, revision=revision, plan=plan)

    def _resolve(self, name: str, watched: str, reconciler: Reconciler) -> tuple[GitSource, str]:
        """The source holding ``name`` and its commit; other branches are fetched."""
        own = reconciler.source
        if name == watched:
            head = own.local_head()
            if head is None:
                raise ViewError("the watched branch has not been fetched yet", reason="unavailable")
            return own, head
        with contextlib.suppress(GitSourceError):
            return own, own.resolve(name)
        source = self._plan_sources.get(name)
        if source is None:
            digest = hashlib.sha256(name.encode()).hexdigest()[:16]
            workdir = Path(self._daemon.config.state_dir) / "api" / "plan-refs" / digest
            source = GitSource(self._daemon.config.repo.url, name, workdir)
            self._plan_sources[name] = source
        try:
            return source, source.sync()
        except GitSourceError as exc:
            raise ViewError(f"ref {name!r}: {exc}", reason="not_found") from exc


def build_server(
    daemon: Daemon,
) -> tuple[ApiServer, DaemonAdapter, ApiMetrics, Callable[[Config], None]]:
    """The API server for ``daemon``, configured from its config, and the hook that
    applies a reloaded config to it (tokens, project role grants, write mode; the
    webhook secret's name and api.metrics_public are read from the daemon's config at each
    request)."""
    config = daemon.config

    def webhook_secret() -> str | None:
        secret_name = daemon.config.api.webhook_secret
        return daemon.resolver.resolve(secret_name) if secret_name else None

    def make_writer() -> GitWriter:
        return GitWriter(config.repo.url, workdir=Path(config.state_dir) / "api" / "writer")

    metrics = ApiMetrics()
    adapter = DaemonAdapter(daemon)
    mode = config.api.write_mode
    writes = SpecWrites(
        mode=mode,
        branch=config.repo.branch,
        writer=make_writer() if mode != "off" else None,
        roots=config.repo.paths,
        options=ValidateOptions(implicit_projects=config.projects.create_missing),
    )
    tokens = TokenBook(config.api.tokens, grants=config.api.project_roles)
    settings = ApiSettings(
        tokens=tokens,
        redactor=BodyRedactor(daemon.resolver.known_values),
        webhooks=WebhookGuard(secret=webhook_secret),
        metrics=metrics,
        writes=writes,
        metrics_public=lambda: daemon.config.api.metrics_public,
        shards=daemon.sharding,
    )

    def reloaded(new: Config) -> None:
        tokens.replace(new.api.tokens, grants=new.api.project_roles)
        writes.switch_mode(new.api.write_mode, writer=make_writer)

    app = create_app(adapter, settings)
    server = ApiServer(app, host=config.api.host, port=config.api.port)
    return server, adapter, metrics, reloaded


@contextlib.asynccontextmanager
async def serving(daemon: Daemon) -> AsyncIterator[ApiServer]:
    """Serve the API while the daemon runs (``Daemon(config, serve=serving)``)."""
    server, adapter, metrics, reloaded = build_server(daemon)
    metrics.baseline(adapter.store)
    source = f"{daemon.config.repo.url}#{daemon.config.repo.branch}"
    redact = Redactor(daemon.resolver.known_values)

    def observe(fetched: bool, duration_s: float) -> None:
        metrics.observe_cycle(duration_s=duration_s, source=redact.text(source), fetched=fetched)

    try:
        port = await server.start()
    except OSError as exc:
        raise ApiListenError(
            f"the HTTP API cannot listen on {daemon.config.api.listen}: {exc.strerror or exc}; "
            "choose another api.listen (or --listen)"
        ) from exc
    daemon.cycle_observers.append(observe)
    daemon.reload_observers.append(reloaded)
    log.info("API listening", extra={"host": daemon.config.api.host, "port": port})
    try:
        yield server
    finally:
        daemon.reload_observers.remove(reloaded)
        daemon.cycle_observers.remove(observe)
        await server.stop()
