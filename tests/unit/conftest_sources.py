"""Helpers shared by the `test_sources_*.py` unit tests (a plain module, not a pytest conftest).

Imported as `conftest_sources`: pytest puts this directory on sys.path for the tests in it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.domain.model import JobSpec, Snapshot
from jobwatch.sources.base import HttpResponse, Source

HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>502 Bad Gateway</h1><hr><center>nginx</center></body></html>"
)


def response(status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> HttpResponse:
    """An HttpResponse; dicts and lists are JSON-encoded, str is UTF-8, bytes are sent as they are."""
    if isinstance(body, bytes):
        raw = body
    elif isinstance(body, str):
        raw = body.encode()
    elif body is None:
        raw = b""
    else:
        raw = json.dumps(body).encode()
    return HttpResponse(status_code=status, body=raw, headers=headers or {})


def parse_ok(source: Source, body: Any, status: int = 200) -> Snapshot:
    """Parse and check the snapshot is publishable as it is: JSON-only, no NaN, round-trips."""
    snapshot = source.parse(response(status, body))
    wire = snapshot.to_wire()
    assert json.loads(json.dumps(wire, allow_nan=False)) == wire
    assert Snapshot.model_validate(wire) == snapshot
    return snapshot


def parse_error(source: Source, resp: HttpResponse) -> PollError:
    with pytest.raises(PollError) as info:
        source.parse(resp)
    return info.value


def spec(source: str, **fields: Any) -> JobSpec:
    values: dict[str, Any] = {"source": source, "endpoint": "https://db.example.com", "job_id": "job-1"}
    values.update(fields)
    return JobSpec(**values)


def facts_dict(source: Source, job: JobSpec, snapshot: Snapshot) -> dict[str, str]:
    facts = source.facts(job, snapshot)
    labels = [fact.label for fact in facts]
    assert len(labels) == len(set(labels)), f"duplicate fact labels: {labels}"
    return {fact.label: fact.value for fact in facts}


BODY_ERROR_CASES: list[tuple[str, bytes]] = [
    ("html-page", HTML_PAGE),
    ("malformed-json", b'{"status": "SUCCESS",'),
    ("json-array", b'[{"status": "SUCCESS"}]'),
    ("json-string", b'"SUCCESS"'),
    ("empty", b""),
    ("not-utf8", b"\xff\xfe\x00garbage"),
    ("deeply-nested", b"[" * 100_000),
]
"""2xx bodies that are not a JSON object: INVALID_BODY for every source."""


def check_body_errors(source: Source) -> None:
    for case, body in BODY_ERROR_CASES:
        error = parse_error(source, response(200, body))
        assert error.kind is PollErrorKind.INVALID_BODY, case
        assert error.http_status == 200, case


def check_http_errors(source: Source, error_body: Any, upstream_text: str) -> None:
    """401/403/404/429/500 with the source's own error body: kind from the status, text kept."""
    expected = {
        401: PollErrorKind.AUTH,
        403: PollErrorKind.AUTH,
        404: PollErrorKind.NOT_FOUND,
        429: PollErrorKind.RATE_LIMITED,
        500: PollErrorKind.HTTP_STATUS,
        503: PollErrorKind.HTTP_STATUS,
        422: PollErrorKind.HTTP_STATUS,
    }
    for status, kind in expected.items():
        error = parse_error(source, response(status, error_body))
        assert error.kind is kind, status
        assert error.http_status == status
        assert upstream_text in error.message, (status, error.message)
        assert upstream_text in str(error)
    limited = parse_error(source, response(429, error_body, {"retry-after": "7"}))
    assert limited.retry_after_s == 7.0
    html = parse_error(source, response(502, HTML_PAGE, {"content-type": "text/html"}))
    assert html.kind is PollErrorKind.HTTP_STATUS
    assert html.message == "502 Bad Gateway"
    empty = parse_error(source, response(500, b""))
    assert empty.kind is PollErrorKind.HTTP_STATUS
    assert "500" in empty.message
