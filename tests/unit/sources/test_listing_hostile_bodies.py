"""The listing parsers and requests of auto-discovery against hostile answers and path values.

A listing goes through the same decoder as a status body (duplicated keys are INVALID_BODY, nesting
past MAX_JSON_DEPTH is TOO_DEEP) and the Weaviate backend is one URL path segment or nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from source_testkit import nested, response, with_duplicate, with_value

from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.sources import listing
from jobwatch.sources.base import MAX_JSON_DEPTH, HttpResponse

Parser = Callable[[HttpResponse], listing.ListPage]

V2_RECORD = {"collectionName": "c", "jobId": "job-9", "state": "Completed"}
LISTS: list[tuple[str, Parser, Any, tuple[str, ...]]] = [
    (
        "zilliz-v1",
        listing.parse_zilliz_v1_list,
        {"code": 200, "data": {"tasks": [{**V2_RECORD, "state": "ImportCompleted"}], "count": 1}},
        ("data", "count"),
    ),
    (
        "zilliz-v2",
        listing.parse_zilliz_v2_list,
        {"code": 0, "data": {"records": [V2_RECORD], "count": 1}},
        ("data", "count"),
    ),
    ("milvus", listing.parse_milvus_list, {"code": 0, "data": {"records": [V2_RECORD]}}, ("code",)),
]
"""(name, parser, a valid list body, a key to state twice)."""
BY_LIST = [pytest.param(parser, body, key, id=name) for name, parser, body, key in LISTS]
WEAVIATE_LIST = [{"id": "nightly", "status": "SUCCESS", "classes": ["A"]}]


def _error(parse: Parser, raw: Any) -> PollError:
    with pytest.raises(PollError) as info:
        parse(response(200, raw))
    return info.value


@pytest.mark.parametrize(("parse", "body", "key"), BY_LIST)
def test_a_valid_list_parses(parse: Parser, body: Any, key: tuple[str, ...]) -> None:
    assert [job.job_id for job in parse(response(200, body)).jobs] == ["job-9"]


@pytest.mark.parametrize(("parse", "body", "key"), BY_LIST)
def test_a_duplicated_key_in_a_list_body_is_invalid_body(
    parse: Parser, body: Any, key: tuple[str, ...]
) -> None:
    error = _error(parse, with_duplicate(body, key, 999))
    assert error.kind is PollErrorKind.INVALID_BODY
    assert error.message == f"body names the key {key[-1]!r} twice in one object"
    record = response(200, body).body.replace(b'"state": ', b'"state": "Failed", "state": ', 1)
    assert _error(parse, record).message == "body names the key 'state' twice in one object"


@pytest.mark.parametrize(("parse", "body", "key"), BY_LIST)
def test_a_list_body_nested_past_the_limit_is_too_deep(
    parse: Parser, body: Any, key: tuple[str, ...]
) -> None:
    assert _error(parse, with_value(body, ("extra",), nested(MAX_JSON_DEPTH))).kind is PollErrorKind.TOO_DEEP
    assert _error(parse, b"[" * 100_000).kind is PollErrorKind.TOO_DEEP
    assert [job.job_id for job in parse(response(200, with_value(body, ("x",), nested(5)))).jobs] == ["job-9"]


def test_the_weaviate_backup_list_is_decoded_the_same_way() -> None:
    parse = listing.parse_weaviate_backups
    assert [job.job_id for job in parse(response(200, WEAVIATE_LIST)).jobs] == ["nightly"]
    raw = response(200, WEAVIATE_LIST).body.replace(b'"status": ', b'"status": "FAILED", "status": ', 1)
    error = _error(parse, raw)
    assert (error.kind, error.message) == (
        PollErrorKind.INVALID_BODY,
        "backup list names the key 'status' twice in one object",
    )
    deep = _error(parse, [{**WEAVIATE_LIST[0], "x": nested(MAX_JSON_DEPTH)}])
    assert (deep.kind, deep.message) == (
        PollErrorKind.TOO_DEEP,
        f"backup list nests deeper than {MAX_JSON_DEPTH} levels; no status response does",
    )
    assert _error(parse, b"[" * 100_000).kind is PollErrorKind.TOO_DEEP


@pytest.mark.parametrize(
    ("backend", "path"),
    [("s3", "s3"), ("s3?x=1", "s3%3Fx%3D1"), ("#b", "%23b"), ("%2e%2e", "%252e%252e"), ("a b", "a%20b")],
)
def test_the_backup_list_request_puts_the_backend_in_one_segment(backend: str, path: str) -> None:
    request = listing.weaviate_backups_request("https://w.example/", backend, None)
    assert request.url == f"https://w.example/v1/backups/{path}"


@pytest.mark.parametrize("backend", ["s3/x", "..", ".", "", "a\\b", "s3\r\n"])
def test_the_backup_list_request_refuses_a_backend_that_cannot_be_one_segment(backend: str) -> None:
    with pytest.raises(PollError) as info:
        listing.weaviate_backups_request("https://w.example", backend, None)
    assert info.value.kind is PollErrorKind.CONFIG
    assert info.value.message.startswith(f"backend {backend!r} cannot be one URL path segment: it ")
