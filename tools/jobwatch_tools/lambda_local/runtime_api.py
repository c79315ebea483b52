"""A local Lambda Runtime API: the HTTP API a runtime interface client (awslambdaric) talks to.

Endpoints (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html):

    GET  /2018-06-01/runtime/invocation/next            the next event (long poll until one is queued)
    POST /2018-06-01/runtime/invocation/{id}/response   the handler's result
    POST /2018-06-01/runtime/invocation/{id}/error      the handler raised
    POST /2018-06-01/runtime/init/error                 the handler module failed to load

`next` answers with the documented headers: `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms` (epoch
milliseconds, counted from when the runtime receives the event, so the init phase does not eat into
the function's timeout), `-Invoked-Function-Arn` and `-Trace-Id`. Stdlib only; serves on loopback,
on an ephemeral port. HTTP/1.1 keep-alive with Nagle off: `http.server` writes the headers and the
body in two sends, and with Nagle on, the client's delayed ACK costs every warm `next` about 40 ms.
"""

from __future__ import annotations

import json
import queue
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"
_INVOCATION_RESULT = re.compile(rf"^{PREFIX}/invocation/([^/]+)/(response|error)$")
_ACCEPTED = b'{"status":"OK"}'
_POLL_S = 0.2
_EXIT_GRACE_S = 0.5


@dataclass
class Invocation:
    request_id: str
    event: bytes
    timeout_s: float
    function_arn: str
    trace_id: str
    served_at: float | None = None
    """Monotonic time the runtime received the event."""


@dataclass
class Result:
    kind: str
    """`response`, `error` (the handler raised) or `init_error` (the module failed to load)."""
    body: bytes
    error_type: str | None = None
    """The `Lambda-Runtime-Function-Error-Type` header the runtime sent, if any."""
    received_at: float = field(default_factory=time.monotonic)


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api: RuntimeApi, address: tuple[str, int]) -> None:
        self.api = api
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A runtime killed in the middle of a request is how an invocation normally ends here."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the runtime's own logs are what the caller reads."""

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        self.rfile.readline()
        return b"".join(chunks)

    def do_GET(self) -> None:
        if self.path != f"{PREFIX}/invocation/next":
            self._reply(404, b'{"errorType":"NotFound"}')
            return
        invocation = self.server.api.next_invocation()
        if invocation is None:  # stopping
            self.close_connection = True
            return
        deadline_ms = int((time.time() + invocation.timeout_s) * 1000)
        self._reply(
            200,
            invocation.event,
            {
                "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": invocation.function_arn,
                "Lambda-Runtime-Trace-Id": invocation.trace_id,
            },
        )

    def do_POST(self) -> None:
        body = self._body()
        error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
        api = self.server.api
        if self.path == f"{PREFIX}/init/error":
            # Reply before recording: the caller may kill the runtime as soon as the result is in.
            self._reply(202, _ACCEPTED)
            api.record(None, Result("init_error", body, error_type))
            return
        match = _INVOCATION_RESULT.match(self.path)
        if match is None:
            self._reply(404, b'{"errorType":"NotFound"}')
            return
        request_id, kind = match.groups()
        if not api.is_open(request_id):
            self._reply(400, b'{"errorType":"InvalidRequestID"}')
            return
        self._reply(202, _ACCEPTED)
        api.record(request_id, Result(kind, body, error_type))


class RuntimeApi:
    """The Runtime API for one runtime process: `start()`, give the runtime `address` as
    AWS_LAMBDA_RUNTIME_API, `wait_ready()` (its init is done), `enqueue()` an event, `wait()` for its
    result, `stop()`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._pending: queue.Queue[Invocation] = queue.Queue()
        self._invocations: dict[str, Invocation] = {}
        self._results: dict[str, Result] = {}
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self.init_error: Result | None = None
        self.ready_at: float | None = None
        """Monotonic time of the first `next`: the end of the runtime's init phase."""
        self._server = _Server(self, (host, port))
        self._thread = threading.Thread(target=self._server.serve_forever, name="runtime-api", daemon=True)

    @property
    def address(self) -> str:
        """`host:port`, the value of `AWS_LAMBDA_RUNTIME_API`."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> RuntimeApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def enqueue(self, event: bytes, *, timeout_s: float, function_arn: str) -> str:
        """Queue one invocation; returns its request id."""
        invocation = Invocation(str(uuid.uuid4()), event, timeout_s, function_arn, _trace_id())
        with self._changed:
            self._invocations[invocation.request_id] = invocation
        self._pending.put(invocation)
        return invocation.request_id

    def invocation(self, request_id: str) -> Invocation:
        return self._invocations[request_id]

    def next_invocation(self) -> Invocation | None:
        """The next queued event (blocks); None once the API is stopping."""
        with self._changed:
            if self.ready_at is None:
                self.ready_at = time.monotonic()
                self._changed.notify_all()
        while not self._stopping.is_set():
            try:
                invocation = self._pending.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            invocation.served_at = time.monotonic()
            return invocation
        return None

    def is_open(self, request_id: str) -> bool:
        """A request id that was served and has no result yet."""
        with self._changed:
            return request_id in self._invocations and request_id not in self._results

    def record(self, request_id: str | None, result: Result) -> None:
        with self._changed:
            if request_id is None:
                self.init_error = result
            else:
                self._results[request_id] = result
            self._changed.notify_all()

    def wait_ready(self, timeout: float, alive: Callable[[], bool]) -> bool:
        """True once the runtime asked for its first event; False on an init error, exit or timeout."""
        self._wait_until(lambda: self.ready_at is not None or self.init_error is not None, timeout, alive)
        return self.ready_at is not None

    def wait(self, request_id: str, timeout: float, alive: Callable[[], bool]) -> Result | None:
        """The invocation's result, or None when the runtime exited or `timeout` passed first."""
        self._wait_until(lambda: request_id in self._results, timeout, alive)
        with self._changed:
            return self._results.get(request_id)

    def _wait_until(self, done: Callable[[], bool], timeout: float, alive: Callable[[], bool]) -> None:
        """Until `done()`, `timeout`, or shortly after the runtime exited (a result it posted just
        before exiting is recorded after the reply it got, so it may land a moment later)."""
        end = time.monotonic() + timeout
        exited = False
        with self._changed:
            while not done():
                now = time.monotonic()
                if now >= end:
                    return
                if not exited and not alive():
                    exited, end = True, min(end, now + _EXIT_GRACE_S)
                self._changed.wait(min(0.05, end - now))


def error_payload(result: Result) -> dict[str, Any]:
    """The error object a runtime posted (`errorType`, `errorMessage`, ...), whatever its shape."""
    try:
        payload = json.loads(result.body) if result.body else None
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        text = result.body.decode("utf-8", "replace")
        payload = {"errorType": result.error_type or "Runtime.Unknown", "errorMessage": text}
    payload.setdefault("errorType", result.error_type or "Runtime.Unknown")
    payload.setdefault("errorMessage", "")
    return payload
