"""The url source: one file or archive over HTTP(S), pinned by its sha256.

The download streams to a partial file and resumes with an HTTP Range request when the
server closes early; its size is capped; its sha256 must match the spec. Proxies come from
the environment (``HTTP_PROXY``, ``HTTPS_PROXY``, ``NO_PROXY``); plain ``http://`` is allowed
for self-hosted mirrors. A URL ending in ``.tar``, ``.tar.gz``/``.tgz`` or ``.zip`` is
unpacked into a staging folder after every member was checked: ``..``, an absolute path,
a link pointing out or a device makes the whole archive fail. The result appears at
``<dest>/<sha256>/`` by one rename, so it is either complete or absent; on any failure
every downloaded or unpacked byte is deleted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

import aiohttp

from reconciler.drivers.models.errors import (
    ChecksumMismatchError,
    DownloadError,
    DownloadTooLargeError,
    SourceNotFoundError,
    SourceUnavailableError,
    TruncatedDownloadError,
    UnauthorizedError,
    UnsafeArchiveError,
)

CHUNK_BYTES = 1024 * 1024
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


@dataclasses.dataclass(frozen=True)
class DownloadSettings:
    """Limits of one download. ``trust_env``: take proxies and NO_PROXY from the environment."""

    max_bytes: int = 200 * 1024**3
    read_timeout_s: float = 300.0
    connect_timeout_s: float = 30.0
    resume_attempts: int = 5
    trust_env: bool = True


def archive_kind(url: str) -> str | None:
    """``tar`` or ``zip`` when the URL's path names an archive, else None."""
    name = PurePosixPath(unquote(urlsplit(url).path)).name.lower()
    if name.endswith((".tar", ".tar.gz", ".tgz")):
        return "tar"
    if name.endswith(".zip"):
        return "zip"
    return None


def file_name(url: str) -> str:
    name = PurePosixPath(unquote(urlsplit(url).path)).name
    return name if name and name not in (".", "..") else "model"


def final_root(*, dest_dir: Path, sha256: str) -> Path:
    return dest_dir / sha256.lower()


async def fetch(
    *,
    url: str,
    sha256: str,
    dest_dir: Path,
    settings: DownloadSettings,
    token: str | None = None,
) -> Path:
    """The folder holding the model from ``url``, downloading it unless already there.

    Raises one of the errors of reconciler.drivers.models.errors; on failure nothing of
    this download is left under ``dest_dir``.
    """
    expected = sha256.lower()
    root = final_root(dest_dir=dest_dir, sha256=expected)
    if root.is_dir():
        return root
    dest_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest_dir, prefix=f".staging-{expected[:12]}-"))
    partial = staging.with_name(staging.name + ".partial")
    try:
        digest = await _download(url=url, target=partial, settings=settings, token=token)
        if digest != expected:
            raise ChecksumMismatchError(
                f"sha256 mismatch for {url}: expected {expected}, got {digest}; "
                "the downloaded bytes were deleted"
            )
        kind = archive_kind(url)
        if kind is None:
            partial.rename(staging / file_name(url))
        else:
            await asyncio.to_thread(
                unpack, archive=partial, kind=kind, target=staging, max_bytes=settings.max_bytes
            )
            partial.unlink()
        staging.rename(root)
    except BaseException:
        partial.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return root


def delete_download(*, dest_dir: Path, root: Path) -> bool:
    """Delete a finished download under ``dest_dir``; any other path is left alone."""
    if root.parent != dest_dir or not root.is_dir():
        return False
    shutil.rmtree(root)
    return True


def _total_from(response: aiohttp.ClientResponse, have: int) -> int | None:
    content_range = response.headers.get("Content-Range", "")
    match = _CONTENT_RANGE.match(content_range.strip())
    if match and match.group(3) != "*":
        return int(match.group(3))
    if response.content_length is not None:
        return response.content_length + (have if response.status == 206 else 0)
    return None


def _check_status(response: aiohttp.ClientResponse, url: str) -> None:
    if response.status in (200, 206):
        return
    if response.status == 404:
        raise SourceNotFoundError(f"{url} answered 404 Not Found")
    if response.status in (401, 403):
        raise UnauthorizedError(
            f"{url} answered {response.status}: the credential is missing or not accepted"
        )
    if response.status >= 500 or response.status in (408, 429):
        raise SourceUnavailableError(f"{url} answered {response.status}; will retry")
    raise DownloadError(f"{url} answered {response.status} {response.reason or ''}".rstrip())


async def _download(
    *, url: str, target: Path, settings: DownloadSettings, token: str | None
) -> str:
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=settings.connect_timeout_s, sock_read=settings.read_timeout_s
    )
    hasher = hashlib.sha256()
    have = 0
    total: int | None = None
    attempts = settings.resume_attempts + 1
    async with aiohttp.ClientSession(trust_env=settings.trust_env, timeout=timeout) as session:
        with target.open("wb") as out:
            for _attempt in range(attempts):
                headers = {"Accept-Encoding": "identity"}
                if token:
                    headers["Authorization"] = f"Bearer {token}"
                if have:
                    headers["Range"] = f"bytes={have}-"
                try:
                    async with session.get(url, headers=headers) as response:
                        _check_status(response, url)
                        if have and response.status == 200:  # the server ignored Range
                            out.seek(0)
                            out.truncate()
                            hasher, have = hashlib.sha256(), 0
                        total = _total_from(response, have)
                        if total is not None and total > settings.max_bytes:
                            raise _too_large(url, total, settings.max_bytes)
                        async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                            have += len(chunk)
                            if have > settings.max_bytes:
                                raise _too_large(url, have, settings.max_bytes)
                            out.write(chunk)
                            hasher.update(chunk)
                except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError):
                    pass  # resume below from what arrived
                except aiohttp.InvalidURL as exc:
                    raise DownloadError(f"{url} is not a valid URL: {exc}") from exc
                except (aiohttp.ClientError, TimeoutError) as exc:
                    if have == 0:
                        raise SourceUnavailableError(f"cannot download {url}: {exc}") from exc
                if total is None or have >= total:
                    return hasher.hexdigest()
    raise TruncatedDownloadError(
        f"truncated transfer from {url}: got {have} of {total} bytes after {attempts} "
        "attempts (resumed with Range); the downloaded bytes were deleted"
    )


def _too_large(url: str, size: int, limit: int) -> DownloadTooLargeError:
    return DownloadTooLargeError(
        f"{url} is larger than the size limit: at least {size} bytes, limit {limit}; "
        "the downloaded bytes were deleted"
    )


def _escape_reason(name: str) -> str | None:
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        return "an absolute path"
    if ".." in PurePosixPath(posix).parts:
        return "a '..' component"
    return None


def _check_tar_member(member: tarfile.TarInfo) -> None:
    reason = _escape_reason(member.name)
    if reason is None and (member.issym() or member.islnk()):
        base = PurePosixPath(member.name).parent if member.issym() else PurePosixPath()
        target = member.linkname
        if _escape_reason(target) or _escape_reason(str(base / target)):
            reason = f"a link to {target!r}, outside the archive"
    special = not (member.isfile() or member.isdir() or member.issym() or member.islnk())
    if reason is None and special:
        reason = "a device, fifo or other special file"
    if reason is not None:
        raise UnsafeArchiveError(f"archive member {member.name!r} is {reason}; nothing unpacked")


def _check_zip_member(info: zipfile.ZipInfo) -> None:
    reason = _escape_reason(info.filename)
    if reason is None and stat.S_ISLNK(info.external_attr >> 16):
        reason = "a symbolic link"
    if reason is not None:
        raise UnsafeArchiveError(f"archive member {info.filename!r} is {reason}; nothing unpacked")


def unpack(*, archive: Path, kind: str, target: Path, max_bytes: int) -> None:
    """Unpack ``archive`` into ``target`` after checking every member; raise on any escape."""
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zipped:
                infos = zipped.infolist()
                for info in infos:
                    _check_zip_member(info)
                _check_unpacked_size(sum(i.file_size for i in infos), max_bytes)
                zipped.extractall(target)
            return
        with tarfile.open(archive, "r:*") as tarred:
            members = tarred.getmembers()
            for member in members:
                _check_tar_member(member)
            _check_unpacked_size(sum(m.size for m in members if m.isfile()), max_bytes)
            tarred.extractall(target, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise DownloadError(f"cannot unpack {kind} archive: {exc}") from exc


def _check_unpacked_size(size: int, limit: int) -> None:
    if size > limit:
        raise DownloadTooLargeError(
            f"archive unpacks to {size} bytes, more than the size limit of {limit}"
        )
