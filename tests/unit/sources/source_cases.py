"""Per-source fixtures: a body builder for each upstream shape and the table the contract tests run on.

Why one table: every source must honour the same contract (request building, status mapping, error
classes, body checks); a row says how *this* source is asked and what it answers, so a new source
is one more row, not another copy of the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from jobwatch.domain.errors import PollErrorKind
from jobwatch.domain.model import Phase
from jobwatch.sources import get_source
from jobwatch.sources.base import Source

WEAVIATE_ZERO_TIME = "0001-01-01T00:00:00.000Z"
"""Go's zero time: how Weaviate says 'not completed yet'."""

# --- bodies ----------------------------------------------------------------------------------------


def weaviate_export_body(status: Any = "TRANSFERRING", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "backend": "s3",
        "classes": ["Article", "Product"],
        "completedAt": WEAVIATE_ZERO_TIME,
        "id": "nightly",
        "path": "s3://bucket/exports/nightly",
        "startedAt": "2026-08-20T02:00:00.123Z",
        "status": status,
    }
    return {**base, **fields}


def weaviate_shards(*entries: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    """`shardStatus` from (collection, shard, progress) triples."""
    result: dict[str, Any] = {}
    for collection, shard, progress in entries:
        result.setdefault(collection, {})[shard] = progress
    return result


def weaviate_backup_body(status: Any = "STARTED", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "backend": "s3",
        "completedAt": WEAVIATE_ZERO_TIME,
        "id": "nightly",
        "path": "s3://backups/nightly",
        "startedAt": "2026-08-20T01:00:00.000Z",
        "status": status,
    }
    return {**base, **fields}


def weaviate_restore_body(status: Any = "TRANSFERRING", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "backend": "s3",
        "id": "nightly",
        "path": "s3://backups/nightly",
        "status": status,
    }
    return {**base, **fields}


def zilliz_v1_file(
    ready: Any = 0, error: Any = None, name: str = "a/1.parquet", **extra: Any
) -> dict[str, Any]:
    entry = {
        "fileName": name,
        "fileSize": 1000,
        "readyPercentage": ready,
        "completeTime": None,
        "errorMessage": error,
    }
    return {**entry, **extra}


def zilliz_v1_envelope(code: Any = 200, **data: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "collectionName": "medium_articles",
        "fileName": "a/1.parquet",
        "fileSize": 19599887,
        "readyPercentage": 0,
        "completeTime": None,
        "errorMessage": None,
        "jobId": "job-1",
        "details": [zilliz_v1_file()],
    }
    return {"code": code, "data": {**payload, **data}}


def zilliz_v2_file(
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
    return {**entry, **extra}


def zilliz_v2_envelope(code: Any = 0, **data: Any) -> dict[str, Any]:
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
        "details": [zilliz_v2_file()],
    }
    return {"code": code, "data": {**payload, **data}}


def milvus_task(state: Any = "InProgress", name: str = "[1.parquet]", **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "completeTime": "",
        "fileName": name,
        "fileSize": 6776153,
        "importedRows": 0,
        "progress": 50,
        "state": state,
        "totalRows": 520161,
    }
    return {**entry, **extra}


def milvus_envelope(code: Any = 0, **data: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "jobId": "451910421389390804",
        "collectionName": "clue_data",
        "completeTime": "",
        "state": "Importing",
        "progress": 45,
        "importedRows": 260000,
        "totalRows": 520161,
        "fileSize": 6776153,
        "details": [milvus_task()],
    }
    return {"code": code, "data": {**payload, **data}}


def pinecone_body(status: Any = "InProgress", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "101",
        "uri": "s3://bucket/import-dir",
        "status": status,
        "createdAt": "2025-11-07T05:31:56Z",
        "percentComplete": 42.2,
        "recordsImported": 1000000,
    }
    return {**base, **fields}


# --- the table -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusCase:
    """A body whose status is documented, and what it must parse into."""

    label: str
    body: Any
    phase: Phase
    status: str
    progress: float | None


@dataclass(frozen=True)
class RequestCase:
    """A spec (`source` and defaults from `spec()`) with an API key, and the exact request it builds."""

    fields: dict[str, Any]
    api_key: str | None
    method: str
    url: str
    headers: dict[str, str]
    params: dict[str, str] | None = None
    json: dict[str, Any] | None = None


@dataclass(frozen=True)
class SourceCase:
    name: str
    title: str
    success_word: str
    required_fields: tuple[str, ...]
    max_requests_per_second: float | None
    statuses: list[StatusCase]
    unknown_statuses: list[tuple[str, Any]]
    """(status word, body carrying it) the source never documented."""
    error_bodies: list[tuple[Any, str]]
    """(error body, the upstream text the PollError must keep)."""
    drift: list[tuple[Any, str]]
    """(2xx body that breaks the schema, the place the error must name)."""
    with_key: RequestCase
    without_key: RequestCase
    job_id_goes_in: Literal["path", "params", "json"]
    valid_fields: dict[str, Any] = field(default_factory=dict)
    """Spec fields that make a request buildable (the required ones)."""
    envelope_codes: list[tuple[int, int, PollErrorKind, str]] = field(default_factory=list)
    """Enveloped APIs: (HTTP status, `code`, error kind, message) of `{code, message}` answers."""
    path_fields: tuple[str, ...] = ()
    """Spec fields the source puts into the URL path, one segment each."""
    url_template: str = ""
    """The URL built from `valid_fields`; `{job_id}` and `{backend}` stand for the encoded values."""
    terminal: Any = None
    """A terminal body naming the spec's default job id `job-1`."""
    id_at: tuple[str, ...] = ()
    """Where the body names its job: the keys leading to the id (checked against the samples)."""
    status_at: tuple[str, ...] = ()
    """The key that decides the phase (`status`, `data.state`, Zilliz v1's `data.readyPercentage`)."""
    conflicting_status: Any = None
    """Another value of that key, for a body that states it twice."""

    @property
    def source(self) -> Source:
        return get_source(self.name)


def _statuses(make: Any, cases: list[tuple[str, Phase, float | None]]) -> list[StatusCase]:
    return [StatusCase(word, make(word), phase, word, progress) for word, phase, progress in cases]


_WEAVIATE_BACKUP_STATUSES: list[tuple[str, Phase, float | None]] = [
    ("STARTED", Phase.RUNNING, None),
    ("TRANSFERRING", Phase.RUNNING, None),
    ("TRANSFERRED", Phase.RUNNING, None),
    ("FINALIZING", Phase.RUNNING, None),
    ("CANCELLING", Phase.RUNNING, None),
    ("SUCCESS", Phase.SUCCEEDED, 100.0),
    ("FAILED", Phase.FAILED, None),
    ("CANCELED", Phase.CANCELED, None),
]
_WEAVIATE_API_KEY_401 = ({"code": 401, "message": "unauthorized: invalid api key"}, "invalid api key")

ZILLIZ_V1_STATUSES = [
    StatusCase("0", zilliz_v1_envelope(readyPercentage=0), Phase.RUNNING, "ImportRunning", 0.0),
    StatusCase("0.01", zilliz_v1_envelope(readyPercentage=0.01), Phase.RUNNING, "ImportRunning", 1.0),
    StatusCase("0.5", zilliz_v1_envelope(readyPercentage=0.5), Phase.RUNNING, "ImportRunning", 50.0),
    StatusCase("0.999", zilliz_v1_envelope(readyPercentage=0.999), Phase.RUNNING, "ImportRunning", 99.9),
    StatusCase(
        "1-completed",
        zilliz_v1_envelope(readyPercentage=1, completeTime="2023-10-28T06:51:49Z"),
        Phase.SUCCEEDED,
        "ImportCompleted",
        100.0,
    ),
    StatusCase(
        "1.0-no-time",
        zilliz_v1_envelope(readyPercentage=1.0, completeTime=None),
        Phase.SUCCEEDED,
        "ImportCompleted",
        100.0,
    ),
    StatusCase(
        "error",
        zilliz_v1_envelope(readyPercentage=0.3, errorMessage="bad parquet"),
        Phase.FAILED,
        "ImportFailed",
        None,
    ),
    # Failure is checked first: an error at 100 % is still a failure.
    StatusCase(
        "error-at-1",
        zilliz_v1_envelope(readyPercentage=1, errorMessage="index build failed"),
        Phase.FAILED,
        "ImportFailed",
        None,
    ),
    # A failed job may not report a fraction at all.
    StatusCase(
        "error-no-fraction",
        zilliz_v1_envelope(readyPercentage=None, errorMessage="bad parquet"),
        Phase.FAILED,
        "ImportFailed",
        None,
    ),
]
"""Zilliz v1 has no status word: the phase and a made-up status are derived from fraction and error."""

_BEARER_ACCEPT = {"Accept": "application/json"}

SOURCE_CASES: list[SourceCase] = [
    SourceCase(
        name="weaviate-export",
        title="Weaviate export",
        success_word="export finished",
        required_fields=("backend",),
        max_requests_per_second=None,
        statuses=_statuses(
            weaviate_export_body,
            [
                ("STARTED", Phase.RUNNING, None),
                ("TRANSFERRING", Phase.RUNNING, None),
                ("SUCCESS", Phase.SUCCEEDED, 100.0),
                ("FAILED", Phase.FAILED, None),
                ("CANCELED", Phase.CANCELED, None),
            ],
        ),
        unknown_statuses=[
            (s, weaviate_export_body(s)) for s in ["PAUSED", "success", "CANCELLING", " SUCCESS"]
        ],
        error_bodies=[
            ({"error": [{"message": "export not found"}]}, "export not found"),
            _WEAVIATE_API_KEY_401,
        ],
        drift=[
            ({"backend": "s3"}, "status is missing"),
            (weaviate_export_body(status=None), "status is missing"),
            (weaviate_export_body(status=5), "status is a number"),
            (weaviate_export_body(status=""), "status is empty"),
            (weaviate_export_body(classes="Article"), "classes is a string"),
            (weaviate_export_body(classes=["A", 1]), "classes[1]"),
            (weaviate_export_body(shardStatus=[]), "shardStatus is an array"),
            (weaviate_export_body(shardStatus={"A": []}), "shardStatus.A is an array"),
            (weaviate_export_body(shardStatus={"A": {"s": "SUCCESS"}}), "shardStatus.A.s is a string"),
            (weaviate_export_body(shardStatus={"A": {"s": {"status": 1}}}), "shardStatus.A.s.status"),
            (
                weaviate_export_body(shardStatus={"A": {"s": {"objectsExported": "12"}}}),
                "objectsExported is a string",
            ),
            (
                weaviate_export_body(shardStatus={"A": {"s": {"objectsExported": True}}}),
                "objectsExported is a boolean",
            ),
            (weaviate_export_body(shardStatus={"A": {"s": {"objectsExported": 2**64}}}), "int64"),
            (weaviate_export_body(tookInMs="1"), "tookInMs"),
            (weaviate_export_body(tookInMs=1.5), "tookInMs"),
            (weaviate_export_body(startedAt=123), "startedAt"),
            (weaviate_export_body(error=["x"]), "error is an array"),
            (weaviate_export_body(path={"a": 1}), "path is an object"),
        ],
        with_key=RequestCase(
            {"endpoint": "https://w.example.com:8080/", "backend": "s3", "job_id": "a b?c#d"},
            "k3y",
            "GET",
            "https://w.example.com:8080/v1/export/s3/a%20b%3Fc%23d",
            {"Accept": "application/json", "Authorization": "Bearer k3y"},
        ),
        without_key=RequestCase(
            {"backend": "gcs?x"},
            None,
            "GET",
            "https://db.example.com/v1/export/gcs%3Fx/job-1",
            _BEARER_ACCEPT,
        ),
        job_id_goes_in="path",
        valid_fields={"backend": "s3"},
        path_fields=("backend", "job_id"),
        url_template="https://db.example.com/v1/export/{backend}/{job_id}",
        terminal=weaviate_export_body("SUCCESS", id="job-1", completedAt="2026-08-20T02:10:00.000Z"),
        id_at=("id",),
        status_at=("status",),
        conflicting_status="FAILED",
    ),
    SourceCase(
        name="weaviate-backup",
        title="Weaviate backup",
        success_word="backup finished",
        required_fields=("backend",),
        max_requests_per_second=None,
        statuses=_statuses(weaviate_backup_body, _WEAVIATE_BACKUP_STATUSES),
        unknown_statuses=[(s, weaviate_backup_body(s)) for s in ["CANCELLED", "PAUSED", "success"]],
        error_bodies=[
            ({"error": [{"message": "backup not found"}]}, "backup not found"),
            _WEAVIATE_API_KEY_401,
        ],
        drift=[
            ({"id": "x"}, "status is missing"),
            (weaviate_backup_body(status=["SUCCESS"]), "status is an array"),
            (weaviate_backup_body(size="1.5"), "size is a string"),
            (weaviate_backup_body(size=True), "size is a boolean"),
            (b'{"status": "SUCCESS", "size": NaN}', "size is not a finite number"),
            (b'{"status": "SUCCESS", "size": 1e400}', "size is not a finite number"),
            (weaviate_backup_body(completedAt=0), "completedAt"),
            (weaviate_backup_body(incremental_base_backup_id=1), "incremental_base_backup_id"),
        ],
        with_key=RequestCase(
            {
                "backend": "s3",
                "job_id": "nightly 1",
                "options": {"bucket": "my-bucket", "path": "backups/prod", "other": "x"},
            },
            "k",
            "GET",
            "https://db.example.com/v1/backups/s3/nightly%201",
            {"Accept": "application/json", "Authorization": "Bearer k"},
            params={"bucket": "my-bucket", "path": "backups/prod"},
        ),
        # An empty bucket override is no override: no params at all.
        without_key=RequestCase(
            {"backend": "filesystem", "options": {"bucket": ""}},
            None,
            "GET",
            "https://db.example.com/v1/backups/filesystem/job-1",
            _BEARER_ACCEPT,
        ),
        job_id_goes_in="path",
        valid_fields={"backend": "s3"},
        path_fields=("backend", "job_id"),
        url_template="https://db.example.com/v1/backups/{backend}/{job_id}",
        terminal=weaviate_backup_body("FAILED", id="job-1", error="disk full"),
        id_at=("id",),
        status_at=("status",),
        conflicting_status="SUCCESS",
    ),
    SourceCase(
        name="weaviate-restore",
        title="Weaviate restore",
        success_word="restore finished",
        required_fields=("backend",),
        max_requests_per_second=None,
        statuses=_statuses(weaviate_restore_body, _WEAVIATE_BACKUP_STATUSES),
        unknown_statuses=[("ROLLING_BACK", weaviate_restore_body("ROLLING_BACK"))],
        error_bodies=[({"error": [{"message": "coordinator cannot get status"}]}, "cannot get status")],
        drift=[
            ({"backend": "s3"}, "status is missing"),
            (weaviate_restore_body(status=1), "status"),
            (weaviate_restore_body(error=1), "error"),
        ],
        with_key=RequestCase(
            {"backend": "azure", "job_id": "b?1", "options": {"path": "p q"}},
            "k",
            "GET",
            "https://db.example.com/v1/backups/azure/b%3F1/restore",
            {"Accept": "application/json", "Authorization": "Bearer k"},
            params={"path": "p q"},
        ),
        without_key=RequestCase(
            {"backend": "s3"},
            None,
            "GET",
            "https://db.example.com/v1/backups/s3/job-1/restore",
            _BEARER_ACCEPT,
        ),
        job_id_goes_in="path",
        valid_fields={"backend": "s3"},
        path_fields=("backend", "job_id"),
        url_template="https://db.example.com/v1/backups/{backend}/{job_id}/restore",
        terminal=weaviate_restore_body("SUCCESS", id="job-1"),
        id_at=("id",),
        status_at=("status",),
        conflicting_status="FAILED",
    ),
    SourceCase(
        name="zilliz-import-v1",
        title="Zilliz Cloud import",
        success_word="import finished",
        required_fields=("cluster_id",),
        max_requests_per_second=20.0,
        statuses=ZILLIZ_V1_STATUSES,
        unknown_statuses=[],  # no status word to be unknown
        error_bodies=[({"code": 65535, "message": "controller unavailable"}, "controller unavailable")],
        drift=[
            (zilliz_v1_envelope(readyPercentage=None), "data.readyPercentage is missing"),
            ({"code": 200}, "data is null"),
            ({"code": 200, "data": []}, "data is an array"),
            ({"data": {}}, "code is missing"),
            ({"code": "ok", "data": {}}, "code is a string"),
            ({"code": None, "data": {}}, "code is null"),
            (zilliz_v1_envelope(errorMessage=5), "errorMessage"),
            (zilliz_v1_envelope(fileSize="big"), "fileSize"),
            (zilliz_v1_envelope(details={"a": 1}), "details is an object"),
            (zilliz_v1_envelope(details=["x"]), "data.details[0] is a string"),
            (zilliz_v1_envelope(completeTime=17), "completeTime"),
            # The doc's copy-paste failure example: success code, no data, a message.
            ({"code": 0, "message": "The token is illegal."}, "The token is illegal."),
        ],
        with_key=RequestCase(
            {
                "endpoint": "https://controller.api.gcp-us-west1.zillizcloud.com/",
                "job_id": "job-abc&x=1",
                "cluster_id": "in01-123",
            },
            "user:pass",
            "GET",
            "https://controller.api.gcp-us-west1.zillizcloud.com/v1/vector/collections/import/get",
            {"Accept": "application/json", "Authorization": "Bearer user:pass"},
            params={"jobId": "job-abc&x=1", "clusterId": "in01-123"},
        ),
        without_key=RequestCase(
            {"cluster_id": "in01-123"},
            None,
            "GET",
            "https://db.example.com/v1/vector/collections/import/get",
            _BEARER_ACCEPT,
            params={"jobId": "job-1", "clusterId": "in01-123"},
        ),
        job_id_goes_in="params",
        valid_fields={"cluster_id": "in01-123"},
        url_template="https://db.example.com/v1/vector/collections/import/get",
        terminal=zilliz_v1_envelope(readyPercentage=1, completeTime="2023-10-28T06:51:49Z"),
        id_at=("data", "jobId"),
        status_at=("data", "readyPercentage"),
        conflicting_status=0.5,
        envelope_codes=[
            (http, code, kind, f"message {code}")
            for http, code, kind in [
                (200, 80010, PollErrorKind.API_ERROR),
                (200, 80001, PollErrorKind.AUTH),
                (200, 80002, PollErrorKind.AUTH),
                (200, 21119, PollErrorKind.AUTH),
                (401, 80001, PollErrorKind.AUTH),
                (400, 80002, PollErrorKind.AUTH),  # a generic status refined by the auth code
                (200, 2100, PollErrorKind.API_ERROR),  # Milvus's not-found code means nothing on Zilliz
                (200, 65535, PollErrorKind.API_ERROR),
            ]
        ],
    ),
    SourceCase(
        name="zilliz-import-v2",
        title="Zilliz Cloud import",
        success_word="import finished",
        required_fields=("cluster_id",),
        max_requests_per_second=20.0,
        statuses=_statuses(
            lambda state: zilliz_v2_envelope(state=state),
            [
                ("Pending", Phase.PENDING, 40.0),
                ("Importing", Phase.RUNNING, 40.0),
                ("InProgress", Phase.RUNNING, 40.0),
                ("Completed", Phase.SUCCEEDED, 100.0),
                ("Failed", Phase.FAILED, None),
            ],
        ),
        unknown_statuses=[
            (s, zilliz_v2_envelope(state=s)) for s in ["Uncommitted", "Retry", "importing", "Cancelled"]
        ],
        error_bodies=[({"code": 65535, "message": "gateway exploded"}, "gateway exploded")],
        drift=[
            (zilliz_v2_envelope(state=None), "data.state is missing"),
            (zilliz_v2_envelope(state=3), "data.state is a number"),
            (zilliz_v2_envelope(progress="40"), "data.progress is a string"),
            (zilliz_v2_envelope(totalRows=1.5), "data.totalRows"),
            (zilliz_v2_envelope(reason=False), "data.reason"),
            (zilliz_v2_envelope(details="none"), "data.details is a string"),
            (zilliz_v2_envelope(details=[zilliz_v2_file(progress=[1])]), "data.details[0].progress"),
            ({"code": 0, "data": None}, "data is null"),
            ({"code": 0.5, "data": {}}, "code is a number"),
        ],
        with_key=RequestCase(
            {"endpoint": "https://api.cloud.zilliz.com.cn/", "cluster_id": "in01-1", "job_id": "job-9"},
            "key",
            "POST",
            "https://api.cloud.zilliz.com.cn/v2/vectordb/jobs/import/getProgress",
            {"Accept": "application/json", "Authorization": "Bearer key"},
            json={"clusterId": "in01-1", "jobId": "job-9"},
        ),
        without_key=RequestCase(
            {"cluster_id": "in01-1"},
            None,
            "POST",
            "https://db.example.com/v2/vectordb/jobs/import/getProgress",
            _BEARER_ACCEPT,
            json={"clusterId": "in01-1", "jobId": "job-1"},
        ),
        job_id_goes_in="json",
        valid_fields={"cluster_id": "in01-1"},
        url_template="https://db.example.com/v2/vectordb/jobs/import/getProgress",
        terminal=zilliz_v2_envelope(state="Completed", progress=100, completeTime="2024-04-01T06:17:55Z"),
        id_at=("data", "jobId"),
        status_at=("data", "state"),
        conflicting_status="Failed",
        envelope_codes=[
            (http, code, kind, "The apikey is illegal")
            for http, code, kind in [
                (401, 21119, PollErrorKind.AUTH),
                (200, 21119, PollErrorKind.AUTH),
                (200, 40013, PollErrorKind.API_ERROR),
                (200, 63104, PollErrorKind.API_ERROR),
                (500, 65535, PollErrorKind.HTTP_STATUS),
            ]
        ],
    ),
    SourceCase(
        name="milvus-import",
        title="Milvus import",
        success_word="import finished",
        required_fields=(),
        max_requests_per_second=None,
        statuses=_statuses(
            lambda state: milvus_envelope(state=state),
            [
                ("Pending", Phase.PENDING, 45.0),
                ("Importing", Phase.RUNNING, 45.0),
                ("Uncommitted", Phase.RUNNING, 45.0),
                ("Committing", Phase.RUNNING, 45.0),
                ("None", Phase.RUNNING, 45.0),
                ("Completed", Phase.SUCCEEDED, 100.0),
                ("Failed", Phase.FAILED, None),
            ],
        ),
        unknown_statuses=[(s, milvus_envelope(state=s)) for s in ["InProgress", "Aborted", "Sorting"]],
        error_bodies=[({"code": 65535, "message": "unexpected error"}, "unexpected error")],
        drift=[
            (milvus_envelope(state=None), "data.state is missing"),
            (milvus_envelope(state={"name": "Importing"}), "data.state is an object"),
            (milvus_envelope(progress=True), "data.progress is a boolean"),
            (milvus_envelope(importedRows="1"), "data.importedRows"),
            (milvus_envelope(details=[milvus_task(state=5)]), "data.details[0].state"),
            (milvus_envelope(details=[milvus_task(importedRows=-(2**70))]), "int64"),
            ({"code": "abc"}, "code is a string"),
        ],
        with_key=RequestCase(
            {
                "endpoint": "http://milvus.internal:19530/",
                "job_id": "451910421389390804",
                "options": {"dbName": "analytics"},
            },
            "root:Milvus",
            "POST",
            "http://milvus.internal:19530/v2/vectordb/jobs/import/describe",
            {"Accept": "application/json", "Authorization": "Bearer root:Milvus", "DB-Name": "analytics"},
            json={"jobId": "451910421389390804"},
        ),
        # A blank database name is no database: no DB-Name header.
        without_key=RequestCase(
            {"options": {"dbName": " "}},
            None,
            "POST",
            "https://db.example.com/v2/vectordb/jobs/import/describe",
            _BEARER_ACCEPT,
            json={"jobId": "job-1"},
        ),
        job_id_goes_in="json",
        url_template="https://db.example.com/v2/vectordb/jobs/import/describe",
        terminal=milvus_envelope(state="Failed", progress=0, reason="import timeout", jobId="job-1"),
        id_at=("data", "jobId"),
        status_at=("data", "state"),
        conflicting_status="Completed",
        envelope_codes=[
            (http, code, kind, "import job does not exist, jobID=1: importing data failed")
            for http, code, kind in [
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
            ]
        ],
    ),
    SourceCase(
        name="pinecone-import",
        title="Pinecone import",
        success_word="import finished",
        required_fields=(),
        max_requests_per_second=None,
        statuses=_statuses(
            pinecone_body,
            [
                ("Pending", Phase.PENDING, 42.2),
                ("InProgress", Phase.RUNNING, 42.2),
                ("Completed", Phase.SUCCEEDED, 100.0),
                ("Failed", Phase.FAILED, None),
                ("Cancelled", Phase.CANCELED, None),
            ],
        ),
        unknown_statuses=[(s, pinecone_body(s)) for s in ["Canceled", "Paused", "COMPLETED"]],
        error_bodies=[
            ({"code": 5, "message": "Import 101 not found", "details": []}, "Import 101 not found")
        ],
        drift=[
            ({"id": "1"}, "status is missing"),
            (pinecone_body(status=1), "status is a number"),
            (pinecone_body(percentComplete=100.5), "percentComplete"),
            (pinecone_body(percentComplete=-1), "percentComplete"),
            (pinecone_body(percentComplete="42"), "percentComplete is a string"),
            (pinecone_body(recordsImported=1.5), "recordsImported"),
            (pinecone_body(validationResult=[1]), "validationResult is an array"),
            (pinecone_body(validationResult={"importErrors": "x"}), "validationResult.importErrors"),
            (pinecone_body(createdAt=5), "createdAt"),
        ],
        with_key=RequestCase(
            {"endpoint": "https://idx-abc.svc.aped-4627.pinecone.io/", "job_id": "10 1"},
            "pc-key",
            "GET",
            "https://idx-abc.svc.aped-4627.pinecone.io/bulk/imports/10%201",
            {"Accept": "application/json", "X-Pinecone-Api-Version": "2025-10", "Api-Key": "pc-key"},
        ),
        without_key=RequestCase(
            {},
            None,
            "GET",
            "https://db.example.com/bulk/imports/job-1",
            {"Accept": "application/json", "X-Pinecone-Api-Version": "2025-10"},
        ),
        job_id_goes_in="path",
        path_fields=("job_id",),
        url_template="https://db.example.com/bulk/imports/{job_id}",
        terminal=pinecone_body("Completed", id="job-1", percentComplete=100.0),
        id_at=("id",),
        status_at=("status",),
        conflicting_status="Failed",
    ),
]
