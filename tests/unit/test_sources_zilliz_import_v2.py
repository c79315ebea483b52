"""zilliz-import-v2: state mapping, v2 body, envelope codes, POST request and facts."""

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
from jobwatch.sources.zilliz_import_v2 import DEFAULT_ENDPOINT, SOURCE


def file_entry(
    state: str = "Importing", reason: str = "", name: str = "a.json", **extra: Any
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "fileName": name,
        "fileSize": 3279917,
        "state": state,
        "progress": 40,
        "completeTime": "",
        "reason": reason,
    }
    entry.update(extra)
    return entry


def envelope(code: Any = 0, **data: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "jobId": "job-1",
        "collectionName": "medium_articles",
        "fileName": "a.json",
        "fileSize": 3279917,
        "state": "Importing",
        "progress": 40,
        "completeTime": "",
        "reason": "",
        "totalRows": 100000,
        "details": [file_entry()],
    }
    payload.update(data)
    return {"code": code, "data": payload}


def test_registered_with_declared_contract() -> None:
    assert get_source("zilliz-import-v2") is SOURCE
    assert (SOURCE.name, SOURCE.title, SOURCE.success_word) == (
        "zilliz-import-v2",
        "Zilliz Cloud import",
        "import finished",
    )
    assert SOURCE.required_fields == ("cluster_id",)
    assert SOURCE.max_requests_per_second == 20.0


@pytest.mark.parametrize(
    ("state", "phase", "progress"),
    [
        ("Pending", Phase.PENDING, 40.0),
        ("Importing", Phase.RUNNING, 40.0),
        ("InProgress", Phase.RUNNING, 40.0),
        ("Completed", Phase.SUCCEEDED, 100.0),
        ("Failed", Phase.FAILED, None),
    ],
)
def test_every_documented_state_maps(state: str, phase: Phase, progress: float | None) -> None:
    snapshot = parse_ok(SOURCE, envelope(state=state))
    assert (snapshot.phase, snapshot.status, snapshot.status_known) == (phase, state, True)
    assert snapshot.progress == progress


@pytest.mark.parametrize("state", ["Uncommitted", "Retry", "importing", "Cancelled"])
def test_unknown_state_is_running_and_flagged(state: str) -> None:
    snapshot = parse_ok(SOURCE, envelope(state=state))
    assert (snapshot.phase, snapshot.status, snapshot.status_known) == (Phase.RUNNING, state, False)


def test_completed_details() -> None:
    snapshot = parse_ok(
        SOURCE,
        envelope(
            state="Completed",
            progress=100,
            completeTime="2024-04-01T06:17:55Z",
            details=[file_entry("Completed", progress=100, completeTime="2024-04-01T06:17:53Z")],
        ),
    )
    assert snapshot.completed_at == "2024-04-01T06:17:55Z"
    assert snapshot.error is None  # reason "" is no error
    assert snapshot.started_at is None
    assert snapshot.details == {
        "collectionName": "medium_articles",
        "collections": ["medium_articles"],
        "fileName": "a.json",
        "fileSize": 3279917,
        "importedRows": None,
        "totalRows": 100000,
        "files": [
            {
                "fileName": "a.json",
                "fileSize": 3279917,
                "state": "Completed",
                "progress": 100.0,
                "importedRows": None,
                "totalRows": None,
                "completeTime": "2024-04-01T06:17:53Z",
                "error": None,
            }
        ],
        "filesTotal": 1,
        "filesDone": 1,
        "filesFailed": 0,
        "allFilesCompleted": True,
    }


def test_failed_job_is_not_an_api_error() -> None:
    snapshot = parse_ok(
        SOURCE,
        envelope(
            state="Failed", progress=0, reason="row 12: dim mismatch", details=[file_entry("Failed", "dim")]
        ),
    )
    assert snapshot.phase is Phase.FAILED
    assert snapshot.error == "row 12: dim mismatch"
    assert snapshot.details["filesFailed"] == 1


def test_negative_progress_is_clamped() -> None:
    assert parse_ok(SOURCE, envelope(progress=-3)).progress == 0.0
    assert parse_ok(SOURCE, envelope(progress=130)).progress == 100.0


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        (envelope(state=None), "data.state is missing"),
        (envelope(state=3), "data.state is a number"),
        (envelope(progress="40"), "data.progress is a string"),
        (envelope(totalRows=1.5), "data.totalRows"),
        (envelope(reason=False), "data.reason"),
        (envelope(details="none"), "data.details is a string"),
        (envelope(details=[file_entry(progress=[1])]), "data.details[0].progress"),
        ({"code": 0, "data": None}, "data is null"),
        ({"code": 0.5, "data": {}}, "code is a number"),
    ],
)
def test_schema_drift_is_invalid_body(payload: Any, where: str) -> None:
    error = parse_error(SOURCE, response(200, payload))
    assert error.kind is PollErrorKind.INVALID_BODY
    assert where in error.message


def test_success_code_200_is_accepted() -> None:
    assert parse_ok(SOURCE, envelope(code=200)).phase is Phase.RUNNING


@pytest.mark.parametrize(
    ("http", "code", "kind"),
    [
        (401, 21119, PollErrorKind.AUTH),
        (200, 21119, PollErrorKind.AUTH),
        (200, 40013, PollErrorKind.API_ERROR),
        (200, 63104, PollErrorKind.API_ERROR),
        (500, 65535, PollErrorKind.HTTP_STATUS),
    ],
)
def test_envelope_codes(http: int, code: int, kind: PollErrorKind) -> None:
    error = parse_error(SOURCE, response(http, {"code": code, "message": "The apikey is illegal"}))
    assert (error.kind, error.api_code, error.http_status) == (kind, code, http)
    assert error.message == "The apikey is illegal"


def test_http_errors_keep_upstream_text() -> None:
    check_http_errors(SOURCE, {"code": 65535, "message": "gateway exploded"}, "gateway exploded")


def test_non_json_bodies_are_invalid() -> None:
    check_body_errors(SOURCE)


def test_build_request_posts_cluster_and_job() -> None:
    request = SOURCE.build_request(
        spec(
            "zilliz-import-v2",
            endpoint="https://api.cloud.zilliz.com.cn/",
            cluster_id="in01-1",
            job_id="job-9",
        ),
        "key",
    )
    assert request.method == "POST"
    assert request.url == "https://api.cloud.zilliz.com.cn/v2/vectordb/jobs/import/getProgress"
    assert request.json == {"clusterId": "in01-1", "jobId": "job-9"}
    assert request.params is None
    assert request.headers == {"Accept": "application/json", "Authorization": "Bearer key"}


def test_build_request_defaults_the_control_plane() -> None:
    request = SOURCE.build_request(spec("zilliz-import-v2", endpoint="", cluster_id="in01-1"), None)
    assert DEFAULT_ENDPOINT == "https://api.cloud.zilliz.com"
    assert request.url == "https://api.cloud.zilliz.com/v2/vectordb/jobs/import/getProgress"
    assert "Authorization" not in request.headers


def test_build_request_without_cluster_is_config_error() -> None:
    with pytest.raises(PollError) as info:
        SOURCE.build_request(spec("zilliz-import-v2"), "k")
    assert info.value.kind is PollErrorKind.CONFIG


def test_facts() -> None:
    snapshot = parse_ok(
        SOURCE,
        envelope(
            importedRows=520161,
            totalRows=1000000,
            details=[
                file_entry("Completed", name="1.parquet"),
                file_entry("Failed", "bad schema", name="2.parquet"),
                file_entry("Importing", name="3.parquet"),
            ],
        ),
    )
    assert facts_dict(SOURCE, spec("zilliz-import-v2", cluster_id="in01-1"), snapshot) == {
        "Rows": "520,161 of 1,000,000",
        "Files": "1/3 done · 1 failed",
        "Size": "3.1 MiB",
        "Failed files": "2.parquet (bad schema)",
    }
