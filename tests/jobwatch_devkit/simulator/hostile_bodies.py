"""The hostile and broken answers among the simulator's fault steps: bodies past the body cap,
endless and dripping bodies, deeply nested JSON, and errors that echo the request's credential.

Why in the simulator (there is also `jobwatch_devkit.hostile`, a standalone hostile server): here
they are steps of a job's script on the same endpoints as every other state and fault, so the fault
lab can draw them per job and hold them to ground truth (a poll error of the right kind, never a
state change, never a false alert, never a key in anything kept).

Each body that could be read as a status is one: the fault's `lure` state (or the job's last state)
rendered in the source's own shape, padded with whitespace (OVERSIZED), cut open (ENDLESS), dripped
(SLOW) or carrying one deeply nested value (DEEP). A client without the matching bound would read
the lure, so a lure that differs from the script shows up as a state change.

Bounds on the simulator's side, so a hostile step cannot spin a CPU or hold a socket forever: an
endless body stops once the client has gone (the first write after its close fails) and in any case
after `ENDLESS_MAX_BYTES`; a drip and an announced-but-never-sent body end when the client has gone
or after `STREAM_MAX_S`. Streaming answers need the connection, which `server` hands over through
`CONNECTION` (set per connection task).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import zlib
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from ..http11 import Request, Response
from .script import DEFAULT_OVERSIZED_BYTES, Fault, FaultKind

__all__ = [
    "CONNECTION",
    "ECHO_HEADER",
    "ENDLESS_MAX_BYTES",
    "HOSTILE_KINDS",
    "STREAM_MAX_S",
    "Streamed",
    "credential_of",
    "render_hostile",
]

ENDLESS_MAX_BYTES = 64 * 1024 * 1024
"""An endless body ends here even if the client never stops reading (a client without a body cap)."""
STREAM_MAX_S = 60.0
"""A drip or an announced body that never arrives ends after this even if the client stays."""
ECHO_HEADER = "X-Echo-Authorization"
_CHUNK = 64 * 1024

CONNECTION: ContextVar[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = ContextVar(
    "simulator_connection", default=None
)
"""The connection the current request arrived on (set by the server for each connection task)."""

HOSTILE_KINDS = frozenset(
    {FaultKind.OVERSIZED, FaultKind.ENDLESS, FaultKind.SLOW, FaultKind.DEEP, FaultKind.ECHO}
)


@dataclass(frozen=True)
class Streamed:
    """An answer written straight to the connection (then closed) instead of a `Response`."""

    status: int
    """The status line sent (what the request log records)."""
    serve: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

    async def run(self) -> None:
        connection = CONNECTION.get()
        if connection is None:
            raise RuntimeError("a streamed answer needs the connection (UpstreamSimulator sets it)")
        reader, writer = connection
        with contextlib.suppress(ConnectionError, TimeoutError):
            await self.serve(reader, writer)


Renderer = Callable[[Fault, bytes, Request], "Response | Streamed"]


def render_hostile(
    fault: Fault, status_body: bytes, request: Request, error_body: Any
) -> Response | Streamed:
    """The answer for a hostile fault. `status_body` is the lure (or last) state in the source's
    shape, `error_body` the source's own error body for the fault's status (ECHO)."""
    if fault.kind is FaultKind.ECHO:
        return _echo(fault, request, error_body)
    return _RENDERERS[fault.kind](fault, status_body, request)


def credential_of(request: Request) -> str:
    """The credential the request carried, as sent (the whole header value)."""
    return request.headers.get("authorization") or request.headers.get("api-key") or ""


# -- bodies past the cap ----------------------------------------------------------------------------


def padded(status_body: bytes, size: int) -> bytes:
    """`status_body` (a JSON object) with whitespace after its `{`: `size` bytes in all, still valid."""
    return status_body[:1] + b" " * max(0, size - len(status_body)) + status_body[1:]


@functools.lru_cache(maxsize=64)
def gzipped_padded(status_body: bytes, size: int) -> bytes:
    """`padded(status_body, size)` gzip-compressed, built in slices (4 MiB take ~17 ms, ~4 KB)."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    parts = [compressor.compress(status_body[:1])]
    spaces = b" " * _CHUNK
    left = max(0, size - len(status_body))
    while left > 0:
        parts.append(compressor.compress(spaces[: min(left, _CHUNK)]))
        left -= _CHUNK
    parts.append(compressor.compress(status_body[1:]))
    parts.append(compressor.flush())
    return b"".join(parts)


def _oversized(fault: Fault, status_body: bytes, request: Request) -> Response | Streamed:
    size = fault.size or DEFAULT_OVERSIZED_BYTES
    mode = fault.mode or "gzip"
    if mode == "gzip":
        body = gzipped_padded(status_body, size)
        return Response(200, body, "application/json", (("Content-Encoding", "gzip"),))
    if mode == "plain":
        return Response(200, padded(status_body, size), "application/json")
    head = _head(200, {"Content-Type": "application/json", "Content-Length": str(size)})

    async def announce(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(head + status_body[: len(status_body) // 2])
        await writer.drain()
        await _until_client_leaves(reader)

    return Streamed(200, announce)


# -- bodies that never end, or end too late -----------------------------------------------------------


def _endless(fault: Fault, status_body: bytes, request: Request) -> Streamed:
    head = _head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    opening = status_body[:-1] + b',"padding":['
    filler = b"0," * (_CHUNK // 2)

    async def stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(head + _chunk(opening))
        framed = _chunk(filler)
        sent = 0
        async with asyncio.timeout(STREAM_MAX_S):  # a client that stops reading but stays
            while sent < ENDLESS_MAX_BYTES and not writer.transport.is_closing():
                writer.write(framed)
                await writer.drain()  # raises once the client has gone
                sent += len(filler)

    return Streamed(200, stream)


def _slow(fault: Fault, status_body: bytes, request: Request) -> Streamed:
    every_s = max(0.01, fault.seconds)
    # Leading whitespace is valid JSON: the whole body takes longer than STREAM_MAX_S to drip.
    body = b" " * math.ceil(STREAM_MAX_S / every_s) + status_body
    head = _head(200, {"Content-Type": "application/json", "Content-Length": str(len(body))})

    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(head)
        await writer.drain()
        async with asyncio.timeout(STREAM_MAX_S):
            for index in range(len(body)):
                if writer.transport.is_closing():
                    return
                writer.write(body[index : index + 1])
                await writer.drain()
                await asyncio.sleep(every_s)

    return Streamed(200, drip)


def _deep(fault: Fault, status_body: bytes, request: Request) -> Response:
    depth = max(1, fault.depth)
    nested = b"[" * depth + b"]" * depth
    return Response(200, b'{"meta":' + nested + b"," + status_body[1:], "application/json")


_RENDERERS: dict[FaultKind, Renderer] = {
    FaultKind.OVERSIZED: _oversized,
    FaultKind.ENDLESS: _endless,
    FaultKind.SLOW: _slow,
    FaultKind.DEEP: _deep,
}


# -- errors that echo the credential --------------------------------------------------------------------


def _echo(fault: Fault, request: Request, error_body: Any) -> Response:
    secret = credential_of(request)
    status = fault.status or 401
    if fault.code is not None:
        body: Any = {"code": fault.code, "message": f"{fault.message or 'error'} (request: {secret})"}
    else:
        body = _with_echo(error_body, secret)
    if isinstance(body, dict):
        body["echo"] = {"authorization": secret}
    headers: list[tuple[str, str]] = [(ECHO_HEADER, secret)]
    if status == 401:
        headers.append(("WWW-Authenticate", f'Bearer realm="{secret}", error="invalid_token"'))
    if fault.retry_after is not None:
        headers.append(("Retry-After", fault.retry_after))
    return Response.json(body, status, headers=tuple(headers))


def _with_echo(body: Any, secret: str) -> Any:
    """A copy of an error body with the credential appended to every `message` string in it."""
    if isinstance(body, dict):
        return {
            key: f"{value} (request: {secret})"
            if key == "message" and isinstance(value, str)
            else _with_echo(value, secret)
            for key, value in body.items()
        }
    if isinstance(body, list):
        return [_with_echo(item, secret) for item in body]
    return body


# -- wire helpers -------------------------------------------------------------------------------------------


def _head(status: int, headers: dict[str, str]) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers.items()), "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def _until_client_leaves(reader: asyncio.StreamReader) -> None:
    """Wait until the client closes the connection (EOF), at most STREAM_MAX_S."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(STREAM_MAX_S):
            while await reader.read(_CHUNK):
                pass
