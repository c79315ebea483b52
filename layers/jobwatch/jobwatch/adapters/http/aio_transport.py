"""An httpx transport over aiohttp: httpx stays the client API, aiohttp does the wire work.

Why (docs/decisions.md, D16, D26): measured on this project's poll workload, httpx over httpcore
costs 3-7x a bare aiohttp GET in CPU, and httpx's decoders inflate each 64 KiB chunk of a gzip body
with no limit (a 300 KB bomb became 67 MB per chunk, 650 MB per response). aiohttp inflates in
bounded steps, so reading the decoded body chunk by chunk stops a bomb after the cap.

What this transport guarantees, each tested:
- the endpoint rules on every new connection: a resolver that resolves, then puts every address to
  the guard (the DNS cache is off while a guard is set, so a re-pointed name is caught on the next
  connection); aiohttp skips resolvers for IP literals, so those are checked here per request;
- no redirects (a 3xx is an answer, never followed);
- a cap on the decoded body (`ResponseTooLarge`, an httpx.TransportError), also refused up front from
  a Content-Length that announces more;
- aiohttp's errors arrive as httpx's (timeouts as `httpx.TimeoutException` subclasses, refusals and
  DNS failures as `ConnectError` with the guard's reason kept). A total deadline over connect and the
  whole body is the caller's `asyncio.timeout` (adapters/http/client.py).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult

Guard = Callable[[str, "ipaddress.IPv4Address | ipaddress.IPv6Address"], "str | None"]
"""(host, address) -> why the host may not be called at that address, or None."""

_DECODED_BY_AIOHTTP = frozenset({"gzip", "deflate", "br", "zstd"})
_BODY_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


async def _system_addresses(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


CONNECT_RESOLVER: Callable[[str, int], Awaitable[list[str]]] = _system_addresses
"""How hosts are resolved when a guard is set (tests replace it: no DNS query leaves the box)."""


class RefusedAddress(OSError):
    """The endpoint rules refuse an address the host resolved to."""


class ResponseTooLarge(httpx.TransportError):
    """The decoded body exceeded the cap (or its Content-Length announced more)."""


class GuardedResolver(AbstractResolver):
    """Resolve, then refuse the host unless every address passes the guard."""

    def __init__(self, guard: Guard) -> None:
        self._guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await CONNECT_RESOLVER(host, port)
        if not addresses:
            raise RefusedAddress(f"{host} has no address")
        results: list[ResolveResult] = []
        for text in addresses:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
            reason = self._guard(host, ip)
            if reason is not None:
                raise RefusedAddress(
                    f"refused by the endpoint rules: {host} now resolves to {ip}, a {reason} address"
                )
            family_of = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
            results.append(
                {"hostname": host, "host": str(ip), "port": port, "family": family_of, "proto": 0, "flags": 0}
            )
        return results

    async def close(self) -> None:
        return None


def _httpx_error(exc: aiohttp.ClientError | TimeoutError) -> type[httpx.HTTPError]:
    """The httpx exception an aiohttp failure means (so `except httpx.TimeoutException` still works)."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):  # pool wait, TCP or TLS connect
        return httpx.ConnectTimeout
    if isinstance(exc, aiohttp.SocketTimeoutError | TimeoutError):
        return httpx.ReadTimeout
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, DNS, TLS verification
        return httpx.ConnectError
    if isinstance(exc, aiohttp.ClientPayloadError):
        encoding = isinstance(exc.__cause__, aiohttp.http_exceptions.ContentEncodingError)
        return (
            httpx.DecodingError
            if encoding or "content-encoding" in str(exc).lower()
            else httpx.RemoteProtocolError
        )
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError
    if isinstance(exc, aiohttp.ClientConnectionError):
        return httpx.ReadError
    return httpx.TransportError


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session (one connection pool) behind an httpx client."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext,
        max_connections: int,
        max_connections_per_host: int,
        max_body_bytes: int,
        guard: Guard | None = None,
        keepalive_expiry: float = 5.0,
    ) -> None:
        self._ssl = ssl_context
        self._limit = max_connections
        self._limit_per_host = max_connections_per_host
        self._max_body = max_body_bytes
        self._guard = guard
        self._keepalive = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None
        self._literal_verdicts: dict[str, str | None] = {}
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    def _make_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._limit,
            limit_per_host=self._limit_per_host,
            keepalive_timeout=self._keepalive,
            ssl=self._ssl,
            resolver=GuardedResolver(self._guard) if self._guard is not None else None,
            use_dns_cache=self._guard is None,  # with a guard: resolve and check every new connection
        )
        session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=True,
            timeout=aiohttp.ClientTimeout(total=None),
            trust_env=False,
        )
        # aiohttp silently resends an idempotent request once when a kept-alive connection breaks.
        # One poll is one request here: a reset is a poll error the health counters see, and a
        # hostile upstream cannot double its load by resetting (aiohttp is pinned; a test covers it).
        session._retry_connection = False
        return session

    def _check_literal(self, host: str) -> None:
        """aiohttp calls no resolver for IP-literal hosts: put those to the guard here (memoised)."""
        if self._guard is None or not host or not (host[0].isdigit() or ":" in host):
            return
        if host in self._literal_verdicts:
            verdict = self._literal_verdicts[host]
        else:
            try:
                ip = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
            except ValueError:
                verdict = None  # a name after all: the resolver checks it on connect
            else:
                verdict = self._guard(host, ip)
            if len(self._literal_verdicts) < 4096:
                self._literal_verdicts[host] = verdict
        if verdict is not None:
            raise httpx.ConnectError(f"refused by the endpoint rules: {host} is a {verdict} address")

    def _timeout(self, timeouts: dict[str, float | None]) -> aiohttp.ClientTimeout:
        key = (timeouts.get("pool"), timeouts.get("connect"), timeouts.get("read"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            timeout = self._timeouts[key] = aiohttp.ClientTimeout(
                total=None, connect=key[0], sock_connect=key[1], sock_read=key[2]
            )
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session
        if session is None:
            session = self._session = self._make_session()
        self._check_literal(request.url.host)
        answer: aiohttp.ClientResponse | None = None
        try:
            answer = await session.request(
                request.method,
                yarl.URL(str(request.url), encoded=True),  # sent exactly as built: no requoting
                headers=request.headers.multi_items(),
                data=await request.aread() or None,
                allow_redirects=False,
                timeout=self._timeout(request.extensions.get("timeout") or {}),
            )
            body = await self._read(answer)
        except (aiohttp.ClientError, TimeoutError) as exc:
            if answer is not None:
                answer.close()
            os_error = getattr(exc, "os_error", None)
            if isinstance(os_error, RefusedAddress):  # the endpoint rules said no: keep their reason
                raise httpx.ConnectError(str(os_error)) from exc
            raise _httpx_error(exc)(f"{type(exc).__name__}: {exc}") from exc
        except BaseException:  # cancelled by the caller's deadline, or a cap: never leak the connection
            if answer is not None:
                answer.close()
            raise
        answer.release()
        return self._response(request, answer, body)

    def _response(
        self, request: httpx.Request, answer: aiohttp.ClientResponse, body: bytes
    ) -> httpx.Response:
        headers: Any = answer.raw_headers
        encoding = (answer.headers.get("Content-Encoding") or "").lower()
        if encoding in _DECODED_BY_AIOHTTP:  # aiohttp inflated it: the body headers no longer apply
            headers = tuple(h for h in headers if h[0].decode("latin-1").lower() not in _BODY_HEADERS)
        elif encoding not in ("", "identity"):
            raise httpx.DecodingError(f"unsupported Content-Encoding: {encoding}")
        return httpx.Response(
            status_code=answer.status,
            headers=headers,
            content=body,
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (answer.reason or "").encode()},
        )

    async def _read(self, answer: aiohttp.ClientResponse) -> bytes:
        """The decoded body, at most `max_body_bytes` of it (a bomb stops after the cap)."""
        cap = self._max_body
        length = answer.content_length
        if length is not None and not answer.headers.get("Content-Encoding"):
            if length > cap:
                raise ResponseTooLarge(f"Content-Length {length:,} bytes is over the {cap:,}-byte cap")
            return await answer.read()
        parts: list[bytes] = []
        size = 0
        while chunk := await answer.content.readany():
            size += len(chunk)
            if size > cap:
                raise ResponseTooLarge(f"body is over the {cap:,}-byte cap (decoded)")
            parts.append(chunk)
        return b"".join(parts)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _CookielessResponses(httpx.Cookies):
    """httpx builds urllib adapters for every response to look for cookies (~60 µs each); jobwatch
    sends none and keeps none, so the work is skipped unless a response actually sets one."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


class LeanAsyncClient(httpx.AsyncClient):
    """`httpx.AsyncClient` minus the per-response cookie scan (touches the pinned httpx's `_cookies`;
    tests/unit/test_http_transport.py checks the attribute still exists)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cookies = _CookielessResponses(self._cookies.jar)
