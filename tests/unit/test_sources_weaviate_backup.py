"""weaviate-backup: backup-create status mapping, size, bucket/path parameters, errors and facts."""

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
from jobwatch.sources.weaviate_backup import SOURCE

ZERO = "0001-01-01T00:00:00.000Z"

ALL_STATUSES = [
    ("STARTED", Phase.RUNNING),
    ("TRANSFERRING", Phase.RUNNING),
    ("TRANSFERRED", Phase.RUNNING),
    ("FINALIZING", Phase.RUNNING),
    ("CANCELLING", Phase.RUNNING),
    ("SUCCESS", Phase.SUCCEEDED),
    ("FAILED", Phase.FAILED),
    ("CANCELED", Phase.CANCELED),
]


def body(status: Any = "STARTED", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "backend": "s3",
        "completedAt": ZERO,
        "id": "nightly",
        "path": "s3://backups/nightly",
        "startedAt": "2026-08-20T01:00:00.000Z",
        "status": status,
    }
    base.update(fields)
    return base


def test_registered_with_declared_contract() -> None:
    assert get_source("weaviate-backup") is SOURCE
    assert (SOURCE.name, SOURCE.title, SOURCE.success_word) == (
        "weaviate-backup",
        "Weaviate backup",
        "backup finished",
    )
    assert SOURCE.required_fields == ("backend",)


@pytest.mark.parametrize(("status", "phase"), ALL_STATUSES)
def test_every_documented_status_maps(status: str, phase: Phase) -> None:
    snapshot = parse_ok(SOURCE, body(status))
    assert (snapshot.phase, snapshot.status, snapshot.status_known) == (phase, status, True)
    assert snapshot.progress == (100.0 if phase is Phase.SUCCEEDED else None)


@pytest.mark.parametrize("status", ["CANCELLED", "PAUSED", "success"])
def test_unknown_status_is_running_and_flagged(status: str) -> None:
    snapshot = parse_ok(SOURCE, body(status))
    assert (snapshot.phase, snapshot.status, snapshot.status_known) == (Phase.RUNNING, status, False)


def test_running_backup_has_no_completion_time() -> None:
    snapshot = parse_ok(SOURCE, body())
    assert snapshot.started_at == "2026-08-20T01:00:00Z"
    assert snapshot.completed_at is None
    assert "sizeGiB" not in snapshot.details
    assert "timestampsObserved" not in snapshot.details


def test_success_carries_size_in_gib() -> None:
    snapshot = parse_ok(
        SOURCE,
        body("SUCCESS", completedAt="2026-08-20T01:07:31.512Z", size=1.7342, incremental_base_backup_id=""),
    )
    assert snapshot.completed_at == "2026-08-20T01:07:31.512000Z"
    assert snapshot.details == {
        "backend": "s3",
        "path": "s3://backups/nightly",
        "location": "s3://backups/nightly",
        "collections": [],
        "sizeGiB": 1.7342,
    }


def test_incremental_base_is_kept() -> None:
    snapshot = parse_ok(SOURCE, body("SUCCESS", size=2, incremental_base_backup_id="weekly-1"))
    assert snapshot.details["incrementalBaseBackupId"] == "weekly-1"
    assert snapshot.details["sizeGiB"] == 2.0


def test_canceled_after_restart_keeps_error() -> None:
    snapshot = parse_ok(SOURCE, body("CANCELED", error="backup canceled due to node restart"))
    assert snapshot.phase is Phase.CANCELED
    assert snapshot.error == "backup canceled due to node restart"
    assert snapshot.completed_at is None


def test_http_errors_keep_upstream_text() -> None:
    check_http_errors(SOURCE, {"error": [{"message": "backup not found"}]}, "backup not found")
    check_http_errors(SOURCE, {"code": 401, "message": "unauthorized: invalid api key"}, "invalid api key")


def test_non_json_bodies_are_invalid() -> None:
    check_body_errors(SOURCE)


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"id": "x"}, "status is missing"),
        (body(status=["SUCCESS"]), "status is an array"),
        (body(size="1.5"), "size is a string"),
        (body(size=True), "size is a boolean"),
        (b'{"status": "SUCCESS", "size": NaN}', "size is not a finite number"),
        (b'{"status": "SUCCESS", "size": 1e400}', "size is not a finite number"),
        (body(completedAt=0), "completedAt"),
        (body(incremental_base_backup_id=1), "incremental_base_backup_id"),
    ],
)
def test_schema_drift_is_invalid_body(payload: Any, where: str) -> None:
    error = parse_error(SOURCE, response(200, payload))
    assert error.kind is PollErrorKind.INVALID_BODY
    assert where in error.message


def test_build_request_with_bucket_and_path() -> None:
    request = SOURCE.build_request(
        spec(
            "weaviate-backup",
            backend="s3",
            job_id="nightly 1",
            options={"bucket": "my-bucket", "path": "backups/prod", "other": "x"},
        ),
        "k",
    )
    assert request.method == "GET"
    assert request.url == "https://db.example.com/v1/backups/s3/nightly%201"
    assert request.params == {"bucket": "my-bucket", "path": "backups/prod"}
    assert request.headers == {"Accept": "application/json", "Authorization": "Bearer k"}


def test_build_request_without_overrides_sends_no_params() -> None:
    request = SOURCE.build_request(
        spec("weaviate-backup", backend="filesystem", options={"bucket": ""}), None
    )
    assert request.params is None
    assert "Authorization" not in request.headers


def test_build_request_without_backend_is_config_error() -> None:
    with pytest.raises(PollError) as info:
        SOURCE.build_request(spec("weaviate-backup"), None)
    assert info.value.kind is PollErrorKind.CONFIG


def test_facts() -> None:
    job = spec("weaviate-backup", backend="s3")
    assert facts_dict(SOURCE, job, parse_ok(SOURCE, body("SUCCESS", size=1.7342))) == {
        "Size": "1.73 GiB before compression"
    }
    assert facts_dict(SOURCE, job, parse_ok(SOURCE, body("TRANSFERRED"))) == {
        "Stage": "files transferred, not finished yet"
    }
    assert SOURCE.facts(job, parse_ok(SOURCE, body("FAILED", error="x"))) == []
