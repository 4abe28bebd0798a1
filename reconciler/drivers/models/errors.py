"""Our own error types for model sources, so steps never see a library's exceptions.

Each message is meant for a person: it names the repo, URL or path concerned and, where
possible, what to do. Secret values never appear in them.
"""

from __future__ import annotations


class ModelSourceError(Exception):
    """Base of every problem fetching, listing or describing a model's files."""


class SourceNotFoundError(ModelSourceError):
    """The repo, revision, URL or path does not exist."""


class UnauthorizedError(ModelSourceError):
    """The source refused the request: no token, or a token that does not grant access."""


class GatedRepoError(ModelSourceError):
    """A gated Hugging Face repo whose conditions the token's user has not accepted."""


class SourceUnavailableError(ModelSourceError):
    """The source could not be reached or answered with a server error; worth retrying."""


class DownloadError(ModelSourceError):
    """A download that did not produce the expected bytes; nothing of it is kept."""


class ChecksumMismatchError(DownloadError):
    """The downloaded bytes do not have the sha256 the spec pins."""


class TruncatedDownloadError(DownloadError):
    """The server kept closing the transfer early, even after resuming with Range."""


class DownloadTooLargeError(DownloadError):
    """The file is larger than the configured size limit."""


class UnsafeArchiveError(DownloadError):
    """An archive member would land outside the target folder (``..``, absolute, link)."""


class DiskSourceError(ModelSourceError):
    """A disk source path that is missing, unreadable or not a file or folder."""
