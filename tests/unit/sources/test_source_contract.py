"""The contract every source keeps, run against every source from the table in `source_cases`.

Request building, status mapping, error classes and body checks are the poller's assumptions about
all sources alike; what only one source does is in its `test_source_quirks_*` module.
"""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from source_cases import SOURCE_CASES, RequestCase, SourceCase, StatusCase
from source_testkit import (
    HTML_PAGE,
    depth_of,
    facts_dict,
    nested,
    parse_error,
    parse_ok,
    response,
    spec,
    with_duplicate,
    with_value,
)

from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.domain.model import Phase
from jobwatch.sources import get_source, source_names
from jobwatch.sources.base import MAX_JSON_DEPTH


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
]
"""2xx bodies that are not a JSON object: INVALID_BODY for every source."""

PATH_SOURCES = [pytest.param(case, id=case.name) for case in SOURCE_CASES if case.path_fields]
NON_PATH_SOURCES = [pytest.param(case, id=case.name) for case in SOURCE_CASES if not case.path_fields]
ALLOWED_SEGMENTS: list[tuple[str, str]] = [
    ("?x=1", "%3Fx%3D1"),
    ("#frag", "%23frag"),
    ("%2e%2e", "%252e%252e"),
    ("%2F", "%252F"),
    ("a b", "a%20b"),
    ("ünï-😀", "%C3%BCn%C3%AF-%F0%9F%98%80"),
    ("...", "..."),
    ("a;b=c&d+e", "a%3Bb%3Dc%26d%2Be"),
    ("~user", "~user"),
]
"""Adversarial values that can be one path segment, and exactly how that segment reads on the wire."""
REFUSED_SEGMENTS: list[tuple[str, str]] = [
    ("slash", "a/b"),
    ("only-slash", "/"),
    ("dot-dot", ".."),
    ("dot", "."),
    ("empty", ""),
    ("backslash", "a\\b"),
    ("nul", "x\x00y"),
    ("crlf", "line\r\nbreak"),
    ("del", "\x7f"),
    ("c1-control", "\x85"),
    ("lone-surrogate", "\ud800"),
]
"""Values that cannot be one path segment, however encoded (see `domain.identifiers`)."""


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
    """Path segments are percent-encoded whole (a `?` or `#` in an id must not change the route);
    query and JSON values are sent as they are, `/` included (they are never a path)."""
    job_id = "a b?c#d&f%" if case.job_id_goes_in == "path" else "a b/c?d#e&f%/.."
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


# --- exact paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", BY_SOURCE)
def test_declared_path_fields_are_the_ones_in_the_url_path(case: SourceCase) -> None:
    """`path_fields` is what registration checks: it must name exactly the fields the path carries."""
    assert case.source.path_fields == case.path_fields
    markers = {"job_id": "PFjob", "backend": "PFbackend", "cluster_id": "PFcluster"}
    request = case.source.build_request(spec(case.name, **markers), None)
    in_path = {name for name, marker in markers.items() if marker in urlsplit(request.url).path}
    assert in_path == set(case.path_fields)
    assert (case.job_id_goes_in == "path") == ("job_id" in case.path_fields)


def _url(case: SourceCase, field: str, encoded: str) -> str:
    values = {"job_id": "job-1", **{k: quote(v, safe="") for k, v in case.valid_fields.items()}}
    values[field] = encoded
    return case.url_template.format(**values)


@pytest.mark.parametrize(("value", "encoded"), ALLOWED_SEGMENTS, ids=[v for v, _ in ALLOWED_SEGMENTS])
@pytest.mark.parametrize("case", PATH_SOURCES)
def test_adversarial_path_values_are_exactly_one_encoded_segment(
    case: SourceCase, value: str, encoded: str
) -> None:
    for field in case.path_fields:
        fields = {**case.valid_fields, field: value}
        request = case.source.build_request(spec(case.name, **fields), None)
        assert request.url == _url(case, field, encoded), field
        assert request.params is None


@pytest.mark.parametrize("value", [v for _, v in REFUSED_SEGMENTS], ids=[k for k, _ in REFUSED_SEGMENTS])
@pytest.mark.parametrize("case", PATH_SOURCES)
def test_values_that_cannot_be_one_segment_are_config_errors_at_poll_time(
    case: SourceCase, value: str
) -> None:
    for field in case.path_fields:
        fields = {**case.valid_fields, field: value}
        if field in case.required_fields and not value:
            continue  # an empty required field is the "needs a backend" CONFIG error
        with pytest.raises(PollError) as info:
            case.source.build_request(spec(case.name, **fields), "k")
        error = info.value
        assert error.kind is PollErrorKind.CONFIG
        wire = "jobId" if field == "job_id" else field
        assert error.message.startswith(f"{wire} {value!r} cannot be one URL path segment: it "), (
            error.message
        )
        assert "\n" not in str(error) and "\x00" not in str(error)


@pytest.mark.parametrize("value", ["a/b", "..", ".", "a\\b"])
@pytest.mark.parametrize("case", NON_PATH_SOURCES)
def test_sources_without_path_fields_send_any_id_as_data(case: SourceCase, value: str) -> None:
    request = case.source.build_request(spec(case.name, job_id=value, **case.valid_fields), None)
    assert request.url == case.url_template
    sent = request.params if case.job_id_goes_in == "params" else request.json
    assert sent is not None and sent["jobId"] == value


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


@pytest.mark.parametrize(
    "body", [pytest.param(b"[" * 100_000, id="array"), pytest.param(b'{"a":' * 100_000, id="object")]
)
@pytest.mark.parametrize("case", BY_SOURCE)
def test_nesting_that_exhausts_the_parser_is_too_deep(case: SourceCase, body: bytes) -> None:
    error = parse_error(case.source, response(200, body))
    assert error.kind is PollErrorKind.TOO_DEEP
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


# --- hostile bodies: another job, duplicated keys, deep nesting -----------------------------------


@pytest.mark.parametrize("case", BY_SOURCE)
def test_every_source_says_where_its_body_names_the_job(case: SourceCase) -> None:
    assert case.terminal is not None and case.id_at and case.status_at
    assert with_value(case.terminal, case.id_at, "probe") != case.terminal  # the id sits where it says


@pytest.mark.parametrize("case", BY_SOURCE)
def test_a_terminal_body_about_this_job_parses(case: SourceCase) -> None:
    snapshot = case.source.parse(response(200, case.terminal), expect_id="job-1")
    assert snapshot.phase.terminal


@pytest.mark.parametrize("case", BY_SOURCE)
def test_a_terminal_body_about_another_job_is_invalid_body(case: SourceCase) -> None:
    """A confused or hostile upstream answering with another job's final status moves nothing."""
    body = with_value(case.terminal, case.id_at, "job-2")
    with pytest.raises(PollError) as info:
        case.source.parse(response(200, body), expect_id="job-1")
    assert info.value.kind is PollErrorKind.INVALID_BODY
    assert info.value.message == "the answer is about job 'job-2', not 'job-1'"
    # Ids are opaque: a case or whitespace variant is another job too.
    for variant in ("JOB-1", " job-1", "job-1 "):
        with pytest.raises(PollError):
            case.source.parse(
                response(200, with_value(case.terminal, case.id_at, variant)), expect_id="job-1"
            )


@pytest.mark.parametrize("case", BY_SOURCE)
def test_without_an_expected_id_any_named_job_parses(case: SourceCase) -> None:
    """`expect_id` is optional: callers that have no spec (samples, tools) keep working."""
    assert case.source.parse(response(200, with_value(case.terminal, case.id_at, "job-2"))).phase.terminal


@pytest.mark.parametrize("absent", ["missing", None, ""])
@pytest.mark.parametrize("case", BY_SOURCE)
def test_a_body_that_names_no_job_is_accepted(case: SourceCase, absent: str | None) -> None:
    body = (
        with_value(case.terminal, case.id_at)
        if absent == "missing"
        else with_value(case.terminal, case.id_at, absent)
    )
    assert case.source.parse(response(200, body), expect_id="job-1").phase.terminal


@pytest.mark.parametrize("case", BY_SOURCE)
def test_an_integer_id_is_compared_as_its_decimal_text(case: SourceCase) -> None:
    """Milvus ids are int64; a build that sends one as a JSON number still names the same job."""
    body = with_value(case.terminal, case.id_at, 451910421389390804)
    assert case.source.parse(response(200, body), expect_id="451910421389390804").phase.terminal
    with pytest.raises(PollError) as info:
        case.source.parse(response(200, body), expect_id="451910421389390805")
    assert info.value.message == "the answer is about job '451910421389390804', not '451910421389390805'"


@pytest.mark.parametrize(
    "value",
    [4.519104213893908e17, 1.0, True, ["job-1"], {"id": "job-1"}],
    ids=["float", "one", "bool", "array", "object"],
)
@pytest.mark.parametrize("case", BY_SOURCE)
def test_an_id_that_is_not_text_or_an_integer_is_drift(case: SourceCase, value: Any) -> None:
    error = parse_error(case.source, response(200, with_value(case.terminal, case.id_at, value)))
    assert error.kind is PollErrorKind.INVALID_BODY
    assert ".".join(case.id_at) + " is " in error.message


@pytest.mark.parametrize("case", BY_SOURCE)
def test_a_duplicated_status_key_is_invalid_body(case: SourceCase) -> None:
    """`{"status": "FAILED", "status": "SUCCESS"}`: which one counts depends on the parser, so none does."""
    raw = with_duplicate(case.terminal, case.status_at, case.conflicting_status)
    error = parse_error(case.source, response(200, raw))
    assert error.kind is PollErrorKind.INVALID_BODY
    assert error.message == f"body names the key {case.status_at[-1]!r} twice in one object"
    assert error.http_status == 200


@pytest.mark.parametrize("case", BY_SOURCE)
def test_a_duplicated_id_key_is_invalid_body_even_when_one_names_this_job(case: SourceCase) -> None:
    raw = with_duplicate(case.terminal, case.id_at, "job-2")
    error = parse_error(case.source, response(200, raw))
    assert error.kind is PollErrorKind.INVALID_BODY
    assert repr(case.id_at[-1]) in error.message


@pytest.mark.parametrize("case", BY_SOURCE)
def test_a_duplicated_key_deep_inside_is_invalid_body(case: SourceCase) -> None:
    raw = response(200, case.terminal).body.replace(b"{", b'{"dup": 1, "dup": 2, ', 1)
    assert parse_error(case.source, response(200, raw)).kind is PollErrorKind.INVALID_BODY
    nested_dup = with_value(case.terminal, ("extra",), {"inner": [{"k": 1}]})
    raw = response(200, nested_dup).body.replace(b'{"k": 1}', b'{"k": 1, "k": 1}')
    error = parse_error(case.source, response(200, raw))
    assert error.message == "body names the key 'k' twice in one object"


@pytest.mark.parametrize("case", BY_SOURCE)
def test_nesting_deeper_than_the_limit_is_too_deep(case: SourceCase) -> None:
    """One level past MAX_JSON_DEPTH (in an unknown field, which the parser would otherwise ignore)."""
    deep = with_value(case.terminal, ("extra",), nested(MAX_JSON_DEPTH))
    assert depth_of(deep) == MAX_JSON_DEPTH + 1
    error = parse_error(case.source, response(200, deep))
    assert error.kind is PollErrorKind.TOO_DEEP
    assert error.message == f"body nests deeper than {MAX_JSON_DEPTH} levels; no status response does"
    at_limit = with_value(case.terminal, ("extra",), nested(MAX_JSON_DEPTH - 1))
    assert depth_of(at_limit) == MAX_JSON_DEPTH
    assert case.source.parse(response(200, at_limit), expect_id="job-1").phase.terminal


@pytest.mark.parametrize("case", BY_SOURCE)
def test_many_brackets_at_a_shallow_depth_parse(case: SourceCase) -> None:
    """The depth walk runs (more brackets than the limit) and finds nothing: wide is not deep."""
    wide = with_value(case.terminal, ("extra",), [[{"a": [1]}] for _ in range(200)])
    assert case.source.parse(response(200, wide), expect_id="job-1").phase.terminal
