"""The contract every source keeps, run against every source from the table in `source_cases`.

Request building, status mapping, error classes and body checks are the poller's assumptions about
all sources alike; what only one source does is in its `test_source_quirks_*` module.
"""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import quote

import pytest
from source_cases import SOURCE_CASES, RequestCase, SourceCase, StatusCase
from source_testkit import HTML_PAGE, facts_dict, parse_error, parse_ok, response, spec

from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.domain.model import Phase
from jobwatch.sources import get_source, source_names


def _cases(rows: list[tuple[SourceCase, Any, str]]) -> list[Any]:
    """pytest params named `<source>-<label>`."""
    return [pytest.param(case, value, id=f"{case.name}-{label}") for case, value, label in rows]


BY_SOURCE = [pytest.param(case, id=case.name) for case in SOURCE_CASES]
STATUSES = _cases([(case, st, st.label) for case in SOURCE_CASES for st in case.statuses])
UNKNOWN_STATUSES = _cases(
    [(case, (word, body), word) for case in SOURCE_CASES for word, body in case.unknown_statuses]
)
DRIFT = _cases([(case, drift, str(i)) for case in SOURCE_CASES for i, drift in enumerate(case.drift)])
ERROR_BODIES = _cases(
    [(case, error, str(i)) for case in SOURCE_CASES for i, error in enumerate(case.error_bodies)]
)
ENVELOPE_CODES = _cases(
    [(case, codes, f"{codes[0]}-{codes[1]}") for case in SOURCE_CASES for codes in case.envelope_codes]
)
WITH_REQUIRED_FIELDS = [pytest.param(case, id=case.name) for case in SOURCE_CASES if case.required_fields]

HTTP_STATUS_KINDS = {
    401: PollErrorKind.AUTH,
    403: PollErrorKind.AUTH,
    404: PollErrorKind.NOT_FOUND,
    429: PollErrorKind.RATE_LIMITED,
    500: PollErrorKind.HTTP_STATUS,
    503: PollErrorKind.HTTP_STATUS,
    422: PollErrorKind.HTTP_STATUS,
}
NOT_AN_OBJECT: list[tuple[str, bytes]] = [
    ("html-page", HTML_PAGE),
    ("malformed-json", b'{"status": "SUCCESS",'),
    ("json-array", b'[{"status": "SUCCESS"}]'),
    ("json-string", b'"SUCCESS"'),
    ("empty", b""),
    ("not-utf8", b"\xff\xfe\x00garbage"),
    ("deeply-nested", b"[" * 100_000),
]
"""2xx bodies that are not a JSON object: INVALID_BODY for every source."""


def test_every_source_has_a_row() -> None:
    assert sorted(case.name for case in SOURCE_CASES) == source_names()


@pytest.mark.parametrize("case", BY_SOURCE)
def test_registered_with_declared_contract(case: SourceCase) -> None:
    source = get_source(case.name)
    assert source is importlib.import_module(f"jobwatch.sources.{case.name.replace('-', '_')}").SOURCE
    assert source.name == case.name
    assert (source.title, source.success_word) == (case.title, case.success_word)
    assert source.required_fields == case.required_fields
    assert source.max_requests_per_second == case.max_requests_per_second


# --- request -------------------------------------------------------------------------------------


def _check_request(case: SourceCase, expected: RequestCase) -> None:
    request = case.source.build_request(spec(case.name, **expected.fields), expected.api_key)
    assert request.method == expected.method
    assert request.url == expected.url
    assert request.headers == expected.headers
    assert request.params == expected.params
    assert request.json == expected.json


@pytest.mark.parametrize("case", BY_SOURCE)
def test_request_with_key(case: SourceCase) -> None:
    _check_request(case, case.with_key)


@pytest.mark.parametrize("case", BY_SOURCE)
def test_request_without_key_sends_no_credentials(case: SourceCase) -> None:
    _check_request(case, case.without_key)
    request = case.source.build_request(spec(case.name, **case.without_key.fields), None)
    assert "Authorization" not in request.headers
    assert "Api-Key" not in request.headers


@pytest.mark.parametrize("case", BY_SOURCE)
def test_job_id_is_sent_verbatim(case: SourceCase) -> None:
    """Path segments are percent-encoded whole (a `/` or `?` in an id must not change the route)."""
    job_id = "a b/c?d#e&f%"
    request = case.source.build_request(spec(case.name, job_id=job_id, **case.valid_fields), None)
    if case.job_id_goes_in == "path":
        assert quote(job_id, safe="") in request.url
        assert job_id not in request.url
    elif case.job_id_goes_in == "params":
        assert request.params is not None
        assert request.params["jobId"] == job_id
    else:
        assert request.json is not None
        assert request.json["jobId"] == job_id


@pytest.mark.parametrize("case", WITH_REQUIRED_FIELDS)
def test_request_without_required_fields_is_config_error(case: SourceCase) -> None:
    with pytest.raises(PollError) as info:
        case.source.build_request(spec(case.name), "k")
    assert info.value.kind is PollErrorKind.CONFIG


# --- status --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("case", "status"), STATUSES)
def test_every_documented_status_maps(case: SourceCase, status: StatusCase) -> None:
    snapshot = parse_ok(case.source, status.body)
    assert (snapshot.phase, snapshot.status, snapshot.status_known) == (status.phase, status.status, True)
    assert snapshot.progress == status.progress
    assert snapshot.progress is None or 0.0 <= snapshot.progress <= 100.0


@pytest.mark.parametrize(("case", "unknown"), UNKNOWN_STATUSES)
def test_unknown_status_is_running_and_flagged(case: SourceCase, unknown: tuple[str, Any]) -> None:
    word, body = unknown
    snapshot = parse_ok(case.source, body)
    assert (snapshot.phase, snapshot.status, snapshot.status_known) == (Phase.RUNNING, word, False)


@pytest.mark.parametrize("case", BY_SOURCE)
def test_facts_never_raise(case: SourceCase) -> None:
    """Facts for every parseable status, documented or not: strings only, one per label."""
    job = spec(case.name, **case.valid_fields)
    bodies = [st.body for st in case.statuses] + [body for _, body in case.unknown_statuses]
    for body in bodies:
        facts = facts_dict(case.source, job, parse_ok(case.source, body))
        assert all(isinstance(value, str) and value for value in facts.values()), facts


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("http_status", HTTP_STATUS_KINDS)
@pytest.mark.parametrize(("case", "error"), ERROR_BODIES)
def test_http_status_sets_the_error_kind(case: SourceCase, error: tuple[Any, str], http_status: int) -> None:
    """401/403/404/429/5xx/422 with the source's own error body: kind from the status, text kept."""
    body, upstream_text = error
    failure = parse_error(case.source, response(http_status, body))
    assert failure.kind is HTTP_STATUS_KINDS[http_status]
    assert failure.http_status == http_status
    assert upstream_text in failure.message, failure.message
    assert upstream_text in str(failure)


@pytest.mark.parametrize(("case", "error"), ERROR_BODIES)
def test_rate_limit_keeps_retry_after(case: SourceCase, error: tuple[Any, str]) -> None:
    limited = parse_error(case.source, response(429, error[0], {"retry-after": "7"}))
    assert limited.retry_after_s == 7.0


@pytest.mark.parametrize("case", BY_SOURCE)
def test_html_error_page_is_http_status_with_its_title(case: SourceCase) -> None:
    html = parse_error(case.source, response(502, HTML_PAGE, {"content-type": "text/html"}))
    assert html.kind is PollErrorKind.HTTP_STATUS
    assert html.message == "502 Bad Gateway"


@pytest.mark.parametrize("case", BY_SOURCE)
def test_empty_error_body_is_http_status(case: SourceCase) -> None:
    empty = parse_error(case.source, response(500, b""))
    assert empty.kind is PollErrorKind.HTTP_STATUS
    assert "500" in empty.message


@pytest.mark.parametrize("body", [pytest.param(body, id=label) for label, body in NOT_AN_OBJECT])
@pytest.mark.parametrize("case", BY_SOURCE)
def test_non_object_body_is_invalid(case: SourceCase, body: bytes) -> None:
    error = parse_error(case.source, response(200, body))
    assert error.kind is PollErrorKind.INVALID_BODY
    assert error.http_status == 200


@pytest.mark.parametrize(("case", "drift"), DRIFT)
def test_schema_drift_is_invalid_body(case: SourceCase, drift: tuple[Any, str]) -> None:
    payload, where = drift
    error = parse_error(case.source, response(200, payload))
    assert error.kind is PollErrorKind.INVALID_BODY
    assert where in error.message


@pytest.mark.parametrize(("case", "codes"), ENVELOPE_CODES)
def test_envelope_code_sets_the_error_kind(
    case: SourceCase, codes: tuple[int, int, PollErrorKind, str]
) -> None:
    http, code, kind, message = codes
    error = parse_error(case.source, response(http, {"code": code, "message": message}))
    assert (error.kind, error.api_code, error.http_status) == (kind, code, http)
    assert error.message == message
