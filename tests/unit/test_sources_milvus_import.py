"""milvus-import: Milvus REST v2 describe, the 2100 not-found code, allFilesCompleted, request, facts."""

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

from jobwatch.domain.errors import PollErrorKind
from jobwatch.domain.model import Phase
from jobwatch.sources import get_source
from jobwatch.sources.milvus_import import SOURCE


def task(state: Any = "InProgress", name: str = "[1.parquet]", **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "completeTime": "",
        "fileName": name,
        "fileSize": 6776153,
        "importedRows": 0,
        "progress": 50,
        "state": state,
        "totalRows": 520161,
    }
    entry.update(extra)
    return entry


def envelope(code: Any = 0, **data: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "jobId": "451910421389390804",
        "collectionName": "clue_data",
        "completeTime": "",
        "state": "Importing",
        "progress": 45,
        "importedRows": 260000,
        "totalRows": 520161,
        "fileSize": 6776153,
        "details": [task()],
    }
    payload.update(data)
    return {"code": code, "data": payload}


def test_registered_with_declared_contract() -> None:
    assert get_source("milvus-import") is SOURCE
    assert (SOURCE.name, SOURCE.title, SOURCE.success_word) == (
        "milvus-import",
        "Milvus import",
        "import finished",
    )
    assert SOURCE.required_fields == ()
    assert SOURCE.max_requests_per_second is None


@pytest.mark.parametrize(
    ("state", "phase"),
    [
        ("Pending", Phase.PENDING),
        ("Importing", Phase.RUNNING),
        ("Uncommitted", Phase.RUNNING),
        ("Committing", Phase.RUNNING),
        ("None", Phase.RUNNING),
        ("Completed", Phase.SUCCEEDED),
        ("Failed", Phase.FAILED),
    ],
)
def test_every_documented_state_maps(state: str, phase: Phase) -> None:
    snapshot = parse_ok(SOURCE, envelope(state=state))
    assert (snapshot.phase, snapshot.status, snapshot.status_known) == (phase, state, True)


@pytest.mark.parametrize("state", ["InProgress", "Aborted", "Sorting"])
def test_unknown_state_is_running_and_flagged(state: str) -> None:
    snapshot = parse_ok(SOURCE, envelope(state=state))
    assert (snapshot.phase, snapshot.status, snapshot.status_known) == (Phase.RUNNING, state, False)


def test_running_job_empty_complete_time_and_no_reason_key() -> None:
    snapshot = parse_ok(SOURCE, envelope())
    assert snapshot.completed_at is None
    assert snapshot.error is None
    assert snapshot.progress == 45.0
    assert snapshot.details["allFilesCompleted"] is False
    assert snapshot.details["importedRows"] == 260000


def test_all_files_completed_while_importing_is_recorded() -> None:
    snapshot = parse_ok(
        SOURCE,
        envelope(
            progress=80,
            details=[task("Completed", progress=100, completeTime="2025-01-16T08:42:09Z")] * 2,
        ),
    )
    assert snapshot.phase is Phase.RUNNING
    assert snapshot.details["allFilesCompleted"] is True
    assert (snapshot.details["filesDone"], snapshot.details["filesTotal"]) == (2, 2)
    facts = facts_dict(SOURCE, spec("milvus-import"), snapshot)
    assert facts["Stage"] == "all files imported; sorting and building indexes"


def test_no_files_is_not_all_files_completed() -> None:
    snapshot = parse_ok(SOURCE, envelope(state="Pending", progress=0, details=[]))
    assert snapshot.phase is Phase.PENDING
    assert snapshot.details["allFilesCompleted"] is False
    assert snapshot.details["filesTotal"] == 0


def test_failed_job_keeps_reason_and_drops_reset_progress() -> None:
    snapshot = parse_ok(
        SOURCE, envelope(state="Failed", progress=0, importedRows=0, totalRows=0, reason="import timeout")
    )
    assert (snapshot.phase, snapshot.error, snapshot.progress) == (Phase.FAILED, "import timeout", None)
    # "0 of 0" rows after a failure says nothing; it is left out of the facts.
    assert "Rows" not in facts_dict(SOURCE, spec("milvus-import"), snapshot)


def test_completed_job_server_local_time_is_converted_to_utc() -> None:
    snapshot = parse_ok(
        SOURCE, envelope(state="Completed", progress=100, completeTime="2024-04-01T14:17:55+08:00")
    )
    assert snapshot.completed_at == "2024-04-01T06:17:55Z"
    assert snapshot.progress == 100.0


@pytest.mark.parametrize(
    ("http", "code", "kind"),
    [
        (200, 2100, PollErrorKind.NOT_FOUND),
        (200, 1800, PollErrorKind.AUTH),
        (401, 1800, PollErrorKind.AUTH),
        (403, 1401, PollErrorKind.AUTH),
        (200, 1400, PollErrorKind.AUTH),
        (200, 1807, PollErrorKind.RATE_LIMITED),
        (200, 8, PollErrorKind.RATE_LIMITED),
        (200, 100, PollErrorKind.API_ERROR),
        (200, 1801, PollErrorKind.API_ERROR),
        (200, 1802, PollErrorKind.API_ERROR),
        (500, 2100, PollErrorKind.NOT_FOUND),  # standardErrorStatus mode: the code is more specific
        (200, 80001, PollErrorKind.API_ERROR),  # a Zilliz code means nothing to Milvus
    ],
)
def test_envelope_codes(http: int, code: int, kind: PollErrorKind) -> None:
    message = "import job does not exist, jobID=1: importing data failed"
    error = parse_error(SOURCE, response(http, {"code": code, "message": message}))
    assert (error.kind, error.api_code, error.http_status) == (kind, code, http)
    assert error.message == message


def test_limiter_code_carries_retry_after_when_sent() -> None:
    error = parse_error(
        SOURCE,
        response(200, {"code": 1807, "message": "request is rejected by limiter"}, {"retry-after": "2"}),
    )
    assert (error.kind, error.retry_after_s) == (PollErrorKind.RATE_LIMITED, 2.0)


def test_http_errors_keep_upstream_text() -> None:
    check_http_errors(SOURCE, {"code": 65535, "message": "unexpected error"}, "unexpected error")


def test_gin_404_page_for_a_wrong_path() -> None:
    error = parse_error(SOURCE, response(404, b"404 page not found", {"content-type": "text/plain"}))
    assert (error.kind, error.message) == (PollErrorKind.NOT_FOUND, "404 page not found")


def test_non_json_bodies_are_invalid() -> None:
    check_body_errors(SOURCE)


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        (envelope(state=None), "data.state is missing"),
        (envelope(state={"name": "Importing"}), "data.state is an object"),
        (envelope(progress=True), "data.progress is a boolean"),
        (envelope(importedRows="1"), "data.importedRows"),
        (envelope(details=[task(state=5)]), "data.details[0].state"),
        (envelope(details=[task(importedRows=-(2**70))]), "int64"),
        ({"code": "abc"}, "code is a string"),
    ],
)
def test_schema_drift_is_invalid_body(payload: Any, where: str) -> None:
    error = parse_error(SOURCE, response(200, payload))
    assert error.kind is PollErrorKind.INVALID_BODY
    assert where in error.message


def test_build_request_sends_string_job_id_and_database() -> None:
    request = SOURCE.build_request(
        spec(
            "milvus-import",
            endpoint="http://milvus.internal:19530/",
            job_id="451910421389390804",
            options={"dbName": "analytics"},
        ),
        "root:Milvus",
    )
    assert request.method == "POST"
    assert request.url == "http://milvus.internal:19530/v2/vectordb/jobs/import/describe"
    assert request.json == {"jobId": "451910421389390804"}
    assert isinstance(request.json["jobId"], str)
    assert request.headers == {
        "Accept": "application/json",
        "Authorization": "Bearer root:Milvus",
        "DB-Name": "analytics",
    }


def test_build_request_without_key_or_database() -> None:
    request = SOURCE.build_request(spec("milvus-import", options={"dbName": " "}), None)
    assert request.headers == {"Accept": "application/json"}


def test_facts() -> None:
    snapshot = parse_ok(
        SOURCE,
        envelope(
            importedRows=520161,
            totalRows=1000000,
            details=[
                task("Completed", name="[1.parquet]"),
                task("Failed", name="[2.parquet]", reason="bad row"),
            ],
        ),
    )
    assert facts_dict(SOURCE, spec("milvus-import", options={"dbName": "analytics"}), snapshot) == {
        "Rows": "520,161 of 1,000,000",
        "Files": "1/2 done · 1 failed",
        "Size": "6.5 MiB",
        "Failed files": "[2.parquet] (bad row)",
        "Database": "analytics",
    }
