"""The hugging_face source, through the huggingface_hub client.

Resolves a revision (branch, tag or sha) to the commit sha it points at now, lists the
repo's files with sizes (and the sha256 of LFS files), and reads what the hub knows
without a download: license, gated flag, pipeline tag, and the parameter count and dtype
of its safetensors metadata. ``config.json`` is small and holds what sizing needs, so it
is fetched; weights are fetched into the cache only when :func:`download` is called.

``HF_ENDPOINT`` is honoured (read when called, so a mirror or a test's loopback hub set
after import still counts). The token is passed in, never read from disk or the
environment. The client's errors come out as ours: GatedRepoError, UnauthorizedError,
SourceNotFoundError, SourceUnavailableError.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import huggingface_hub
from huggingface_hub import errors as hf_errors

from reconciler.drivers.models import local_metadata, safetensors_header
from reconciler.drivers.models.errors import (
    GatedRepoError,
    ModelSourceError,
    SourceNotFoundError,
    SourceUnavailableError,
    UnauthorizedError,
)

DEFAULT_ENDPOINT = "https://huggingface.co"
CONFIG_FILE = "config.json"
_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True)
class HubFile:
    path: str
    size: int | None
    sha256: str | None

    def as_status(self) -> dict[str, object]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


@dataclasses.dataclass(frozen=True)
class RepoDescription:
    """What the hub says of one repo at one commit."""

    repo_id: str
    commit_sha: str
    files: tuple[HubFile, ...]
    license: str | None
    gated: bool
    private: bool
    pipeline_tag: str | None
    parameters: int | None
    dtype: str | None
    config: dict[str, Any]

    @property
    def size_bytes(self) -> int:
        return sum(f.size or 0 for f in self.files)


def endpoint_from_env() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def _status_of(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


@contextmanager
def _our_errors(repo_id: str, revision: str) -> Iterator[None]:
    where = f"Hugging Face repo {repo_id!r} at revision {revision!r}"
    try:
        yield
    except hf_errors.GatedRepoError as exc:
        raise GatedRepoError(
            f"{where} is gated: accept its conditions on the hub with the account whose "
            "token the Credential holds, or give the Model a credential"
        ) from exc
    except hf_errors.RevisionNotFoundError as exc:
        raise SourceNotFoundError(f"{where}: the revision does not exist") from exc
    except hf_errors.RepositoryNotFoundError as exc:
        if _status_of(exc) == 401:
            raise UnauthorizedError(
                f"{where} answered 401: it does not exist, or it is private and the token "
                "(if any) does not grant access"
            ) from exc
        raise SourceNotFoundError(f"{where} does not exist (RepoNotFound)") from exc
    except hf_errors.RemoteEntryNotFoundError as exc:
        raise SourceNotFoundError(f"{where}: a listed file is missing: {exc}") from exc
    except hf_errors.HfHubHTTPError as exc:
        status = _status_of(exc)
        if status in (401, 403):
            message = f"{where} answered {status}: the token is not accepted"
            raise UnauthorizedError(message) from exc
        raise SourceUnavailableError(f"{where}: the hub answered {status}; will retry") from exc
    except httpx2.HTTPError as exc:
        raise SourceUnavailableError(f"{where}: the hub cannot be reached: {exc}") from exc
    except (OSError, ValueError) as exc:
        if isinstance(exc, ModelSourceError):
            raise
        raise SourceUnavailableError(f"{where}: {type(exc).__name__}: {exc}") from exc


def _call(repo_id: str, revision: str, action: Callable[[], _T]) -> _T:
    with _our_errors(repo_id, revision):
        return action()


def _hub_dtype(parameters: dict[str, int]) -> str | None:
    return safetensors_header.dominant_dtype(parameters)


def describe_repo(
    *,
    repo_id: str,
    revision: str,
    token: str | None,
    cache_dir: Path,
    endpoint: str | None = None,
    timeout_s: float = 30.0,
) -> RepoDescription:
    """Resolve ``revision`` and describe the repo at that commit (config.json fetched)."""
    base = endpoint or endpoint_from_env()
    api = huggingface_hub.HfApi(endpoint=base, token=token or False)
    info = _call(
        repo_id,
        revision,
        lambda: api.model_info(repo_id, revision=revision, files_metadata=True, timeout=timeout_s),
    )
    if not info.sha:
        raise SourceUnavailableError(f"the hub gave no commit sha for {repo_id}@{revision}")
    files = tuple(
        HubFile(
            path=s.rfilename,
            size=s.lfs.size if s.lfs is not None else s.size,
            sha256=s.lfs.sha256 if s.lfs is not None else None,
        )
        for s in sorted(info.siblings or [], key=lambda s: s.rfilename)
    )
    parameters = dtype = None
    if info.safetensors is not None:
        parameters = int(info.safetensors.total) or None
        dtype = _hub_dtype(dict(info.safetensors.parameters))
    config: dict[str, Any] = {}
    if any(f.path == CONFIG_FILE for f in files):
        local = download(
            repo_id=repo_id,
            commit_sha=info.sha,
            paths=[CONFIG_FILE],
            token=token,
            cache_dir=cache_dir,
            endpoint=base,
        )
        config = local_metadata.read_config(local / CONFIG_FILE)
    card = info.card_data
    license_name = getattr(card, "license", None) if card is not None else None
    return RepoDescription(
        repo_id=repo_id,
        commit_sha=info.sha,
        files=files,
        license=str(license_name) if license_name else None,
        gated=bool(info.gated),
        private=bool(info.private),
        pipeline_tag=info.pipeline_tag,
        parameters=parameters,
        dtype=dtype or local_metadata.dtype_of_config(config),
        config=config,
    )


def download(
    *,
    repo_id: str,
    commit_sha: str,
    paths: Sequence[str],
    token: str | None,
    cache_dir: Path,
    endpoint: str | None = None,
) -> Path:
    """Fetch ``paths`` at ``commit_sha`` into the hub cache layout; return the snapshot folder."""
    base = endpoint or endpoint_from_env()
    snapshot: Path | None = None
    for path in paths:
        fetch_one = functools.partial(
            huggingface_hub.hf_hub_download,
            repo_id,
            path,
            revision=commit_sha,
            cache_dir=cache_dir,
            token=token or False,
            endpoint=base,
        )
        local = _call(repo_id, commit_sha, fetch_one)
        snapshot = Path(local).parents[len(Path(path).parts) - 1]
    if snapshot is None:
        snapshot = snapshot_folder(repo_id=repo_id, commit_sha=commit_sha, cache_dir=cache_dir)
        snapshot.mkdir(parents=True, exist_ok=True)
    return snapshot


def snapshot_folder(*, repo_id: str, commit_sha: str, cache_dir: Path) -> Path:
    """Where the hub cache keeps the files of ``repo_id`` at ``commit_sha``."""
    folder = "models--" + repo_id.replace("/", "--")
    return cache_dir / folder / "snapshots" / commit_sha


def delete_revision(*, cache_dir: Path, snapshot: Path) -> bool:
    """Remove one downloaded commit from the hub cache (``snapshot``: its folder under
    ``cache_dir``), with the blobs no other cached commit of the repo still uses;
    huggingface_hub's own cache manager decides what is shared. Only that repo is looked
    at (a commit hash names one revision per repo, not one in the whole cache). False
    when it is not in the cache."""
    if not snapshot.is_relative_to(cache_dir) or snapshot.parent.name != "snapshots":
        return False
    cached = huggingface_hub.scan_cache_dir(cache_dir)
    for repo in cached.repos:
        if any(revision.snapshot_path == snapshot for revision in repo.revisions):
            this_repo = dataclasses.replace(cached, repos=frozenset({repo}))
            this_repo.delete_revisions(snapshot.name).execute()
            return True
    return False
