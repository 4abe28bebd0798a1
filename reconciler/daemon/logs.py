"""Structured logs: one JSON object per line on stdout, with secrets redacted.

Under systemd, stdout goes to the journal; one object per line keeps every field
(``ts``, ``level``, ``logger``, ``msg`` and whatever ``extra=`` a caller passed) queryable
with ``journalctl -o cat | jq``. When stdout is the journal (``$JOURNAL_STREAM`` names it),
each line starts with a ``<N>`` syslog priority that journald strips and turns into the
entry's PRIORITY, so ``journalctl -p err`` works while the stored message stays pure JSON.

Secret values must never reach the journal (docs/operations.md, Secrets): every string of the record
is scrubbed of the values the secret resolver has handed out, and of the ``user:password@``
part of any URL, before it is written.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TextIO

REDACTED = "***"

# scheme://userinfo@ : the userinfo of a URL is a credential (token or user:password).
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@")
# scp-like remotes (``user:token@host:path``): a password before ``@host:`` is hidden too;
# a bare user (``git@host:path``) is no secret and stays readable.
_SCP_USERINFO = re.compile(r"(?<![\w.+~-])[\w.+~-]+:[^\s@/:]+@(?=[A-Za-z0-9][A-Za-z0-9.-]*:)")

_RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}

_SYSLOG_PRIORITY = (
    (logging.CRITICAL, 2),
    (logging.ERROR, 3),
    (logging.WARNING, 4),
    (logging.INFO, 6),
)

LEVELS = ("debug", "info", "warning", "error", "critical")


class Redactor:
    """Replaces known secret values and URL credentials in strings."""

    def __init__(self, known: Callable[[], Iterable[str]]) -> None:
        self._known = known
        # (values, pattern) swapped as one object, so no thread pairs new values with an
        # old pattern.
        self._compiled: tuple[frozenset[str], re.Pattern[str] | None] = (frozenset(), None)

    def _current(self) -> re.Pattern[str] | None:
        values = frozenset(v for v in self._known() if v)
        compiled = self._compiled
        if values != compiled[0]:
            ordered = sorted(values, key=len, reverse=True)
            pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
            compiled = (values, pattern)
            self._compiled = compiled
        return compiled[1]

    def text(self, value: str) -> str:
        """``value`` with secrets and URL credentials replaced by ``***``."""
        return _scrub(value, self._current())

    def value(self, value: Any) -> Any:
        """A JSON-ready copy of ``value`` with every string (keys too) redacted."""
        return _walk(value, self._current())


def _scrub(text: str, pattern: re.Pattern[str] | None) -> str:
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    return _SCP_USERINFO.sub(f"{REDACTED}@", _URL_USERINFO.sub(rf"\g<scheme>{REDACTED}@", text))


def _walk(value: Any, pattern: re.Pattern[str] | None) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return _scrub(value, pattern)
    if isinstance(value, Mapping):
        return {_scrub(str(k), pattern): _walk(v, pattern) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_walk(v, pattern) for v in value]
    return _scrub(str(value), pattern)


class JsonLinesFormatter(logging.Formatter):
    """Formats a record as one redacted JSON object (no trailing newline)."""

    def __init__(self, redactor: Redactor, *, syslog_prefix: bool = False) -> None:
        super().__init__()
        self._redactor = redactor
        self._syslog_prefix = syslog_prefix

    def format(self, record: logging.LogRecord) -> str:
        # ts, level and msg first, so a person reading raw lines sees them first.
        fields: dict[str, Any] = {
            "ts": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
            "logger": record.name,
        }
        fields.update(
            (key, value)
            for key, value in record.__dict__.items()
            if key not in _RECORD_FIELDS and key not in fields
        )
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        line = json.dumps(self._redactor.value(fields), ensure_ascii=False)
        if self._syslog_prefix:
            return f"<{_priority(record.levelno)}>{line}"
        return line


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal: time, level, message, then key=value fields."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        extra = {
            key: value for key, value in record.__dict__.items() if key not in _RECORD_FIELDS
        }
        shown = " ".join(
            f"{key}={json.dumps(value, ensure_ascii=False, default=str)}"
            for key, value in self._redactor.value(extra).items()
            if value is not None
        )
        message = self._redactor.value(record.getMessage())
        line = f"{stamp} {record.levelname.lower():7} {message}" + (f"  {shown}" if shown else "")
        if record.exc_info:
            line += "\n" + str(self._redactor.value(self.formatException(record.exc_info)))
        return line


# Libraries whose routine chatter is not the operator's business: watchfiles logs a "rust
# notify timeout" every few seconds at debug, picklescan a warning per non-pickle file.
_QUIET_LIBRARIES = {
    "watchfiles": logging.WARNING,
    "picklescan": logging.ERROR,
    "urllib3": logging.WARNING,
    "kubernetes": logging.WARNING,
    "huggingface_hub": logging.WARNING,
    "filelock": logging.WARNING,
    "asyncio": logging.WARNING,
}


def _priority(levelno: int) -> int:
    for threshold, priority in _SYSLOG_PRIORITY:
        if levelno >= threshold:
            return priority
    return 7


def stream_is_journal(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Whether ``stream`` is the journal connection systemd named in ``$JOURNAL_STREAM``."""
    expected = environ.get("JOURNAL_STREAM", "")
    if not expected:
        return False
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return expected == f"{info.st_dev}:{info.st_ino}"


def _level_number(level: str | int) -> int:
    if isinstance(level, int):
        return level
    if level.lower() not in LEVELS:
        raise ValueError(f"unknown log level {level!r}: use one of {', '.join(LEVELS)}")
    return int(logging.getLevelName(level.upper()))


_HANDLER_NAME = "reconciler-json"


def configure_logging(
    level: str | int,
    *,
    redact: Callable[[], Iterable[str]],
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    log_format: str = "auto",
) -> logging.Handler:
    """Route all logging to ``stream`` (stdout), redacting secrets.

    ``log_format`` is ``json`` (JSON lines), ``text`` (a line a person reads) or ``auto``:
    text when the stream is a terminal, JSON otherwise (the journal, a file, a pipe).

    ``redact`` returns the secret values to hide; it is called per record, so values
    resolved later are hidden too (``SecretResolver.known_values`` fits). Calling again
    (on reload) replaces the previous handler. Returns the installed handler.
    """
    level_number = _level_number(level)
    out = sys.stdout if stream is None else stream
    env: Mapping[str, str] = os.environ if environ is None else environ
    handler = logging.StreamHandler(out)
    handler.set_name(_HANDLER_NAME)
    if log_format == "auto":
        log_format = "text" if _is_terminal(out) else "json"
    if log_format == "text":
        handler.setFormatter(TextFormatter(Redactor(redact)))
    else:
        handler.setFormatter(
            JsonLinesFormatter(Redactor(redact), syslog_prefix=stream_is_journal(out, env))
        )
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == _HANDLER_NAME:
            root.removeHandler(old)
            old.close()
    root.addHandler(handler)
    root.setLevel(level_number)
    for name, floor in _QUIET_LIBRARIES.items():
        logging.getLogger(name).setLevel(max(floor, level_number))
    logging.captureWarnings(True)
    return handler


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (ValueError, AttributeError):
        return False
