"""Errors that carry enough context to be logged in one line and acted on without a traceback."""

from __future__ import annotations

from enum import StrEnum


class PollErrorKind(StrEnum):
    """Why a poll did not produce a snapshot. None of these is a change of the job's state."""

    HTTP_STATUS = "HTTP_STATUS"
    """Upstream answered with a non-success HTTP status (5xx, 422...)."""
    RATE_LIMITED = "RATE_LIMITED"
    AUTH = "AUTH"
    """401/403 or an API error code that means the credentials are wrong."""
    NOT_FOUND = "NOT_FOUND"
    """Upstream says the job does not exist (404, Milvus code 2100...)."""
    API_ERROR = "API_ERROR"
    """HTTP success carrying an error code in the body (Zilliz/Milvus convention)."""
    INVALID_BODY = "INVALID_BODY"
    """Not JSON, HTML error page, JSON that does not match the documented shape, JSON naming a key
    twice in one object, or an answer about another job than the one asked about."""
    TIMEOUT = "TIMEOUT"
    CONNECTION = "CONNECTION"
    CONFIG = "CONFIG"
    """jobwatch cannot build the request (missing secret, refused endpoint)."""
    TOO_LARGE = "TOO_LARGE"
    """The answer was bigger than the body cap (after decompression): a bomb or a broken upstream."""
    TOO_SLOW = "TOO_SLOW"
    """The whole answer did not arrive within the total deadline (a slow drip, an endless body)."""
    TOO_DEEP = "TOO_DEEP"
    """The JSON nests deeper than any status response does (`sources.base.MAX_JSON_DEPTH` levels), or
    deep enough to exhaust the parser's recursion: a hostile or broken upstream, never a job state."""


class PollError(Exception):
    """A poll that failed. `str()` is a single line naming the cause, safe to log and show."""

    def __init__(
        self,
        kind: PollErrorKind,
        message: str,
        *,
        http_status: int | None = None,
        api_code: int | str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.http_status = http_status
        self.api_code = api_code
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        parts = [self.kind.value]
        if self.http_status is not None:
            parts.append(f"HTTP {self.http_status}")
        if self.api_code is not None:
            parts.append(f"code {self.api_code}")
        head = " ".join(parts)
        text = " ".join(self.message.split())
        if len(text) > 300:
            text = text[:297] + "..."
        return f"{head}: {text}" if text else head


class RegistrationError(ValueError):
    """A job registration that was refused; nothing was written."""
