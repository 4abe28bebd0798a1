"""Everything the daemon does for Workflows beyond running the chains plan gives it.

Schedules (reconciler.daemon.schedules), notifications (reconciler.daemon.workflow_notify
over the durable outbox), the step logs each keeps (reconciler.daemon.workflow_logs), the
expansion of a removed Workflow's undo and the provisioning fields of its status
(reconciler.daemon.provisioning), the cluster each run targets
(reconciler.daemon.workflow_targets). The reconciler holds one of these
and calls it at a few points: a chain about to be submitted (a prune of what a Workflow
owns is emptied there), an execution moving or ending, a Workflow's status being
written; the service starts it and closes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from reconciler.core.chains import Chain
from reconciler.core.diff import ObjectState
from reconciler.core.durations import parse_duration
from reconciler.core.status import Verdict
from reconciler.daemon import provisioning
from reconciler.daemon.config import NotificationsConfig, SmtpConfig
from reconciler.daemon.schedules import Clock, WorkflowScheduler, utc_clock
from reconciler.daemon.workflow_logs import StepLogKeeper
from reconciler.daemon.workflow_notify import WorkflowNotifier
from reconciler.daemon.workflow_targets import RunTargets
from reconciler.drivers.http_client import HttpClient
from reconciler.drivers.notify import EmailSender, SmtpServer, WebhookSender
from reconciler.engine.executor import Executor
from reconciler.engine.notify_channels import ChannelDefaults
from reconciler.engine.notify_outbox import NotificationOutbox, SecretLookup
from reconciler.engine.records import ExecutionRecord
from reconciler.engine.store import Store
from reconciler.steps.registry import StepRegistry


class WorkflowLifecycle:
    """The Workflow hooks of one daemon; ``run()`` while it runs, ``close()`` after the
    executor has stopped (executions ending in the grace period still notify)."""

    def __init__(
        self,
        *,
        store: Store,
        executor: Executor,
        registry: StepRegistry,
        desired: Callable[[], Mapping[str, ObjectState]],
        revision: Callable[[], str | None],
        on_change: Callable[[str], None],
        loaded: Callable[[], bool],
        secrets: SecretLookup | None = None,
        http: HttpClient | None = None,
        clock: Clock = utc_clock,
        notifications: NotificationsConfig | None = None,
    ) -> None:
        self._store = store
        self._desired = desired
        self.targets = RunTargets(store=store, desired=desired)
        self.scheduler = WorkflowScheduler(
            store=store,
            executor=executor,
            registry=registry,
            desired=desired,
            revision=revision,
            on_change=on_change,
            loaded=loaded,
            clock=clock,
            prepare=self.targets.target,
        )
        self._sender = WebhookSender(client=http)
        config = notifications or NotificationsConfig()
        smtp = config.smtp
        defaults = config.defaults
        self.outbox = NotificationOutbox(
            store.path,
            sender=self._sender,
            slack=self._sender,
            mailer=EmailSender(_smtp_server(smtp)) if smtp is not None else None,
            password_secret=smtp.password_secret if smtp is not None else None,
            defaults=ChannelDefaults(
                webhook=defaults.webhook,
                webhook_secret=defaults.webhook_secret,
                slack_webhook_secret=defaults.slack_webhook_secret,
                email_to=tuple(defaults.email_to),
            ),
            secrets=secrets,
        )
        self._notifier = WorkflowNotifier(outbox=self.outbox, store=store, desired=desired)
        self._logs = StepLogKeeper(store=store, desired=desired)

    async def run(self, *, stop: asyncio.Event) -> None:
        """Deliver notifications in the background and run the schedules until stopped."""
        self.outbox.start()
        await self.scheduler.run(stop=stop)

    async def close(self) -> None:
        await self.outbox.close()
        await self._sender.close()

    # -- reconciler hooks ------------------------------------------------------------------

    def expand(self, chain: Chain) -> Chain:
        """A chain as it is to be submitted: a Workflow's run aimed at a cluster of its
        environments; a removed Workflow's undo, spelled out; the prune of a Deployment
        or Model a Workflow made and owns, emptied."""
        chain = self.targets.target(chain)
        if provisioning.may_be_owned(chain):  # only then: the names cost a store scan
            chain = provisioning.keep_owned(chain, self._store, self._workflow_names())
        return provisioning.expand_undo(chain, self._store)

    def _workflow_names(self) -> list[str]:
        """Workflows in Git and those still recorded (removed, their undo not yet done)."""
        names = {state.name for state in self._desired().values() if state.kind == "Workflow"}
        names.update(record.name for record in self._store.list_objects(kind="Workflow"))
        return sorted(names)

    def on_progress(self, key: str) -> None:
        self._notifier.on_progress(key)

    def on_finished(self, record: ExecutionRecord) -> None:
        self._logs.on_finished(record)
        self._notifier.on_finished(record)

    def status(self, name: str, fields: dict[str, Any]) -> Verdict | None:
        """Adds a Workflow's schedule and provisioning fields to ``fields``; a verdict
        that overrides the execution's when the schedule cannot be used."""
        fields.update(self.scheduler.status_fields(name))
        fields.update(provisioning.status_fields(self._store, name))
        return self.scheduler.stalled(name)


def _smtp_server(smtp: SmtpConfig) -> SmtpServer:
    return SmtpServer(
        host=smtp.host,
        port=smtp.port,
        sender=smtp.sender,
        security=smtp.security,
        username=smtp.username,
        timeout_s=parse_duration(smtp.timeout),
    )
