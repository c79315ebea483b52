"""The source interface: one module per upstream job type implements it.

A source is pure: it turns a job spec into an HTTP request description and an HTTP response into a
`Snapshot` (or raises `PollError`). The poller owns all I/O, so every source is unit-testable on
recorded bodies and shares the poller's connection pool, timeouts and concurrency limits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.domain.model import JobSpec, Snapshot


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] | None = None
    json: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status_code: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    """Lower-cased header names."""


@dataclass(frozen=True, slots=True)
class Fact:
    """One labelled line of a rendered message (Slack field, email line)."""

    label: str
    value: str


class Source(Protocol):
    """What a job source must provide. Declared limits let the poller stay polite per endpoint."""

    name: ClassVar[str]
    """Registry name, e.g. `weaviate-export`; also the SNS `source` attribute."""
    title: ClassVar[str]
    """Human name of the job kind, e.g. `Weaviate export`."""
    required_fields: ClassVar[tuple[str, ...]]
    """JobSpec fields besides endpoint and job_id that must be set (`backend`, `cluster_id`)."""
    success_word: ClassVar[str]
    """How a success reads for this kind: `export finished`, `import finished`."""
    max_requests_per_second: ClassVar[float | None]
    """Documented upstream rate limit per endpoint, if any."""

    def build_request(self, spec: JobSpec, api_key: str | None) -> HttpRequest: ...

    def parse(self, response: HttpResponse) -> Snapshot: ...

    def facts(self, spec: JobSpec, snapshot: Snapshot) -> list[Fact]: ...


def decode_json_object(response: HttpResponse) -> dict[str, Any]:
    """Decode a body that must be a JSON object; anything else is INVALID_BODY (with a short excerpt)."""
    try:
        data = json.loads(response.body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        excerpt = response.body[:80].decode("utf-8", "replace")
        ctype = response.headers.get("content-type", "unknown content type")
        raise PollError(
            PollErrorKind.INVALID_BODY,
            f"body is not JSON ({ctype}): {excerpt!r}",
            http_status=response.status_code,
        ) from None
    if not isinstance(data, dict):
        raise PollError(
            PollErrorKind.INVALID_BODY,
            f"expected a JSON object, got {type(data).__name__}",
            http_status=response.status_code,
        )
    return data


def retry_after_seconds(headers: dict[str, str]) -> float | None:
    """Parse a `Retry-After` given in seconds; HTTP-date forms are rare upstream and treated as unknown."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def http_status_error(response: HttpResponse, message: str) -> PollError:
    """Classify a non-2xx status into the PollError kind that decides what the poller does next."""
    status = response.status_code
    if status in (401, 403):
        kind = PollErrorKind.AUTH
    elif status == 404:
        kind = PollErrorKind.NOT_FOUND
    elif status == 429:
        kind = PollErrorKind.RATE_LIMITED
    else:
        kind = PollErrorKind.HTTP_STATUS
    return PollError(kind, message, http_status=status, retry_after_s=retry_after_seconds(response.headers))
