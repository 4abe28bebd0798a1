"""A Credential is Ready only when its secret can be used, Stalled with the reason otherwise.

``check_secret`` runs with the daemon's real SecretResolver over real files: a folder, a
binary file or a file the daemon may not read in place of the secret stalls the chain as
SecretUnreadable, a missing one as SecretNotFound, and only a readable text file is Done.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from reconciler.drivers.secrets import SecretResolver
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext, StepLog, StepServices
from reconciler.steps import bookkeeping


def _check(resolver: SecretResolver, name: str) -> outcomes.Outcome:
    ctx = StepContext(
        execution_id="e1",
        node_id="check",
        step_type="check_secret",
        inputs={"secret": name},
        attempt=1,
        params={},
        object_key="Credential/openai-prod",
        revision="0" * 40,
        cluster=None,
        log=StepLog(prefix="test check_secret"),
        services=StepServices(extra={bookkeeping.SECRETS_SERVICE: resolver}),
    )
    return asyncio.run(bookkeeping.check_secret(ctx))


@pytest.mark.parametrize("kind", ["folder", "binary", "unreadable"])
def test_a_secret_that_cannot_be_used_stalls_as_unreadable(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "openai-api-key"
    if kind == "folder":
        target.mkdir()
    elif kind == "binary":
        target.write_bytes(b"\xff\xfe\x00sk-binary")
    else:
        target.write_text("sk-unreadable-value")
        target.chmod(0)
        if os.access(target, os.R_OK):
            pytest.skip("running as a user that can read a file with mode 000")
    outcome = _check(SecretResolver(tmp_path, environ={}), "openai-api-key")
    assert isinstance(outcome, outcomes.Stalled), outcome
    assert outcome.reason.startswith("SecretUnreadable: "), outcome.reason
    assert str(target) in outcome.reason
    assert "sk-" not in outcome.reason


def test_a_missing_secret_stalls_as_not_found_naming_every_place(tmp_path: Path) -> None:
    outcome = _check(SecretResolver(tmp_path, environ={}), "openai-api-key")
    assert isinstance(outcome, outcomes.Stalled), outcome
    assert outcome.reason.startswith("SecretNotFound: ")
    assert str(tmp_path / "openai-api-key") in outcome.reason
    assert "RECONCILER_SECRET_OPENAI_API_KEY" in outcome.reason


def test_a_readable_text_secret_is_done_and_its_value_stays_unremembered(tmp_path: Path) -> None:
    (tmp_path / "openai-api-key").write_text("sk-readable-value\n")
    resolver = SecretResolver(tmp_path, environ={})
    assert isinstance(_check(resolver, "openai-api-key"), outcomes.Done)
    assert resolver.known_values() == frozenset()
