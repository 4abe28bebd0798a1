"""Log redaction of remote URLs: https, ssh:// and scp-like ``user:password@host:path``.

A remote is often written scp-style (``deploy:TOKEN@git.example.com:org/state.git``);
the log line keeps the host and path a person needs and hides only the credential, while
``git@host:path`` (a bare user, no secret) is left readable.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from reconciler.daemon.logs import configure_logging


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.mark.parametrize(
    ("remote", "shown"),
    [
        ("https://bot:ghp_tok3n@github.com/o/r.git", "https://***@github.com/o/r.git"),
        ("ssh://deploy:ssh-pa55@git.example.com/o/r.git", "ssh://***@git.example.com/o/r.git"),
        ("deploy:scp-pa55@git.example.com:o/r.git", "***@git.example.com:o/r.git"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
    ],
)
def test_the_credential_of_every_remote_form_is_hidden(remote: str, shown: str) -> None:
    out = io.StringIO()
    configure_logging("info", redact=frozenset, stream=out, environ={})
    logging.getLogger("reconciler.daemon").warning(
        f"source unavailable: git fetch {remote} failed", extra={"url": remote, "urls": [remote]}
    )
    (record,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert record["msg"] == f"source unavailable: git fetch {shown} failed"
    assert record["url"] == shown and record["urls"] == [shown]
    for secret in ("ghp_tok3n", "ssh-pa55", "scp-pa55"):
        assert secret not in out.getvalue()
