"""JSON-lines logging: one object per line, extra fields kept, secrets never written."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.daemon.logs import configure_logging
from reconciler.drivers.secrets import SecretResolver

SECRET = "s3cr3t-token-value"


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


@pytest.fixture
def resolver(tmp_path: Path) -> SecretResolver:
    (tmp_path / "hf-token").write_text(SECRET + "\n")
    return SecretResolver(tmp_path, environ={"RECONCILER_SECRET_LATE": "late-secret-value"})


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_record_is_one_json_object_with_its_extra_fields() -> None:
    out = io.StringIO()
    configure_logging("info", redact=frozenset, stream=out, environ={})
    log = logging.getLogger("reconciler.test")
    log.info("applied %s", "deployment/llama", extra={"revision": "abc123", "steps": 3})
    log.debug("not shown at info")
    [record] = lines(out)
    assert record["level"] == "info"
    assert record["logger"] == "reconciler.test"
    assert record["msg"] == "applied deployment/llama"
    assert record["revision"] == "abc123"
    assert record["steps"] == 3
    assert record["ts"].endswith("+00:00")


def test_exceptions_are_kept_in_the_same_line() -> None:
    out = io.StringIO()
    configure_logging("debug", redact=frozenset, stream=out, environ={})
    try:
        raise RuntimeError("step failed\nsecond line")
    except RuntimeError:
        logging.getLogger("x").exception("chain stopped")
    assert len(out.getvalue().splitlines()) == 1
    [record] = lines(out)
    assert record["level"] == "error"
    assert "RuntimeError: step failed" in record["exc"]


def test_a_resolved_secret_never_appears_anywhere_in_the_output(
    resolver: SecretResolver,
) -> None:
    out = io.StringIO()
    configure_logging("debug", redact=resolver.known_values, stream=out, environ={})
    value = resolver.resolve("hf-token")
    log = logging.getLogger("reconciler.secret")
    log.info("token is %s", value)
    log.info(f"inline {value}", extra={"header": f"Bearer {value}", "nested": {"k": [value]}})
    log.warning("object", extra={"obj": Path(f"/tmp/{value}")})
    try:
        raise ValueError(f"bad token {value}")
    except ValueError:
        log.exception("failed")
    # resolved after logging was configured: still hidden
    late = resolver.resolve("late")
    log.error("late %s", late)
    text = out.getvalue()
    assert SECRET not in text
    assert late not in text
    assert text.count("***") >= 7
    records = lines(out)
    assert records[0]["msg"] == "token is ***"
    assert records[1]["header"] == "Bearer ***"
    assert records[1]["nested"] == {"k": ["***"]}


def test_credentials_inside_urls_are_redacted() -> None:
    out = io.StringIO()
    configure_logging("info", redact=frozenset, stream=out, environ={})
    logging.getLogger("git").info(
        "fetching https://x-access-token:ghp_abc123@github.com/org/repo.git",
        extra={"remote": "ssh://deploy@git.example.com/repo", "plain": "https://example.com/a@b"},
    )
    [record] = lines(out)
    assert record["msg"] == "fetching https://***@github.com/org/repo.git"
    assert record["remote"] == "ssh://***@git.example.com/repo"
    assert record["plain"] == "https://example.com/a@b"
    assert "ghp_abc123" not in out.getvalue()


def test_lines_carry_a_syslog_priority_when_stdout_is_the_journal(tmp_path: Path) -> None:
    target = tmp_path / "journal"
    with target.open("w+") as stream:
        info = os.fstat(stream.fileno())
        environ = {"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}
        configure_logging("info", redact=frozenset, stream=stream, environ=environ)
        logging.getLogger("j").error("boom")
        logging.getLogger("j").info("fine")
    first, second = target.read_text().splitlines()
    assert first.startswith("<3>{") and json.loads(first[3:])["msg"] == "boom"
    assert second.startswith("<6>{")


def test_a_journal_stream_for_another_file_adds_no_prefix(tmp_path: Path) -> None:
    out = io.StringIO()
    configure_logging("info", redact=frozenset, stream=out, environ={"JOURNAL_STREAM": "1:2"})
    logging.getLogger("j").info("plain")
    assert out.getvalue().startswith("{")


def test_configuring_again_replaces_the_handler_and_level() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("info", redact=frozenset, stream=first, environ={})
    configure_logging("warning", redact=frozenset, stream=second, environ={})
    logging.getLogger("r").info("dropped")
    logging.getLogger("r").warning("kept")
    assert first.getvalue() == ""
    assert [r["msg"] for r in lines(second)] == ["kept"]


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        configure_logging("loud", redact=frozenset, stream=io.StringIO(), environ={})


def test_default_stream_is_stdout_of_the_process(tmp_path: Path) -> None:
    (tmp_path / "t").write_text(SECRET)
    program = (
        "import logging, pathlib\n"
        "from reconciler.daemon.logs import configure_logging\n"
        "from reconciler.drivers.secrets import SecretResolver\n"
        f"r = SecretResolver(pathlib.Path({str(tmp_path)!r}), environ={{}})\n"
        "configure_logging('info', redact=r.known_values)\n"
        "logging.getLogger('main').info('started with %s', r.resolve('t'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    done = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert SECRET not in done.stdout + done.stderr
    assert json.loads(done.stdout)["msg"] == "started with ***"
