"""schemathesis against /api/v1/openapi.json: generated requests to every operation of a
real daemon (a subprocess on a bare Git remote) never get a 5xx, and every response
matches the document (status, content type, headers, body schema).

schemathesis is not a project dependency yet; without it this module is skipped.
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import positive_data_acceptance  # noqa: E402

from reconciler.api import openapi  # noqa: E402
from tests.api.conftest import API_SEED, TOKENS, write_api_config  # noqa: E402
from tests.daemon.harness import DaemonProcess, wait_for  # noqa: E402

DOCUMENT = openapi.document()

PATHS = sorted(DOCUMENT["paths"])
"""One test per path, its operations as subtests. Each builds its Hypothesis tests
(explicit examples, coverage cases) when it runs, in the worker that runs it:
``schema.parametrize()`` built all 54 at collection, in every pytest-xdist worker, ~7 s of
CPU each."""

VALIDATED_AS_SPECS = {
    ("POST", "/api/workflows"),
    ("PUT", "/api/workflows/{workflowId}"),
    ("POST", "/_plugins/_flow_framework/workflow"),
    ("PUT", "/_plugins/_flow_framework/workflow/{workflow_id}"),
    ("POST", "/clusters/clusters"),
}
"""Operations whose bodies become specs checked by validate (and, for add-cluster, a
kubeconfig read as one), not only by their schema."""


def _git(cwd: Path, *args: str, env: dict[str, str]) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A daemon serving the API on a remote seeded with the API tests' specs."""
    top = tmp_path_factory.mktemp("conformance")
    empty = top / "gitconfig"
    empty.write_text("")
    env = {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": str(empty),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "Test Writer",
        "GIT_AUTHOR_EMAIL": "writer@example.test",
        "GIT_COMMITTER_NAME": "Test Writer",
        "GIT_COMMITTER_EMAIL": "writer@example.test",
    }
    env.pop("NOTIFY_SOCKET", None)
    remote = top / "remote.git"
    _git(top, "init", "--quiet", "--bare", "--initial-branch=main", str(remote), env=env)
    work = top / "work"
    _git(top, "clone", "--quiet", str(remote), str(work), env=env)
    for name, text in API_SEED.items():
        (work / name).write_text(text)
    _git(work, "add", "-A", env=env)
    _git(work, "commit", "--quiet", "-m", "Seed specs", env=env)
    _git(work, "push", "--quiet", "origin", "HEAD:refs/heads/main", env=env)
    secrets = top / "secrets"
    secrets.mkdir()
    (secrets / "webhook-hmac").write_text("whsec-3f9a1c77e2\n")
    (secrets / "openai-api-key").write_text("sk-test-value-never-printed\n")
    state = top / "state"
    config = write_api_config(
        top / "reconciler.yaml", remote=remote, state_dir=state, secrets_dir=secrets
    )
    daemon = DaemonProcess(config, state, top / "daemon.log", env).start()

    def port() -> int | None:
        for record in daemon.logs():
            if record.get("msg") == "API listening":
                return int(record["port"])
        assert daemon.alive(), daemon.log_text()
        return None

    try:
        base = f"http://127.0.0.1:{wait_for('the API to listen', port)}"
        wait_for("the daemon to be ready", lambda: _ready(base))
        yield base
    finally:
        daemon.stop()
        problems = [r for r in daemon.logs() if r.get("level") in ("error", "critical")]
        assert not problems, yaml.safe_dump(problems)


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _drops_authorization(case: Any) -> bool:
    """Whether schemathesis made this case negative by leaving the bearer header out."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_negative:
        return False
    data = getattr(meta.phase, "data", None)
    if getattr(data, "parameter", None) == "Authorization":
        return True
    for mutation in getattr(data, "mutations", None) or ():
        was = mutation.original_value
        names = was if isinstance(was, list) else [was]
        if "required" in mutation.keywords and "Authorization" in names:
            return True
    return False


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    """One keep-alive session for all requests. ``trust_env`` is off: the daemon is on
    loopback, and requests would otherwise scan the whole environment for proxy and
    certificate settings before each of the thousands of requests."""
    with requests.Session() as http:
        http.trust_env = False
        yield http


@pytest.fixture
def one_path(request: pytest.FixtureRequest) -> Any:
    """The document narrowed to the path this test was parametrized with: all of its
    operations (the Allow header of a 405 is checked against them), components whole."""
    # schemathesis 4.32's lazy tests name their subtests from ``Node._nodeid``, an
    # attribute pytest 9 no longer has (``nodeid`` is a property now): give it one.
    request.node._nodeid = request.node.nodeid
    path = request.param
    return schemathesis.openapi.from_dict({**DOCUMENT, "paths": {path: DOCUMENT["paths"][path]}})


@pytest.mark.parametrize("one_path", PATHS, indirect=True)
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@schemathesis.pytest.from_fixture("one_path").parametrize()
def test_every_response_matches_the_document(
    case: Any, served: str, session: requests.Session
) -> None:
    excluded = []
    if (case.method.upper(), case.path) in VALIDATED_AS_SPECS:
        # A body of the documented shape can still be a spec validate refuses (an edge to
        # a node that does not exist, a graph with a cycle): that is a 422 naming the
        # problem, which no JSON Schema can foresee. Every other check still applies.
        excluded.append(positive_data_acceptance)
    # The admin token rides on every request except one whose negative mutation is the
    # missing Authorization header itself: that one goes without, and must be refused.
    headers = {} if _drops_authorization(case) else {"Authorization": f"Bearer {TOKENS['admin']}"}
    case.call_and_validate(
        base_url=served,
        session=session,
        headers=headers,
        timeout=30,
        excluded_checks=excluded,
    )
