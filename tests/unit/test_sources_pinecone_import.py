"""pinecone-import: status mapping, percentComplete bounds, real HTTP errors, request headers, facts."""

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
from jobwatch.sources.pinecone_import import SOURCE


def body(status: Any = "InProgress", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "101",
        "uri": "s3://bucket/import-dir",
        "status": status,
        "createdAt": "2025-11-07T05:31:56Z",
        "percentComplete": 42.2,
        "recordsImported": 1000000,
    }
    base.update(fields)
    return base


def test_registered_with_declared_contract() -> None:
    assert get_source("pinecone-import") is SOURCE
    assert (SOURCE.name, SOURCE.title, SOURCE.success_word) == (
        "pinecone-import",
        "Pinecone import",
        "import finished",
    )
    assert SOURCE.required_fields == ()


@pytest.mark.parametrize(
    ("status", "phase", "progress"),
    [
        ("Pending", Phase.PENDING, 42.2),
        ("InProgress", Phase.RUNNING, 42.2),
        ("Completed", Phase.SUCCEEDED, 100.0),
        ("Failed", Phase.FAILED, None),
        ("Cancelled", Phase.CANCELED, None),
    ],
)
def test_every_documented_status_maps(status: str, phase: Phase, progress: float | None) -> None:
    snapshot = parse_ok(SOURCE, body(status))
    assert (snapshot.phase, snapshot.status, snapshot.status_known, snapshot.progress) == (
        phase,
        status,
        True,
        progress,
    )


@pytest.mark.parametrize("status", ["Canceled", "Paused", "COMPLETED"])
def test_unknown_status_is_running_and_flagged(status: str) -> None:
    snapshot = parse_ok(SOURCE, body(status))
    assert (snapshot.phase, snapshot.status, snapshot.status_known) == (Phase.RUNNING, status, False)


def test_details_and_timestamps() -> None:
    snapshot = parse_ok(
        SOURCE,
        body(
            "Completed",
            percentComplete=100.0,
            finishedAt="2025-11-07T06:00:00Z",
            validationResult={"importSuccesses": 999990, "importErrors": 10},
        ),
    )
    assert (snapshot.started_at, snapshot.completed_at) == ("2025-11-07T05:31:56Z", "2025-11-07T06:00:00Z")
    assert snapshot.details == {
        "location": "s3://bucket/import-dir",
        "uri": "s3://bucket/import-dir",
        "collections": [],
        "recordsImported": 1000000,
        "importSuccesses": 999990,
        "importErrors": 10,
    }


def test_failed_import_keeps_error() -> None:
    snapshot = parse_ok(SOURCE, body("Failed", error="file a.parquet: schema mismatch", percentComplete=10))
    assert (snapshot.phase, snapshot.error) == (Phase.FAILED, "file a.parquet: schema mismatch")


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"id": "1"}, "status is missing"),
        (body(status=1), "status is a number"),
        (body(percentComplete=100.5), "percentComplete"),
        (body(percentComplete=-1), "percentComplete"),
        (body(percentComplete="42"), "percentComplete is a string"),
        (body(recordsImported=1.5), "recordsImported"),
        (body(validationResult=[1]), "validationResult is an array"),
        (body(validationResult={"importErrors": "x"}), "validationResult.importErrors"),
        (body(createdAt=5), "createdAt"),
    ],
)
def test_schema_drift_is_invalid_body(payload: Any, where: str) -> None:
    error = parse_error(SOURCE, response(200, payload))
    assert error.kind is PollErrorKind.INVALID_BODY
    assert where in error.message


def test_http_errors_keep_rpc_status_text() -> None:
    check_http_errors(
        SOURCE, {"code": 5, "message": "Import 101 not found", "details": []}, "Import 101 not found"
    )
    error = parse_error(SOURCE, response(404, {"code": 5, "message": "Import 101 not found"}))
    assert error.api_code == 5


def test_http_errors_keep_control_plane_shape_text() -> None:
    payload = {"error": {"code": "UNAUTHENTICATED", "message": "Invalid API Key"}, "status": 401}
    error = parse_error(SOURCE, response(401, payload))
    assert (error.kind, error.message, error.api_code) == (
        PollErrorKind.AUTH,
        "Invalid API Key",
        "UNAUTHENTICATED",
    )


def test_non_json_bodies_are_invalid() -> None:
    check_body_errors(SOURCE)


def test_build_request() -> None:
    request = SOURCE.build_request(
        spec("pinecone-import", endpoint="https://idx-abc.svc.aped-4627.pinecone.io/", job_id="10 1"),
        "pc-key",
    )
    assert request.method == "GET"
    assert request.url == "https://idx-abc.svc.aped-4627.pinecone.io/bulk/imports/10%201"
    assert request.headers == {
        "Accept": "application/json",
        "X-Pinecone-Api-Version": "2025-10",
        "Api-Key": "pc-key",
    }
    assert "Authorization" not in request.headers


def test_build_request_bare_host_and_version_override() -> None:
    request = SOURCE.build_request(
        spec("pinecone-import", endpoint="idx-abc.svc.pinecone.io", options={"apiVersion": "2026-07"}), None
    )
    assert request.url == "https://idx-abc.svc.pinecone.io/bulk/imports/job-1"
    assert request.headers == {"Accept": "application/json", "X-Pinecone-Api-Version": "2026-07"}


def test_facts() -> None:
    job = spec("pinecone-import")
    snapshot = parse_ok(SOURCE, body(validationResult={"importSuccesses": 999990, "importErrors": 10}))
    assert facts_dict(SOURCE, job, snapshot) == {"Records imported": "1,000,000", "Rejected records": "10"}
    clean = parse_ok(SOURCE, body(validationResult={"importSuccesses": 5, "importErrors": 0}))
    assert facts_dict(SOURCE, job, clean) == {"Records imported": "1,000,000"}
