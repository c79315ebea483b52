"""weaviate-restore: restore status mapping, no timestamps, URL with /restore, errors and facts."""

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
from jobwatch.sources.weaviate_restore import SOURCE


def body(status: Any = "TRANSFERRING", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "backend": "s3",
        "id": "nightly",
        "path": "s3://backups/nightly",
        "status": status,
    }
    base.update(fields)
    return base


def test_registered_with_declared_contract() -> None:
    assert get_source("weaviate-restore") is SOURCE
    assert (SOURCE.name, SOURCE.title, SOURCE.success_word) == (
        "weaviate-restore",
        "Weaviate restore",
        "restore finished",
    )
    assert SOURCE.required_fields == ("backend",)


@pytest.mark.parametrize(
    ("status", "phase"),
    [
        ("STARTED", Phase.RUNNING),
        ("TRANSFERRING", Phase.RUNNING),
        ("TRANSFERRED", Phase.RUNNING),
        ("FINALIZING", Phase.RUNNING),
        ("CANCELLING", Phase.RUNNING),
        ("SUCCESS", Phase.SUCCEEDED),
        ("FAILED", Phase.FAILED),
        ("CANCELED", Phase.CANCELED),
    ],
)
def test_every_documented_status_maps(status: str, phase: Phase) -> None:
    snapshot = parse_ok(SOURCE, body(status))
    assert (snapshot.phase, snapshot.status, snapshot.status_known) == (phase, status, True)


def test_unknown_status_is_running_and_flagged() -> None:
    snapshot = parse_ok(SOURCE, body("ROLLING_BACK"))
    assert (snapshot.phase, snapshot.status_known) == (Phase.RUNNING, False)


def test_no_timestamps_and_durations_are_observed() -> None:
    # Even if a future server sent timestamps or size, the restore contract has none.
    snapshot = parse_ok(SOURCE, body("SUCCESS", startedAt="2026-08-20T01:00:00Z", size=3.0))
    assert (snapshot.started_at, snapshot.completed_at) == (None, None)
    assert snapshot.progress == 100.0
    assert snapshot.details == {
        "backend": "s3",
        "path": "s3://backups/nightly",
        "location": "s3://backups/nightly",
        "collections": [],
        "timestampsObserved": True,
    }


def test_canceled_by_user_keeps_error() -> None:
    snapshot = parse_ok(SOURCE, body("CANCELED", error="restore canceled by user"))
    assert (snapshot.phase, snapshot.error) == (Phase.CANCELED, "restore canceled by user")


def test_http_errors_keep_upstream_text() -> None:
    check_http_errors(SOURCE, {"error": [{"message": "coordinator cannot get status"}]}, "cannot get status")


def test_non_json_bodies_are_invalid() -> None:
    check_body_errors(SOURCE)


@pytest.mark.parametrize(
    ("payload", "where"),
    [({"backend": "s3"}, "status is missing"), (body(status=1), "status"), (body(error=1), "error")],
)
def test_schema_drift_is_invalid_body(payload: Any, where: str) -> None:
    error = parse_error(SOURCE, response(200, payload))
    assert error.kind is PollErrorKind.INVALID_BODY
    assert where in error.message


def test_build_request_targets_restore_status() -> None:
    request = SOURCE.build_request(
        spec("weaviate-restore", backend="azure", job_id="b/1", options={"path": "p q"}), "k"
    )
    assert request.url == "https://db.example.com/v1/backups/azure/b%2F1/restore"
    assert request.params == {"path": "p q"}
    assert request.headers["Authorization"] == "Bearer k"
    assert request.headers["Accept"] == "application/json"


def test_facts_explain_the_stage() -> None:
    job = spec("weaviate-restore", backend="s3")
    observed = "restore status has no timestamps: durations are observed by jobwatch"
    assert facts_dict(SOURCE, job, parse_ok(SOURCE, body("FINALIZING"))) == {
        "Stage": "finalizing (can no longer be canceled)",
        "Timing": observed,
    }
    assert facts_dict(SOURCE, job, parse_ok(SOURCE, body("SUCCESS"))) == {"Timing": observed}
