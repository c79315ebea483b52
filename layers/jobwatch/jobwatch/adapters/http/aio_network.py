"""An asyncio-native network backend for httpcore, used under the poller's httpx clients.

httpcore's default backend goes through anyio, whose per-call attribute lookups (the pool asks every
idle connection `is_readable` on each request) were the largest CPU cost of a quiet poll cycle.
This backend talks to asyncio streams directly; TLS, timeouts and errors keep httpcore's contract
(httpcore maps its own exceptions to httpx's), so the rest of the stack is unchanged.

It is also where the SSRF rules are applied at request time: the host is resolved here, every
address is put to the guard, and the connection goes to an address that was checked, so a name
re-pointed at an internal address after registration (DNS rebinding) is refused before any byte
of a request is sent. TLS still verifies the host name (httpcore passes it to start_tls).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import select
import socket
import ssl
import typing

import httpcore
import httpx

_READ_ERRORS = (OSError, asyncio.IncompleteReadError, ssl.SSLError)

ConnectGuard = typing.Callable[[str, "ipaddress.IPv4Address | ipaddress.IPv6Address"], "str | None"]
"""(host, address) -> why the host may not be called at that address, or None."""


async def _system_addresses(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


CONNECT_RESOLVER: typing.Callable[[str, int], typing.Awaitable[list[str]]] = _system_addresses
"""How the backend resolves a host when a guard is set (tests replace it: no DNS leaves the box)."""


def _socket_is_readable(sock: socket.socket | None) -> bool:
    """True when an idle keep-alive socket has data or EOF pending: the server closed it."""
    if sock is None or sock.fileno() < 0:
        return True
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout("read timed out") from None
        except _READ_ERRORS as exc:
            raise httpcore.ReadError(str(exc)) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            async with asyncio.timeout(timeout):
                self._writer.write(buffer)
                await self._writer.drain()
        except TimeoutError:
            raise httpcore.WriteTimeout("write timed out") from None
        except _READ_ERRORS as exc:
            raise httpcore.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(*_READ_ERRORS):  # closing a broken connection: nothing to report
            await self._writer.wait_closed()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError:
            raise httpcore.ConnectTimeout("TLS handshake timed out") from None
        except _READ_ERRORS as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        return self

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":
            return _socket_is_readable(self._writer.get_extra_info("socket"))
        if info == "ssl_object":
            return self._writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info == "socket":
            return self._writer.get_extra_info("socket")
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, guard: ConnectGuard | None = None) -> None:
        self._guard = guard

    async def _checked_address(self, guard: ConnectGuard, host: str, port: int) -> str:
        """An address of `host` to connect to, once every address it has passed the guard."""
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            addresses = await CONNECT_RESOLVER(host, port)
        else:
            addresses = [str(literal)]
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        for text in addresses:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
            reason = guard(host, ip)
            if reason is not None:
                raise httpcore.ConnectError(
                    f"refused by the endpoint rules: {host} now resolves to {ip}, a {reason} address"
                )
        return addresses[0]

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                guard = self._guard
                target = host if guard is None else await self._checked_address(guard, host, port)
                reader, writer = await asyncio.open_connection(
                    target, port, local_addr=(local_address, 0) if local_address else None
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"connect to {host}:{port} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for option in socket_options or ():
                sock.setsockopt(*option)
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used by jobwatch")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def asyncio_transport(
    *,
    ssl_context: ssl.SSLContext,
    max_connections: int,
    keepalive_expiry: float = 5.0,
    guard: ConnectGuard | None = None,
) -> httpx.AsyncHTTPTransport:
    """httpx's own transport (request/exception mapping intact) over the asyncio backend.

    httpx 0.28 has no public parameter for the network backend, so the pool is replaced right after
    construction with an identical one that uses it; httpx is pinned and a test checks this wiring.
    """
    transport = httpx.AsyncHTTPTransport(verify=ssl_context)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context,
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=keepalive_expiry,
        http1=True,
        http2=False,
        network_backend=AsyncioBackend(guard),
    )
    return transport
