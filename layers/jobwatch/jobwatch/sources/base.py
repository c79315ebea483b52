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
    path_fields: ClassVar[tuple[str, ...]]
    """JobSpec fields that go into the URL path (`backend`, `job_id`): each must be exactly one segment,
    checked at registration and again in `build_request` (`domain.identifiers.path_segment_problem`)."""

    def build_request(self, spec: JobSpec, api_key: str | None) -> HttpRequest: ...

    def parse(self, response: HttpResponse, expect_id: str | None = None) -> Snapshot:
        """The snapshot the response means, or PollError.

        With `expect_id` (the poller passes the spec's job id), a body that names another job is
        INVALID_BODY, never a snapshot; a body that names no job at all is accepted (each source says
        where its id sits and when it can be absent).
        """
        ...

    def facts(self, spec: JobSpec, snapshot: Snapshot) -> list[Fact]: ...


MAX_JSON_DEPTH = 32
"""Deepest nesting a decoded body may have ({} and [] each count one level). The deepest real status
or list body in shared/reference nests 4 levels (Weaviate `shardStatus.<class>.<shard>`, the Milvus
`data.details[]` entries); 32 leaves a margin of 8x for fields upstreams may add. Deeper is TOO_DEEP."""


class DuplicateKeyError(Exception):
    """A JSON object names one key twice: which value counts depends on the parser, so neither does."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`object_pairs_hook` that refuses duplicated keys (the C scanner still does the decoding)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKeyError(key)
            seen.add(key)
    return obj


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys)
"""Built once: `json.loads(..., object_pairs_hook=...)` would build a decoder per call (about 4 us)."""


_NOT_STRUCTURE = bytes(byte for byte in range(256) if byte not in b'"{}[]')
_PARENS = bytes.maketrans(b"{[}]", b"(())")


def nests_deeper_than(json_text: bytes, limit: int) -> bool:
    """Whether valid UTF-8 JSON text nests more than `limit` levels ({} and [] count one each).

    An iterative walk over the text's bracket skeleton, at C speed, with early exit: escaped
    backslashes and quotes are dropped, everything but quotes and brackets is deleted, strings
    (quote pairs and whatever brackets they held) are removed, and each pass of `replace("()", "")`
    then strips exactly the innermost level, so the skeleton is empty after `depth` passes. Measured
    3x cheaper than walking the decoded objects, and no recursion on hostile input. Only valid
    JSON is given (it runs after decoding), so every quote left after the escapes is a delimiter.
    """
    if b"\\" in json_text:
        json_text = json_text.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = json_text.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in skeleton:  # strings that held brackets: drop them with their contents
        skeleton = b"".join(skeleton.split(b'"')[::2])
    skeleton = skeleton.translate(_PARENS)
    for _ in range(limit):
        if not skeleton:
            return False
        skeleton = skeleton.replace(b"()", b"")
    return bool(skeleton)


def decode_json(response: HttpResponse, what: str = "body") -> Any:
    """The one JSON decoder for upstream bodies: strict about duplicated keys and nesting depth.

    Not JSON, and JSON naming a key twice in one object, are INVALID_BODY (a duplicated `status` could
    read as SUCCESS to us and as FAILED to the upstream's own tools); nesting deeper than
    MAX_JSON_DEPTH, or deep enough to exhaust the parser's recursion, is TOO_DEEP. The depth walk is
    skipped when the body has fewer brackets than the limit (a byte count in C), so an ordinary status
    body pays only for the duplicate check.
    """
    body = response.body
    try:
        # As json.loads does for bytes: UTF-8/16/32 by the first bytes, lone surrogates kept for the parser.
        encoding = json.detect_encoding(body)
        text = body.decode(encoding, "surrogatepass")
        data = _DECODER.decode(text)
    except DuplicateKeyError as exc:
        raise PollError(
            PollErrorKind.INVALID_BODY,
            f"{what} names the key {exc.key!r} twice in one object",
            http_status=response.status_code,
        ) from None
    except RecursionError:
        raise _too_deep(response, what) from None
    except (ValueError, UnicodeDecodeError):
        excerpt = body[:80].decode("utf-8", "replace")
        ctype = response.headers.get("content-type", "unknown content type")
        raise PollError(
            PollErrorKind.INVALID_BODY,
            f"{what} is not JSON ({ctype}): {excerpt!r}",
            http_status=response.status_code,
        ) from None
    if body.count(b"{") + body.count(b"[") > MAX_JSON_DEPTH:  # fewer brackets cannot nest deeper
        utf8 = body if encoding.startswith("utf-8") else text.encode("utf-8", "surrogatepass")
        if nests_deeper_than(utf8, MAX_JSON_DEPTH):
            raise _too_deep(response, what)
    return data


def _too_deep(response: HttpResponse, what: str) -> PollError:
    return PollError(
        PollErrorKind.TOO_DEEP,
        f"{what} nests deeper than {MAX_JSON_DEPTH} levels; no status response does",
        http_status=response.status_code,
    )


def decode_json_object(response: HttpResponse) -> dict[str, Any]:
    """Decode a body that must be a JSON object; anything else is INVALID_BODY (with a short excerpt)."""
    data = decode_json(response)
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
