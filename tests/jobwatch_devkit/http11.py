"""A minimal asyncio HTTP/1.1 server core shared by the simulator and the Slack sink.

Why not `http.server`: one thread per connection cannot hold 64 keep-alive clients that each wait
50 ms of simulated latency at benchmark rates, and it cannot reset a connection on purpose. This core
serves each connection as one asyncio task, so latency is a timer, not a blocked thread.

Scope is deliberately small: request line, headers, Content-Length or chunked request bodies,
keep-alive (HTTP/1.1 default, `Connection: close` honoured), `Expect: 100-continue`, and two ways to
end a connection without answering (graceful close or TCP reset). Binds 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import struct
import sys
import threading
from dataclasses import dataclass
from enum import StrEnum
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["HOST", "Disconnect", "HttpApp", "Request", "Response"]

HOST = "127.0.0.1"
"""The only interface the devkit servers listen on: they are test fixtures, never exposed."""

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024

logger = logging.getLogger(__name__)

_REASONS: dict[int, str] = {s.value: s.phrase for s in HTTPStatus}


class BadRequestError(Exception):
    """The peer sent something that is not HTTP/1.x we understand; answered with `status`, then closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Disconnect(StrEnum):
    """How to end a connection instead of answering (fault injection)."""

    CLOSE = "close"
    """Graceful FIN without a response: the client sees 'server disconnected without a response'."""
    RESET = "reset"
    """TCP RST (SO_LINGER 0): the client sees 'connection reset by peer'."""


@dataclass(slots=True)
class Request:
    """One parsed request. Header names are lower-cased; repeated headers are joined with ', '."""

    method: str
    target: str
    version: str
    headers: dict[str, str]
    path: str
    query: dict[str, str]
    body: bytes = b""

    def json(self) -> Any:
        """The body as JSON; raises ValueError otherwise (callers map that to their API's error)."""
        return json.loads(self.body)

    def bearer_token(self) -> str | None:
        """The token of an `Authorization: Bearer <token>` header, if any."""
        value = self.headers.get("authorization")
        if value is None or value[:7].lower() != "bearer ":
            return None
        return value[7:].strip()


@dataclass(frozen=True, slots=True)
class Response:
    """What a handler returns. `disconnect` set means: send nothing and end the connection that way."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    close: bool = False
    """Answer, then close the connection (adds `Connection: close`)."""
    disconnect: Disconnect | None = None

    @classmethod
    def json(
        cls,
        data: Any,
        status: int = 200,
        *,
        headers: tuple[tuple[str, str], ...] = (),
        content_type: str = "application/json",
    ) -> Response:
        """Compact JSON, as the Go and Rust servers being imitated emit it."""
        body = json.dumps(data, separators=(",", ":")).encode()
        return cls(status, body, content_type, headers)

    @classmethod
    def text(
        cls,
        status: int,
        text: str,
        *,
        content_type: str | None = "text/plain; charset=utf-8",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> Response:
        return cls(status, text.encode(), content_type, headers)

    @classmethod
    def dropped(cls, how: Disconnect = Disconnect.CLOSE) -> Response:
        return cls(status=0, disconnect=how)

    def encode(self, keep_alive: bool, *, head_only: bool = False) -> bytes:
        """Serialize status line, headers and body in one buffer (one write per response keeps CPU low)."""
        reason = _REASONS.get(self.status, "Unknown")
        head = f"HTTP/1.1 {self.status} {reason}\r\nContent-Length: {len(self.body)}\r\n"
        if self.content_type is not None:
            head += f"Content-Type: {self.content_type}\r\n"
        for name, value in self.headers:
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ValueError(f"header {name!r} contains a line break")
            head += f"{name}: {value}\r\n"
        if not keep_alive:
            head += "Connection: close\r\n"
        raw = (head + "\r\n").encode("latin-1")
        return raw if head_only else raw + self.body


def _parse_head(head: bytes) -> Request:
    """Parse request line and headers (the block up to and including the blank line)."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes every byte
        raise BadRequestError(400, "undecodable head") from exc
    lines = text.lstrip("\r\n").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequestError(400, f"bad request line {lines[0][:80]!r}")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequestError(400, f"bad header line {line[:80]!r}")
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    if target.startswith(("http://", "https://")):
        split = urlsplit(target)
        raw_path, query_string = split.path or "/", split.query
    else:
        raw_path, _, query_string = target.partition("?")
    path = unquote(raw_path) if "%" in raw_path else raw_path
    query = dict(parse_qsl(query_string, keep_blank_values=True)) if query_string else {}
    return Request(method, target, version, headers, path, query)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    """Decode a chunked request body (curl and some SDKs stream JSON this way)."""
    chunks: list[bytes] = []
    total = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise BadRequestError(400, "bad chunk size") from exc
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return b"".join(chunks)
        total += size
        if total > MAX_BODY_BYTES:
            raise BadRequestError(413, "body too large")
        chunks.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise BadRequestError(400, "bad chunk terminator")


def _reset(writer: asyncio.StreamWriter) -> None:
    """Abort with a TCP RST rather than a FIN, like a crashed proxy or a load balancer kill."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class HttpApp:
    """Base class of a devkit server: subclass, implement `handle`, then run it one of three ways.

    - `start()` / `stop()` (or `with app:`): own event loop in a daemon thread, for synchronous tests.
    - `await start_async()` / `await stop_async()`: inside an already running loop.
    - `serve_cli()`: blocking, prints `READY <url>` once listening, stops cleanly on SIGTERM/SIGINT.
    """

    def __init__(self, *, port: int = 0) -> None:
        self._requested_port = port
        self._server: asyncio.Server | None = None
        self._bound_port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[asyncio.Task[Any]] = set()

    async def handle(self, request: Request) -> Response:
        """Answer one request. Exceptions become a plain-text 500 (and are logged)."""
        raise NotImplementedError

    # -- addresses -------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._bound_port is None:
            raise RuntimeError("server is not started")
        return self._bound_port

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT`, without a trailing slash."""
        return f"http://{HOST}:{self.port}"

    # -- lifecycle inside a running loop ---------------------------------------------------------------

    async def start_async(self) -> str:
        if self._server is not None:
            raise RuntimeError("server already started")
        self._server = await asyncio.start_server(
            self._on_connection, HOST, self._requested_port, backlog=1024, limit=MAX_HEAD_BYTES
        )
        self._bound_port = self._server.sockets[0].getsockname()[1]
        return self.base_url

    async def stop_async(self) -> None:
        """Stop listening, then cancel live connections (including handlers asleep in a simulated hang)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()

    # -- lifecycle in a background thread --------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> str:
        """Run the server on its own loop in a daemon thread; returns the base URL once listening."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.stop_async())
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=run, name=f"{type(self).__name__}-loop", daemon=True)
        self._thread = thread
        thread.start()
        if not ready.wait(timeout):
            raise TimeoutError(f"{type(self).__name__} did not start within {timeout}s")
        if failure:
            self._thread = None
            raise failure[0]
        return self.base_url

    def stop(self, timeout: float = 10.0) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._thread = None
        self._loop = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- lifecycle as a process ------------------------------------------------------------------------

    def serve_cli(self) -> int:
        """Serve until SIGTERM/SIGINT. Prints exactly one `READY <base url>` line on stdout when listening."""

        async def main() -> None:
            url = await self.start_async()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            sys.stdout.write(f"READY {url}\n")
            sys.stdout.flush()
            await stop.wait()
            await self.stop_async()

        asyncio.run(main())
        return 0

    # -- connection handling ---------------------------------------------------------------------------

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            await self._serve_connection(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        except Exception:  # never let one connection's bug reach the loop's exception handler
            logger.exception("connection handler failed")
        finally:
            if task is not None:
                self._connections.discard(task)
            if not writer.is_closing():
                writer.close()

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return  # peer closed between requests
            except asyncio.LimitOverrunError:
                writer.write(Response.text(431, "request header too large").encode(False))
                await writer.drain()
                return
            try:
                request = _parse_head(head)
                await self._read_body(request, reader, writer)
            except BadRequestError as exc:
                writer.write(Response.text(exc.status, str(exc)).encode(False))
                await writer.drain()
                return
            connection = request.headers.get("connection", "").lower()
            if request.version == "HTTP/1.1":
                keep_alive = "close" not in connection
            else:
                keep_alive = "keep-alive" in connection
            try:
                response = await self.handle(request)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("handler failed for %s %s", request.method, request.target)
                response = Response.text(500, "devkit server error (see its stderr)")
            if response.disconnect is not None:
                if response.disconnect is Disconnect.RESET:
                    _reset(writer)
                else:
                    writer.close()
                return
            keep_alive = keep_alive and not response.close
            writer.write(response.encode(keep_alive, head_only=request.method == "HEAD"))
            await writer.drain()
            if not keep_alive:
                return

    @staticmethod
    async def _read_body(
        request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        headers = request.headers
        transfer = headers.get("transfer-encoding")
        length_text = headers.get("content-length")
        if transfer is None and (length_text is None or length_text == "0"):
            return
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if transfer is not None:
            if transfer.lower().rsplit(",", 1)[-1].strip() != "chunked":
                raise BadRequestError(501, f"unsupported transfer-encoding {transfer!r}")
            request.body = await _read_chunked(reader)
            return
        try:
            length = int(length_text or "0")
        except ValueError as exc:
            raise BadRequestError(400, "bad content-length") from exc
        if length < 0:
            raise BadRequestError(400, "bad content-length")
        if length > MAX_BODY_BYTES:
            raise BadRequestError(413, "body too large")
        request.body = await reader.readexactly(length)
