"""zilliz-import-v1: derived phases, the 0..1 fraction, placeholders, envelope codes, request, facts."""

from __future__ import annotations

from typing import Any

import pytest
from conftest_sources import (
    check_body_errors,
    check_http_errors,
    facts_dict,
    parse_error,
    parse_ok,
    response,
    spec,
)

from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.domain.model import Phase
from jobwatch.sources import get_source
from jobwatch.sources.zilliz_import_v1 import SOURCE


def file_entry(ready: Any = 0, error: Any = None, name: str = "a/1.parquet", **extra: Any) -> dict[str, Any]:
    entry = {
        "fileName": name,
        "fileSize": 1000,
        "readyPercentage": ready,
        "completeTime": None,
        "errorMessage": error,
    }
    entry.update(extra)
    return entry


def envelope(code: Any = 200, **data: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "collectionName": "medium_articles",
        "fileName": "a/1.parquet",
        "fileSize": 19599887,
        "readyPercentage": 0,
        "completeTime": None,
        "errorMessage": None,
        "jobId": "job-1",
        "details": [file_entry()],
    }
    payload.update(data)
    return {"code": code, "data": payload}


def test_registered_with_declared_contract() -> None:
    assert get_source("zilliz-import-v1") is SOURCE
    assert (SOURCE.name, SOURCE.title, SOURCE.success_word) == (
        "zilliz-import-v1",
        "Zilliz Cloud import",
        "import finished",
    )
    assert SOURCE.required_fields == ("cluster_id",)
    assert SOURCE.max_requests_per_second == 20.0


@pytest.mark.parametrize(
    ("data", "phase", "status", "progress"),
    [
        ({"readyPercentage": 0}, Phase.RUNNING, "ImportRunning", 0.0),
        ({"readyPercentage": 0.01}, Phase.RUNNING, "ImportRunning", 1.0),
        ({"readyPercentage": 0.5}, Phase.RUNNING, "ImportRunning", 50.0),
        ({"readyPercentage": 0.999}, Phase.RUNNING, "ImportRunning", 99.9),
        (
            {"readyPercentage": 1, "completeTime": "2023-10-28T06:51:49Z"},
            Phase.SUCCEEDED,
            "ImportCompleted",
            100.0,
        ),
        ({"readyPercentage": 1.0, "completeTime": None}, Phase.SUCCEEDED, "ImportCompleted", 100.0),
        ({"readyPercentage": 0.3, "errorMessage": "bad parquet"}, Phase.FAILED, "ImportFailed", None),
        # Failure is checked first: an error at 100 % is still a failure.
        ({"readyPercentage": 1, "errorMessage": "index build failed"}, Phase.FAILED, "ImportFailed", None),
        # A failed job may not report a fraction at all.
        ({"readyPercentage": None, "errorMessage": "bad parquet"}, Phase.FAILED, "ImportFailed", None),
    ],
)
def test_phase_is_derived_failure_first(
    data: dict[str, Any], phase: Phase, status: str, progress: float | None
) -> None:
    snapshot = parse_ok(SOURCE, envelope(**data))
    assert (snapshot.phase, snapshot.status, snapshot.progress) == (phase, status, progress)
    assert snapshot.status_known is True
    assert snapshot.started_at is None


def test_completed_details_and_time() -> None:
    snapshot = parse_ok(
        SOURCE,
        envelope(
            readyPercentage=1,
            completeTime="2023-10-28T06:51:49Z",
            details=[file_entry(1, completeTime="2023-10-28T06:51:49Z", fileSize=26571700)],
        ),
    )
    assert snapshot.completed_at == "2023-10-28T06:51:49Z"
    assert snapshot.error is None
    assert snapshot.details == {
        "collectionName": "medium_articles",
        "collections": ["medium_articles"],
        "fileName": "a/1.parquet",
        "fileSize": 19599887,
        "files": [
            {
                "fileName": "a/1.parquet",
                "fileSize": 26571700,
                "progress": 100.0,
                "completeTime": "2023-10-28T06:51:49Z",
                "error": None,
            }
        ],
        "filesTotal": 1,
        "filesDone": 1,
        "filesFailed": 0,
    }


def test_unknown_type_placeholders_are_null() -> None:
    snapshot = parse_ok(
        SOURCE,
        envelope(
            completeTime="Unknown type",
            errorMessage="Unknown type",
            details=[file_entry(0, "Unknown type", completeTime="Unknown type")],
        ),
    )
    assert snapshot.phase is Phase.RUNNING
    assert snapshot.error is None
    assert snapshot.completed_at is None
    assert snapshot.details["files"][0]["error"] is None
    assert snapshot.details["filesFailed"] == 0


def test_per_file_counts_and_cap() -> None:
    files = [file_entry(1, name=f"f{i}") for i in range(40)]
    files += [file_entry(0.5, name=f"g{i}") for i in range(12)]
    files += [file_entry(0.2, "broken", name=f"h{i}") for i in range(3)]
    snapshot = parse_ok(SOURCE, envelope(readyPercentage=0.8, details=files))
    details = snapshot.details
    assert (details["filesTotal"], details["filesDone"], details["filesFailed"]) == (55, 40, 3)
    assert len(details["files"]) == 50
    assert details["filesTruncated"] == 5
    # Failed files are kept ahead of healthy ones when the list is capped.
    assert [item["fileName"] for item in details["files"][:4]] == ["h0", "h1", "h2", "f0"]
    facts = facts_dict(SOURCE, spec("zilliz-import-v1", cluster_id="in01-x"), snapshot)
    assert facts["Failed files"] == "h0 (broken); h1 (broken); h2 (broken)"
    assert facts["Files"] == "40/55 done · 3 failed"


@pytest.mark.parametrize("ready", [1.5, 50, 100, -0.1, "0.5", True])
def test_fraction_outside_0_1_or_wrong_type_is_drift(ready: Any) -> None:
    error = parse_error(SOURCE, response(200, envelope(readyPercentage=ready)))
    assert error.kind is PollErrorKind.INVALID_BODY
    assert "readyPercentage" in error.message


def test_file_fraction_is_checked_too() -> None:
    error = parse_error(SOURCE, response(200, envelope(details=[file_entry(42)])))
    assert error.kind is PollErrorKind.INVALID_BODY
    assert "data.details[0].readyPercentage" in error.message


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        (envelope(readyPercentage=None), "data.readyPercentage is missing"),
        ({"code": 200}, "data is null"),
        ({"code": 200, "data": []}, "data is an array"),
        ({"data": {}}, "code is missing"),
        ({"code": "ok", "data": {}}, "code is a string"),
        ({"code": None, "data": {}}, "code is null"),
        (envelope(errorMessage=5), "errorMessage"),
        (envelope(fileSize="big"), "fileSize"),
        (envelope(details={"a": 1}), "details is an object"),
        (envelope(details=["x"]), "data.details[0] is a string"),
        (envelope(completeTime=17), "completeTime"),
        # The doc's copy-paste failure example: success code, no data, a message.
        ({"code": 0, "message": "The token is illegal."}, "The token is illegal."),
    ],
)
def test_schema_drift_is_invalid_body(payload: Any, where: str) -> None:
    error = parse_error(SOURCE, response(200, payload))
    assert error.kind is PollErrorKind.INVALID_BODY
    assert where in error.message


def test_success_code_zero_is_accepted() -> None:
    assert parse_ok(SOURCE, envelope(code=0)).phase is Phase.RUNNING
    assert parse_ok(SOURCE, envelope(code="200")).phase is Phase.RUNNING


@pytest.mark.parametrize(
    ("http", "code", "kind"),
    [
        (200, 80010, PollErrorKind.API_ERROR),
        (200, 80001, PollErrorKind.AUTH),
        (200, 80002, PollErrorKind.AUTH),
        (200, 21119, PollErrorKind.AUTH),
        (401, 80001, PollErrorKind.AUTH),
        (400, 80002, PollErrorKind.AUTH),  # a generic status refined by the auth code
        (200, 2100, PollErrorKind.API_ERROR),  # Milvus's not-found code means nothing on Zilliz
        (200, 65535, PollErrorKind.API_ERROR),
    ],
)
def test_envelope_codes(http: int, code: int, kind: PollErrorKind) -> None:
    error = parse_error(SOURCE, response(http, {"code": code, "message": f"message {code}"}))
    assert (error.kind, error.api_code, error.http_status) == (kind, code, http)
    assert error.message == f"message {code}"


def test_api_error_without_message_names_the_code() -> None:
    error = parse_error(SOURCE, response(200, {"code": 80010}))
    assert error.kind is PollErrorKind.API_ERROR
    assert "80010" in error.message


def test_http_errors_keep_upstream_text() -> None:
    check_http_errors(SOURCE, {"code": 65535, "message": "controller unavailable"}, "controller unavailable")


def test_non_json_bodies_are_invalid() -> None:
    check_body_errors(SOURCE)


def test_build_request() -> None:
    request = SOURCE.build_request(
        spec(
            "zilliz-import-v1",
            endpoint="https://controller.api.gcp-us-west1.zillizcloud.com/",
            job_id="job-abc&x=1",
            cluster_id="in01-123",
        ),
        "user:pass",
    )
    assert request.method == "GET"
    assert (
        request.url == "https://controller.api.gcp-us-west1.zillizcloud.com/v1/vector/collections/import/get"
    )
    assert request.params == {"jobId": "job-abc&x=1", "clusterId": "in01-123"}
    assert request.headers == {"Accept": "application/json", "Authorization": "Bearer user:pass"}
    anonymous = SOURCE.build_request(spec("zilliz-import-v1", cluster_id="in01-123"), None)
    assert "Authorization" not in anonymous.headers


def test_build_request_without_cluster_is_config_error() -> None:
    with pytest.raises(PollError) as info:
        SOURCE.build_request(spec("zilliz-import-v1"), "k")
    assert info.value.kind is PollErrorKind.CONFIG


def test_facts() -> None:
    snapshot = parse_ok(
        SOURCE,
        envelope(
            readyPercentage=0.4,
            fileSize=26571700,
            details=[file_entry(1, name="a"), file_entry(0.2, "row 7: bad vector", name="b"), file_entry(0)],
        ),
    )
    assert facts_dict(SOURCE, spec("zilliz-import-v1", cluster_id="in01-x"), snapshot) == {
        "Files": "1/3 done · 1 failed",
        "Size": "25.3 MiB",
        "Failed files": "b (row 7: bad vector)",
    }
