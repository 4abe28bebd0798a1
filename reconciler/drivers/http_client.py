"""Outbound HTTP for steps and notifications, behind our own error types.

Wraps one aiohttp ClientSession so the rest of the code never sees aiohttp: failures come
out as HttpError subclasses (raised ``from`` the library's error) that say which request
failed and why, and response bodies are capped so a misbehaving server cannot exhaust
memory.

``deny_private`` refuses loopback, private, link-local and other non-public addresses.
The check sits in the socket factory aiohttp calls for every address it is about to
connect to, so it sees the resolved address actually used: a name that resolves to a
private address, a redirect to one, an IP literal, or a DNS answer that changes between
a check and the connect (DNS rebinding) are all refused at the connect itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import ipaddress
import socket
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import aiohttp

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024


class HttpError(Exception):
    """A request that did not produce a response."""


class HttpInvalidRequestError(HttpError):
    """The request itself is wrong (malformed URL, unsupported scheme, bad method)."""


class HttpDeniedError(HttpInvalidRequestError):
    """The target address is not public and the client denies private addresses."""


class HttpConnectionError(HttpError):
    """The server could not be reached or broke the connection."""


class HttpTimeoutError(HttpError):
    """No complete response within the time allowed."""


class HttpResponseTooLargeError(HttpError):
    """The response body is larger than the client accepts."""


@dataclasses.dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes
    charset: str | None = None

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    def text(self) -> str:
        return self.body.decode(self.charset or "utf-8", errors="replace")


_DENIED = "refused by http.deny_private"


def is_public_address(address: str) -> bool:
    """Whether ``address`` (an IP) is a global unicast address (IPv4-mapped unwrapped)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _public_only_socket(addr_info: tuple[Any, ...]) -> socket.socket:
    """aiohttp's socket factory: a socket for a public address, else a refusal."""
    family, kind, proto, _, sockaddr = addr_info
    if not is_public_address(str(sockaddr[0])):
        raise OSError(errno.EACCES, f"{sockaddr[0]} is not a public address ({_DENIED})")
    return socket.socket(family=family, type=kind, proto=proto)


class HttpClient:
    """One connection pool for the daemon's outbound requests; close it at shutdown.

    ``deny_private``: connect to public addresses only (see the module docstring).
    """

    def __init__(
        self,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        user_agent: str = "reconciler",
        deny_private: bool = False,
    ) -> None:
        self._max_body_bytes = max_body_bytes
        self._user_agent = user_agent
        self._deny_private = deny_private
        self._session: aiohttp.ClientSession | None = None

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = (
                aiohttp.TCPConnector(socket_factory=_public_only_socket)
                if self._deny_private
                else None
            )
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": self._user_agent}, connector=connector
            )
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout_s: float = 30.0,
    ) -> HttpResponse:
        """Send one request and read the whole response (up to the body cap)."""
        where = f"{method.upper()} {url}"
        session = self._session_now()
        try:
            async with session.request(
                method.upper(),
                url,
                headers=dict(headers or {}),
                data=body,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
                allow_redirects=True,
            ) as response:
                payload = await self._read_body(response, where)
                return HttpResponse(
                    status=response.status,
                    headers=dict(response.headers),
                    body=payload,
                    charset=response.charset,
                )
        except HttpError:
            raise
        except (aiohttp.InvalidURL, ValueError) as e:
            raise HttpInvalidRequestError(f"{where}: invalid request: {e}") from e
        except TimeoutError as e:
            raise HttpTimeoutError(f"{where}: no response within {timeout_s:g}s") from e
        except aiohttp.ClientConnectorError as e:
            if _DENIED in str(e.os_error):
                raise HttpDeniedError(f"{where}: {e.os_error}") from e
            raise HttpConnectionError(f"{where}: cannot connect: {e.os_error}") from e
        except aiohttp.ClientError as e:
            raise HttpConnectionError(f"{where}: {type(e).__name__}: {e}") from e

    async def _read_body(self, response: aiohttp.ClientResponse, where: str) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > self._max_body_bytes:
                raise HttpResponseTooLargeError(
                    f"{where}: response body exceeds {self._max_body_bytes} bytes"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
            # Let the connector finish closing its transports (aiohttp's advice).
            await asyncio.sleep(0)

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
