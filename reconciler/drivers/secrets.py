"""Resolving secrets by name on the daemon's host, and remembering them for redaction.

Specs and the daemon config only ever name a secret (``secret: openai-api-key``); the
value is looked up here, in the order docs/operations.md "Secrets" gives: systemd's credentials
directory (``LoadCredential=``), then the configured secrets directory, then the
environment variable ``RECONCILER_SECRET_<NAME>``. Every value handed out is remembered so
the logger can replace it with ``***`` wherever it would otherwise be printed.

One lookup decides everything: ``lookup`` gives a verdict (found, not found, unreadable)
and ``resolve`` and ``exists`` are both read from it, so a folder, an unreadable file or a
binary file in place of a secret is never "present" to one caller and an error to another.
"""

from __future__ import annotations

import contextlib
import enum
import os
import re
import stat
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_PREFIX = "RECONCILER_SECRET_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


class SecretError(Exception):
    """Base of every secret problem; messages name the secret, never its value."""


class InvalidSecretName(SecretError, ValueError):
    """A name that could escape the secret folders or cannot name a file."""


class SecretNotFound(SecretError, LookupError):
    """No source holds the secret; the message lists every place that was looked at."""

    def __init__(self, name: str, places: list[str]) -> None:
        self.name = name
        self.places = places
        super().__init__(
            f"secret {name!r} not found; looked in: {'; '.join(places)}. "
            "Provide it in one of these places (docs/operations.md, Secrets)."
        )


class SecretNotStored(SecretError):
    """A value given to the daemon (an API write) could not be put in the secrets dir."""


class SecretUnreadable(SecretError):
    """The secret exists as a file that cannot be read (permissions, not a file, encoding)."""


class SecretState(enum.Enum):
    """What one lookup of a secret found."""

    FOUND = "found"
    NOT_FOUND = "not_found"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class SecretVerdict:
    """The outcome of looking a secret up, without its value.

    ``where`` is the file or environment variable that holds it (or the file that cannot
    be read); ``problem`` is the message a person can act on, empty when it was found.
    """

    name: str
    state: SecretState
    where: str
    problem: str

    @property
    def found(self) -> bool:
        return self.state is SecretState.FOUND


def validate_secret_name(name: str) -> str:
    """Return ``name`` if it is a usable secret name, else raise InvalidSecretName."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise InvalidSecretName(
            f"invalid secret name {name!r}: use letters, digits, '.', '_' and '-' "
            "(starting with a letter or digit, no '..', no '/')"
        )
    return name


def env_var_for(name: str) -> str:
    """The environment variable that may hold secret ``name`` (upper case, '-' as '_')."""
    return ENV_PREFIX + validate_secret_name(name).upper().replace("-", "_")


def _strip_one_newline(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text


class SecretResolver:
    """Looks secrets up by name; see the module docstring for the order.

    ``credentials_directory`` defaults to ``$CREDENTIALS_DIRECTORY`` of ``environ`` (which
    defaults to the process environment); ``secrets_dir`` None skips the secrets folder.
    """

    def __init__(
        self,
        secrets_dir: Path | None,
        *,
        credentials_directory: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        if credentials_directory is None:
            credentials_directory = self._environ.get("CREDENTIALS_DIRECTORY") or None
        self._credentials_dir = Path(credentials_directory) if credentials_directory else None
        self._secrets_dir = secrets_dir
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def _folders(self) -> list[Path]:
        return [d for d in (self._credentials_dir, self._secrets_dir) if d is not None]

    def _read_file(self, name: str, path: Path) -> str | None:
        """The text of ``path``; None when nothing is there; SecretUnreadable otherwise."""
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SecretUnreadable(
                f"secret {name!r} at {path} cannot be examined: {exc.strerror or exc}; "
                "check the permissions of its folder for the daemon's user"
            ) from exc
        if not stat.S_ISREG(mode):  # a folder, a pipe that would block, a device...
            raise SecretUnreadable(
                f"secret {name!r} exists at {path} but is not a regular file; "
                "store the secret as a plain text file"
            )
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # removed between the two calls
            return None
        except OSError as exc:
            raise SecretUnreadable(
                f"secret {name!r} exists at {path} but cannot be read: {exc.strerror or exc}; "
                "check its type and permissions for the daemon's user"
            ) from exc
        try:
            return _strip_one_newline(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise SecretUnreadable(
                f"secret {name!r} at {path} is not UTF-8 text; store it as text (e.g. base64)"
            ) from exc

    def _find(self, name: str) -> tuple[SecretVerdict, str | None]:
        """The one search every public method uses: a verdict, and the value when found."""
        validate_secret_name(name)
        for folder in self._folders():
            path = folder / name
            try:
                value = self._read_file(name, path)
            except SecretUnreadable as exc:
                return SecretVerdict(name, SecretState.UNREADABLE, str(path), str(exc)), None
            if value is not None:
                return SecretVerdict(name, SecretState.FOUND, str(path), ""), value
        variable = env_var_for(name)
        value = self._environ.get(variable)
        if value is not None:
            return SecretVerdict(name, SecretState.FOUND, f"${variable}", ""), value
        missing = SecretNotFound(name, self.places(name))
        return SecretVerdict(name, SecretState.NOT_FOUND, "", str(missing)), None

    def lookup(self, name: str) -> SecretVerdict:
        """Whether ``name`` resolves, without remembering its value; never raises for a
        missing or unreadable secret (InvalidSecretName still raises for a bad name)."""
        verdict, _ = self._find(name)
        return verdict

    def resolve(self, name: str) -> str:
        """The value of secret ``name``; raise SecretNotFound or SecretUnreadable."""
        verdict, value = self._find(name)
        if verdict.state is SecretState.NOT_FOUND:
            raise SecretNotFound(name, self.places(name))
        if verdict.state is SecretState.UNREADABLE or value is None:
            raise SecretUnreadable(verdict.problem)
        if value:
            with self._lock:
                self._known.add(value)
        return value

    def exists(self, name: str) -> bool:
        """Whether ``resolve(name)`` would return a value (the same lookup decides)."""
        return self.lookup(name).found

    def places(self, name: str) -> list[str]:
        """Human-readable list of the places ``name`` is looked up, in order."""
        validate_secret_name(name)
        if self._credentials_dir is not None:
            first = f"{self._credentials_dir / name} ($CREDENTIALS_DIRECTORY)"
        else:
            first = f"$CREDENTIALS_DIRECTORY/{name} (CREDENTIALS_DIRECTORY is not set)"
        if self._secrets_dir is not None:
            second = f"{self._secrets_dir / name} (secrets_dir)"
        else:
            second = "secrets_dir (not configured)"
        return [first, second, f"environment variable {env_var_for(name)}"]

    def store(self, name: str, value: str, *, replace: bool = False) -> Path:
        """Write ``value`` as secret ``name`` in the secrets dir (mode 0600, atomically:
        a reader sees the old file or the new one, never half of one); the path.

        Used where a value reaches the daemon through its API (a kubeconfig upload, a
        credential inline in a template), so that only the name ever goes to Git. Refuses
        to replace a different existing value unless ``replace``; SecretNotStored says why.
        """
        validate_secret_name(name)
        folder = self._secrets_dir
        if folder is None:
            raise SecretNotStored(
                f"secret {name!r} cannot be stored: no secrets_dir is configured"
            )
        path = folder / name
        if not replace:
            verdict, current = self._find(name)
            same = current == _strip_one_newline(value)  # as a lookup would read it back
            if verdict.found and verdict.where == str(path) and not same:
                raise SecretNotStored(
                    f"secret {name!r} already exists at {path} with another value; "
                    "choose another name or remove the file first"
                )
        temporary = folder / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(value)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            raise SecretNotStored(
                f"secret {name!r} cannot be written to {folder}: {exc.strerror or exc}"
            ) from exc
        if value:
            with self._lock:
                self._known.add(value)
        return path

    def remove_stored(self, prefix: str, *, exact: bool = False) -> list[str]:
        """Delete every secret in the secrets dir whose name starts with ``prefix`` (is
        ``prefix``, with ``exact``): the values the API stored for one workflow or draft,
        which nothing names any more; the names removed. Only the secrets dir is touched:
        $CREDENTIALS_DIRECTORY and the environment belong to the host. A value stays
        known for redaction."""
        folder = self._secrets_dir
        if folder is None or not prefix or "/" in prefix or prefix.startswith("."):
            return []
        try:
            found = sorted(
                p
                for p in folder.iterdir()
                if (p.name == prefix if exact else p.name.startswith(prefix))
            )
        except OSError:
            return []
        removed: list[str] = []
        for path in found:
            if path.is_file() and not path.is_symlink():
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed.append(path.name)
        return removed

    def known_values(self) -> frozenset[str]:
        """Every non-empty value resolved so far, for log redaction."""
        with self._lock:
            return frozenset(self._known)
