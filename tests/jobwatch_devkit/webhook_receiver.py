"""A webhook receiver that verifies jobwatch's signatures the way a customer's endpoint would.

A real HTTP server on 127.0.0.1 (the devkit's `http11` core). It checks every POST on its own,
from docs/webhooks.md alone: `X-Jobwatch-Timestamp` within a 5-minute window, and
`X-Jobwatch-Signature` equal (constant-time) to `v1=` + hex HMAC-SHA256 of `<timestamp>.` + the raw
body under the shared secret. It deliberately does not import jobwatch's signing code, so a bug there
cannot verify itself. Requests are recorded as verified or rejected (with the reason); a request that
fails verification is answered 401. Scripted answers (`script(...)`) let fault tests make the next
verified requests fail: a status (with `Retry-After`), a delay longer than the client waits, or a
dropped connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .http11 import Disconnect, HttpApp, Request, Response

__all__ = ["Answer", "Received", "WebhookReceiver"]

HOOK_PATH = "/hooks/jobwatch"
TOLERANCE_S = 300


@dataclass(frozen=True, slots=True)
class Answer:
    """One scripted answer to the next verified request (then back to 200)."""

    status: int = 200
    retry_after: str | None = None
    delay_s: float = 0.0
    """Wait this long before answering (longer than the client's deadline: a timeout)."""
    drop: bool = False
    """Close the connection instead of answering."""
    headers: tuple[tuple[str, str], ...] = ()
    """Further response headers (a `Location` for a redirect...)."""


@dataclass(frozen=True, slots=True)
class Received:
    """One request as received, and what became of it."""

    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    reason: str
    """Why it was rejected (empty when verified)."""
    status: int
    """What was answered (0: the connection was dropped)."""
    received_at: float

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def transition_id(self) -> str:
        return self.headers.get("x-jobwatch-transition-id", "")

    @property
    def delivered(self) -> bool:
        """Verified and answered 2xx: what a sender may count as delivered."""
        return self.verified and 200 <= self.status < 300


def expected_signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """docs/webhooks.md, written out again: `v1=` + hex HMAC-SHA256(secret, `<timestamp>.` + body)."""
    mac = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verification_failure(
    secret: bytes, headers: dict[str, str], body: bytes, now_s: float, tolerance_s: float = TOLERANCE_S
) -> str | None:
    """Why the request is not authentic (None: it is). Header names are lower-case."""
    timestamp = headers.get("x-jobwatch-timestamp", "")
    signatures = [s.strip() for s in headers.get("x-jobwatch-signature", "").split(",") if s.strip()]
    if not timestamp.isdigit():
        return "missing or malformed timestamp"
    if abs(now_s - int(timestamp)) > tolerance_s:
        return f"timestamp {timestamp} is outside the {tolerance_s:g} s window"
    if not signatures:
        return "missing signature"
    wanted = expected_signature(secret, timestamp, body)
    if not any(hmac.compare_digest(wanted.encode(), s.encode()) for s in signatures):
        return "signature mismatch"
    return None


class WebhookReceiver(HttpApp):
    """Thread-safe; `start()` it, point a webhook at `url`, read `received()` / `deliveries()`."""

    def __init__(
        self,
        secret: str,
        *,
        port: int = 0,
        tolerance_s: float = TOLERANCE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(port=port)
        self.secret = secret
        self.tolerance_s = tolerance_s
        self._clock = clock
        self._lock = threading.Condition()
        self._received: list[Received] = []
        self._script: deque[Answer] = deque()

    @property
    def url(self) -> str:
        return self.base_url + HOOK_PATH

    # -- in-process API ---------------------------------------------------------------------------

    def script(self, answers: Iterable[Answer]) -> None:
        with self._lock:
            self._script.extend(answers)

    def pending_script(self) -> list[Answer]:
        """Scripted answers not served yet."""
        with self._lock:
            return list(self._script)

    def reset(self) -> None:
        with self._lock:
            self._received.clear()
            self._script.clear()

    def received(self) -> list[Received]:
        """Every request, in arrival order."""
        with self._lock:
            return list(self._received)

    def verified(self) -> list[Received]:
        return [r for r in self.received() if r.verified]

    def rejected(self) -> list[Received]:
        return [r for r in self.received() if not r.verified]

    def deliveries(self) -> list[Received]:
        """Verified requests answered 2xx."""
        return [r for r in self.received() if r.delivered]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self._received)} of {count} webhook requests after {timeout}s")
                self._lock.wait(remaining)
            return list(self._received)

    # -- HTTP -------------------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        if request.method != "POST":
            return Response.text(405, "POST only")
        failure = verification_failure(
            self.secret.encode(), request.headers, request.body, self._clock(), self.tolerance_s
        )
        if failure is not None:
            self._record(request, failure, 401)
            return Response.text(401, failure)
        with self._lock:
            answer = self._script.popleft() if self._script else Answer()
        self._record(request, "", 0 if answer.drop else answer.status)
        if answer.delay_s:
            await asyncio.sleep(answer.delay_s)
        return _response(answer)

    def _record(self, request: Request, failure: str, status: int) -> None:
        received = Received(
            request.path, dict(request.headers), request.body, not failure, failure, status, time.time()
        )
        with self._lock:
            self._received.append(received)
            self._lock.notify_all()


def _response(answer: Answer) -> Response:
    if answer.drop:
        return Response.dropped(Disconnect.CLOSE)
    headers = answer.headers
    if answer.retry_after is not None:
        headers += (("Retry-After", answer.retry_after),)
    return Response.text(answer.status, "ok" if answer.status < 300 else "scripted", headers=headers)
