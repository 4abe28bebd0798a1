"""A real daemon, in this test's event loop, serving the API on an ephemeral loopback port.

The daemon watches a bare Git remote on disk with the state store in a temp dir; the API
is the one ``reconciler run`` serves (``Daemon(serve=serving)``), reached over real HTTP.
Tokens of every role are configured; ``ApiClient`` sends them like any client would.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from reconciler.api.app import ApiServer
from reconciler.api.daemon_view import serving
from reconciler.daemon.config import load_config
from reconciler.daemon.service import Daemon
from reconciler.drivers.sd_notify import SystemdNotifier
from tests.api.documented import AnswerCheck
from tests.conftest import GitRemote, MakeGitRemote
from tests.daemon.conftest import SEED

TOKENS = {
    "viewer": "tok-viewer-5d1c0a",
    "operator": "tok-operator-91b7e2",
    "editor": "tok-editor-0c44fa",
    "admin": "tok-admin-7e19d3",
}
WEBHOOK_SECRET = "whsec-3f9a1c77e2"
SECRET_VALUES = (*TOKENS.values(), WEBHOOK_SECRET, "sk-test-value-never-printed")

# Manual workflows take literal inputs here: the record_spec chain a manual Workflow gets
# stalls on ${{ param }} placeholders in its spec (reported to the daemon's owner).
MANUAL_WORKFLOW = """\
apiVersion: reconciler/v1
kind: Workflow
metadata: {name: train, labels: {team: research}}
spec:
  trigger: manual
  user_params: {epochs: 1, delay: 10ms}
  workflows:
    provision:
      nodes:
        - {id: prepare, type: noop, user_inputs: {delay: 10ms}}
        - {id: train, type: noop, user_inputs: {delay: 10ms}}
      edges:
        - {source: prepare, dest: train}
"""


def _slow_workflow(steps: int = 40, delay: str = "250ms") -> str:
    """A manual workflow of many short steps: a cancel lands at the next step boundary."""
    lines = [
        "apiVersion: reconciler/v1",
        "kind: Workflow",
        "metadata: {name: slow}",
        "spec:",
        "  trigger: manual",
        "  workflows:",
        "    provision:",
        "      nodes:",
    ]
    lines += [
        f"        - {{id: s{i}, type: noop, user_inputs: {{delay: {delay}}}}}" for i in range(steps)
    ]
    lines.append("      edges:")
    lines += [f"        - {{source: s{i - 1}, dest: s{i}}}" for i in range(1, steps)]
    return "\n".join(lines) + "\n"


SLOW_WORKFLOW = _slow_workflow()

API_SEED = {**SEED, "manual.yaml": MANUAL_WORKFLOW, "slow.yaml": SLOW_WORKFLOW}


async def wait_until(
    what: str, probe: Callable[[], Awaitable[Any]], *, timeout: float = 30.0
) -> Any:
    """Await ``probe`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@dataclasses.dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        import json

        return json.loads(self.text)


@dataclasses.dataclass
class ApiClient:
    """Real HTTP to the served API; every reply is kept for the secrets check, and checked
    against the OpenAPI document (a status, media type or body it does not give fails)."""

    base: str
    session: aiohttp.ClientSession
    replies: list[Reply] = dataclasses.field(default_factory=list)
    answers: AnswerCheck = dataclasses.field(default_factory=AnswerCheck)

    async def request(
        self,
        method: str,
        path: str,
        *,
        role: str | None = "viewer",
        token: str | None = None,
        json: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        bearer = token if token is not None else (TOKENS[role] if role else None)
        if bearer is not None:
            sent["Authorization"] = f"Bearer {bearer}"
        async with self.session.request(
            method, self.base + path, json=json, data=data, headers=sent
        ) as response:
            reply = Reply(response.status, dict(response.headers), await response.text())
        self.replies.append(reply)
        self.answers.check(
            method,
            path,
            status=reply.status,
            content_type=reply.headers.get("Content-Type", ""),
            text=reply.text,
            sent_json=json,
            sent_json_given=json is not None,
        )
        return reply

    async def get(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("PUT", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("DELETE", path, **kwargs)


@dataclasses.dataclass
class RunningDaemon:
    daemon: Daemon
    server: ApiServer
    client: ApiClient
    remote: GitRemote
    state_dir: Path


def write_api_config(
    path: Path,
    *,
    remote: Path,
    state_dir: Path,
    secrets_dir: Path,
    tokens: bool = True,
    webhook_secret: bool = True,
    write_mode: str = "commit",
    api_extra: dict[str, Any] | None = None,
) -> Path:
    api: dict[str, Any] = {"listen": "127.0.0.1:0", "write_mode": write_mode}
    if tokens:
        api["tokens"] = [
            {"name": f"{role}-bot", "role": role, "sha256": hashlib.sha256(t.encode()).hexdigest()}
            for role, t in TOKENS.items()
        ]
    for key, value in (api_extra or {}).items():  # more tokens, api.project_roles
        api[key] = api.get(key, []) + value if key == "tokens" else value
    if webhook_secret:
        api["webhook_secret"] = "webhook-hmac"
    config = {
        "repo": {"url": str(remote), "branch": "main", "poll_interval": "60s"},
        "resync_interval": "10m",
        "status": {"branch": "reconciler/status"},
        "state_dir": str(state_dir),
        "secrets_dir": str(secrets_dir),
        "api": api,
    }
    path.write_text(yaml.safe_dump(config))
    return path


StartApi = Callable[..., Awaitable[RunningDaemon]]


@pytest.fixture
async def start_api(tmp_path: Path, make_git_remote: MakeGitRemote) -> AsyncIterator[StartApi]:
    """Start a daemon with the API; stopped (and its task awaited) at the end."""
    running: list[tuple[Daemon, asyncio.Task[int], aiohttp.ClientSession]] = []

    async def start(
        *,
        tokens: bool = True,
        webhook_secret: bool = True,
        files: dict[str, str] | None = None,
        write_mode: str = "commit",
        config: dict[str, Any] | None = None,
        api_extra: dict[str, Any] | None = None,
    ) -> RunningDaemon:
        """``config``: more top-level sections of the daemon config (e.g. notifications)."""
        remote = make_git_remote(files=files or API_SEED)
        secrets = tmp_path / "secrets"
        secrets.mkdir(exist_ok=True)
        (secrets / "openai-api-key").write_text("sk-test-value-never-printed\n")
        (secrets / "webhook-hmac").write_text(WEBHOOK_SECRET + "\n")
        state = tmp_path / "state"
        config_file = tmp_path / "reconciler.yaml"
        path = write_api_config(
            config_file,
            remote=remote.path,
            state_dir=state,
            secrets_dir=secrets,
            tokens=tokens,
            webhook_secret=webhook_secret,
            write_mode=write_mode,
            api_extra=api_extra,
        )
        if config:
            path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **config}))
        loaded = load_config(path)
        servers: list[ApiServer] = []

        @contextlib.asynccontextmanager
        async def recording(daemon: Daemon) -> AsyncIterator[ApiServer]:
            async with serving(daemon) as server:
                servers.append(server)
                yield server

        daemon = Daemon(
            loaded,
            config_file=config_file,
            serve=recording,
            notifier=SystemdNotifier(environ={}),
        )
        task = asyncio.create_task(daemon.run())
        session = aiohttp.ClientSession()
        running.append((daemon, task, session))

        async def up() -> bool:
            if task.done():
                task.result()
            return bool(servers) and daemon.ready

        await wait_until("the daemon's first load with the API up", up)
        server = servers[0]
        client = ApiClient(f"http://127.0.0.1:{server.port}", session)
        return RunningDaemon(daemon, server, client, remote, state)

    yield start
    for daemon, task, session in running:
        await session.close()
        # Twice: the second request stops running steps at once instead of giving them
        # the shutdown grace (a test that leaves a 60 s step running would wait 20 s).
        daemon.request_stop()
        daemon.request_stop()
        await asyncio.wait_for(task, timeout=30)
