"""List-body parsing for auto-discovery, on the reference samples and on drifted bodies.

The reference material (`<parent>/shared/reference`) holds one list sample per Milvus-family API and
constructed Weaviate backup lists; each must parse to exactly the jobs it shows.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.domain.model import Phase
from jobwatch.sources import listing
from jobwatch.sources.base import HttpResponse
from jobwatch_devkit.reference import reference_dir

REFERENCE = reference_dir()
SAMPLES = REFERENCE / "milvus" / "samples"
WEAVIATE_LIST_KEY = "GET /v1/backups/s3?order=desc 200 BackupListResponse"


def _sample(relative: str) -> HttpResponse:
    data = json.loads((SAMPLES / relative).read_text(encoding="utf-8"))
    return _response(data["body"], data.get("http_status", 200))


def _response(body: Any, status: int = 200) -> HttpResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpResponse(status_code=status, body=raw, headers={"content-type": "application/json"})


def _summary(page: listing.ListPage) -> list[tuple[str, str, Phase, bool]]:
    return [(job.job_id, job.status, job.phase, job.status_known) for job in page.jobs]


def test_zilliz_v1_sample_uses_tasks() -> None:
    page = listing.parse_zilliz_v1_list(_sample("zilliz-cloud-v1/list.json"))
    assert _summary(page) == [
        ("job-xxxxxxxxxxxxxxxxxxxxxx", "ImportRunning", Phase.RUNNING, True),
        ("2b93fef7-xxxx-xxxx-xxxx-f82afd598ff1", "ImportCompleted", Phase.SUCCEEDED, True),
    ]
    assert page.total == 2
    assert page.jobs[0].collections == ("medium_articles",)


def test_zilliz_v1_accepts_records_and_string_counts_as_the_schema_table_says() -> None:
    body = {
        "code": 200,
        "data": {
            "records": [{"collectionName": "c", "jobId": "job-9", "state": "ImportFailed"}],
            "count": "1",
            "currentPage": "1",
            "pageSize": "10",
        },
    }
    page = listing.parse_zilliz_v1_list(_response(body))
    assert _summary(page) == [("job-9", "ImportFailed", Phase.FAILED, True)]
    assert page.total == 1


def test_zilliz_v2_sample() -> None:
    page = listing.parse_zilliz_v2_list(_sample("zilliz-cloud-v2/list.json"))
    assert _summary(page) == [("job-xxxxxxxxxxxxxxxxxxxxx", "Completed", Phase.SUCCEEDED, True)]
    assert (page.total, page.jobs[0].collections) == (1, ("test_collection",))


def test_zilliz_v2_list_spelling_in_progress_is_running() -> None:
    body = {
        "code": 0,
        "data": {
            "count": 2,
            "records": [{"jobId": "a", "state": "InProgress"}, {"jobId": "b", "state": "Pending"}],
        },
    }
    assert [job.phase for job in listing.parse_zilliz_v2_list(_response(body)).jobs] == [
        Phase.RUNNING,
        Phase.PENDING,
    ]


def test_milvus_sample_has_progress_and_no_paging() -> None:
    page = listing.parse_milvus_list(_sample("milvus-v2/list.pending.json"))
    assert _summary(page) == [("453468002260053160", "Pending", Phase.PENDING, True)]
    assert (page.total, page.jobs[0].progress) == (None, 0.0)


def test_milvus_failed_record_keeps_its_reason_and_unknown_states_are_unknown() -> None:
    body = {
        "code": 0,
        "data": {
            "records": [
                {"jobId": 453468002260053161, "state": "Failed", "progress": 0, "reason": "import timeout"},
                {"jobId": "453468002260053162", "state": "Sorting", "progress": 85},
            ]
        },
    }
    failed, odd = listing.parse_milvus_list(_response(body)).jobs
    assert (failed.job_id, failed.phase, failed.error) == (
        "453468002260053161",
        Phase.FAILED,
        "import timeout",
    )
    assert (odd.phase, odd.status_known, odd.progress) == (Phase.RUNNING, False, 85.0)


def test_weaviate_backup_list_example() -> None:
    examples = json.loads((REFERENCE / "weaviate" / "examples.constructed.json").read_text(encoding="utf-8"))
    page = listing.parse_weaviate_backups(_response(examples["backup"][WEAVIATE_LIST_KEY]))
    assert _summary(page) == [
        ("nightly-backup-2026-08-21", "STARTED", Phase.RUNNING, True),
        ("nightly-backup-2026-08-20", "SUCCESS", Phase.SUCCEEDED, True),
    ]
    running, done = page.jobs
    assert running.completed_at is None  # Go's zero time means "not yet"
    assert done.completed_at == "2026-08-20T01:07:31.512000Z"
    assert done.collections == ("Article", "Product")


def test_empty_lists() -> None:
    assert listing.parse_weaviate_backups(_response([])).jobs == []
    assert listing.parse_milvus_list(_response({"code": 0, "data": {}})).jobs == []
    assert (
        listing.parse_zilliz_v1_list(_response({"code": 200, "data": {"tasks": None, "count": 0}})).jobs == []
    )


@pytest.mark.parametrize(
    ("parse", "body", "status", "kind"),
    [
        (listing.parse_zilliz_v1_list, {"code": 80001, "message": "Invalid token"}, 401, PollErrorKind.AUTH),
        (
            listing.parse_zilliz_v1_list,
            {"code": 80010, "message": "Cluster not running"},
            200,
            PollErrorKind.API_ERROR,
        ),
        (
            listing.parse_zilliz_v2_list,
            {"code": 0, "data": {"records": [{"state": "Completed"}]}},
            200,
            PollErrorKind.INVALID_BODY,
        ),
        (
            listing.parse_milvus_list,
            {"code": 0, "data": {"records": "nope"}},
            200,
            PollErrorKind.INVALID_BODY,
        ),
        (
            listing.parse_milvus_list,
            {"code": 0, "data": {"records": [{"jobId": "1"}]}},
            200,
            PollErrorKind.INVALID_BODY,
        ),
        (listing.parse_weaviate_backups, {"error": [{"message": "forbidden"}]}, 403, PollErrorKind.AUTH),
        (listing.parse_weaviate_backups, {"id": "not-an-array"}, 200, PollErrorKind.INVALID_BODY),
        (listing.parse_weaviate_backups, b"<html>502</html>", 200, PollErrorKind.INVALID_BODY),
        (listing.parse_weaviate_backups, [{"id": "b", "status": 3}], 200, PollErrorKind.INVALID_BODY),
    ],
)
def test_errors_and_drift_are_poll_errors(parse: Any, body: Any, status: int, kind: PollErrorKind) -> None:
    with pytest.raises(PollError) as info:
        parse(_response(body, status))
    assert info.value.kind is kind


def test_requests() -> None:
    v1 = listing.zilliz_v1_request("https://c.example/", "in01-x", "k", 3)
    assert (v1.method, v1.url, v1.params) == (
        "GET",
        "https://c.example/v1/vector/collections/import/list",
        {"clusterId": "in01-x", "pageSize": "100", "currentPage": "3"},
    )
    assert v1.headers["Authorization"] == "Bearer k"
    v2 = listing.zilliz_v2_request("https://api.example", "in01-x", None, 1)
    assert (v2.method, v2.json, "Authorization" in v2.headers) == (
        "POST",
        {"clusterId": "in01-x", "pageSize": 100, "currentPage": 1},
        False,
    )
    assert listing.milvus_request("http://127.0.0.1:19530", "sales", None).json == {"dbName": "sales"}
    assert listing.milvus_request("http://127.0.0.1:19530", None, None).json == {}
    assert (
        listing.weaviate_backups_request("https://w.example", "s3?x", None).url
        == "https://w.example/v1/backups/s3%3Fx"
    )
