"""Every reference sample, parsed by the source it belongs to, against the exact expected outcome.

Samples are discovered by `conftest.py` (all files under milvus/samples/*/ and every export/backup
entry of weaviate/examples.constructed.json, errors included); each needs an entry in EXPECTED, so a
new sample fails here until it is classified. Samples that are not status responses are listed as
NotApplicable with the reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.domain.model import JobSpec, Phase
from jobwatch.sources import get_source
from jobwatch.sources.base import HttpResponse


@dataclass(frozen=True)
class Snap:
    """The snapshot a sample must produce; `details` is a subset that must match exactly."""

    source: str
    phase: Phase
    status: str
    progress: float | None
    error: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    status_known: bool = True
    http_status: int | None = None
    """For samples that do not say which HTTP status they came with."""


@dataclass(frozen=True)
class Err:
    """The PollError a sample must raise; `text` must appear in its message."""

    source: str
    kind: PollErrorKind
    api_code: int | str | None = None
    text: str | None = None
    http_status: int | None = None


@dataclass(frozen=True)
class NotApplicable:
    reason: str


Expectation = Snap | Err | NotApplicable | tuple[Snap | Err, ...]

V1 = "zilliz-import-v1"
V2 = "zilliz-import-v2"
MILVUS = "milvus-import"
PINECONE = "pinecone-import"
EXPORT = "weaviate-export"
BACKUP = "weaviate-backup"
RESTORE = "weaviate-restore"

NOT_A_STATUS_CREATE = NotApplicable("create response (only a job id); jobwatch never polls the create call")
NOT_A_STATUS_LIST = NotApplicable("list response; jobwatch polls one job's status, not the list")
EXPORT_PATH = "s3://my-export-bucket/exports/nightly-export-2026-08-20"
BACKUP_PATH = "s3://my-backup-bucket/backups/nightly-backup-2026-08-20"
W_EXPORT = "weaviate/export/GET /v1/export/s3/{id} 200 "
W_EXPORT_ERR = "weaviate/export/errors/"
W_BACKUP = "weaviate/backup/GET /v1/backups/s3/{id} 200 create status "
W_RESTORE = "weaviate/backup/GET /v1/backups/s3/{id}/restore 200 restore status "
W_BACKUP_ERR = "weaviate/backup/errors/"
W_BACKUP_RUNNING = (
    "weaviate/backup/GET /v1/backups/s3/{id} 200 create status, in progress (served from coordinator memory)"
)

EXPECTED: dict[str, Expectation] = {
    # --- Zilliz Cloud v1 controller -------------------------------------------------------------
    "milvus/samples/zilliz-cloud-v1/create.json": NOT_A_STATUS_CREATE,
    "milvus/samples/zilliz-cloud-v1/list.json": NOT_A_STATUS_LIST,
    "milvus/samples/zilliz-cloud-v1/get-progress.running.json": Snap(
        V1,
        Phase.RUNNING,
        "ImportRunning",
        0.0,
        details={
            "collections": ["medium_articles"],
            "fileName": "1af78216-xxxx-xxxx-xxxx-2b0a73c566ed/1.parquet",
            "fileSize": 19599887,
            "filesTotal": 1,
            "filesDone": 0,
            "filesFailed": 0,
        },
    ),
    "milvus/samples/zilliz-cloud-v1/get-progress.seed-doc-placeholder.json": Snap(
        V1,
        Phase.RUNNING,
        "ImportRunning",
        0.0,
        details={
            "collections": ["medium_articles"],
            "filesFailed": 0,
            "files": [
                {
                    "fileName": "1af78216-xxxx-xxxx-xxxx-2b0a73c566ed/1.parquet",
                    "fileSize": 19599887,
                    "progress": 0.0,
                    "completeTime": None,
                    "error": None,
                }
            ],
        },
        http_status=200,  # the doc shows the body only
    ),
    "milvus/samples/zilliz-cloud-v1/get-progress.completed.json": Snap(
        V1,
        Phase.SUCCEEDED,
        "ImportCompleted",
        100.0,
        completed_at="2023-10-28T06:51:49Z",
        details={"collections": ["medium_articles"], "fileSize": 26571700, "filesTotal": 1, "filesDone": 1},
    ),
    "milvus/samples/zilliz-cloud-v1/error.invalid-token.recorded-401.json": Err(
        V1, PollErrorKind.AUTH, 80001, "Invalid token"
    ),
    "milvus/samples/zilliz-cloud-v1/error.business.recorded-200.json": Err(
        V1, PollErrorKind.API_ERROR, 80010, "Duplicated ClusterName"
    ),
    # The doc does not say which HTTP status carries 80002: auth either way.
    "milvus/samples/zilliz-cloud-v1/error.token-not-found.json": (
        Err(V1, PollErrorKind.AUTH, 80002, "Token not found", http_status=200),
        Err(V1, PollErrorKind.AUTH, 80002, "Token not found", http_status=401),
    ),
    # --- Zilliz Cloud v2 control plane ----------------------------------------------------------
    "milvus/samples/zilliz-cloud-v2/list.json": NOT_A_STATUS_LIST,
    "milvus/samples/zilliz-cloud-v2/get-progress.completed.json": Snap(
        V2,
        Phase.SUCCEEDED,
        "Completed",
        100.0,
        completed_at="2024-04-01T06:17:55Z",
        details={
            "collections": ["medium_articles"],
            "fileName": "medium_articles_2020_dpr.json",
            "fileSize": 3279917,
            "totalRows": 100000,
            "importedRows": None,
            "filesTotal": 1,
            "filesDone": 1,
            "filesFailed": 0,
            "allFilesCompleted": True,
        },
    ),
    "milvus/samples/zilliz-cloud-v2/error.apikey-illegal.recorded-401.json": Err(
        V2, PollErrorKind.AUTH, 21119, "The apikey is illegal"
    ),
    "milvus/samples/zilliz-cloud-v2/error.business.recorded-200.json": Err(
        V2, PollErrorKind.API_ERROR, 40013, "cluster name already exists"
    ),
    # --- Milvus REST v2 -------------------------------------------------------------------------
    "milvus/samples/milvus-v2/create.json": NOT_A_STATUS_CREATE,
    "milvus/samples/milvus-v2/create.prerelease-2.4.json": NOT_A_STATUS_CREATE,
    "milvus/samples/milvus-v2/list.pending.json": NOT_A_STATUS_LIST,
    "milvus/samples/milvus-v2/describe.completed.json": Snap(
        MILVUS,
        Phase.SUCCEEDED,
        "Completed",
        100.0,
        completed_at="2024-04-01T06:17:55Z",
        details={
            "collections": ["quick_setup"],
            "importedRows": 100000,
            "totalRows": 100000,
            "fileSize": 3279917,
            "filesTotal": 1,
            "filesDone": 1,
            "allFilesCompleted": True,
        },
    ),
    "milvus/samples/milvus-v2/describe.importing-80.partial.json": Snap(
        MILVUS,
        Phase.RUNNING,
        "Importing",
        80.0,
        details={
            "collections": ["clue_data"],
            "allFilesCompleted": True,
            "filesTotal": 1,
            "filesDone": 1,
            "files": [
                {
                    "fileName": "[5.parquet]",
                    "fileSize": 6776153,
                    "state": "Completed",
                    "progress": 100.0,
                    "importedRows": 520161,
                    "totalRows": 520161,
                    "completeTime": "2025-01-16T08:42:09Z",
                    "error": None,
                }
            ],
        },
    ),
    "milvus/samples/milvus-v2/describe.pending.synthesized.json": Snap(
        MILVUS,
        Phase.PENDING,
        "Pending",
        0.0,
        details={"collections": ["c"], "filesTotal": 0, "allFilesCompleted": False},
    ),
    "milvus/samples/milvus-v2/describe.failed.synthesized.json": Snap(
        MILVUS,
        Phase.FAILED,
        "Failed",
        None,
        error="<job failure reason, e.g. 'import timeout'>",
        details={"collections": ["price"], "importedRows": 0, "totalRows": 0, "filesTotal": 0},
    ),
    "milvus/samples/milvus-v2/error.job-not-found.synthesized.json": Err(
        MILVUS, PollErrorKind.NOT_FOUND, 2100, "import job does not exist"
    ),
    "milvus/samples/milvus-v2/error.unauthenticated.synthesized.json": Err(
        MILVUS, PollErrorKind.AUTH, 1800, "user hasn't authenticated"
    ),
    "milvus/samples/milvus-v2/error.collection-not-found.json": Err(
        MILVUS, PollErrorKind.API_ERROR, 100, "collection not found"
    ),
    "milvus/samples/milvus-v2/error.bad-jobid-type.synthesized.json": Err(
        MILVUS, PollErrorKind.API_ERROR, 1801, "can only accept json format request"
    ),
    # --- Pinecone -------------------------------------------------------------------------------
    # A doc example with placeholder strings ("<string>"): parsed as the values they are.
    "milvus/samples/pinecone/describe-import.json": Snap(
        PINECONE,
        Phase.PENDING,
        "Pending",
        42.2,
        error="<string>",
        started_at="2023-11-07T05:31:56Z",
        completed_at="2023-11-07T05:31:56Z",
        details={
            "location": "<string>",
            "recordsImported": 1000000,
            "importSuccesses": 999990,
            "importErrors": 10,
        },
    ),
    # --- Weaviate export ------------------------------------------------------------------------
    "weaviate/export/POST /v1/export/s3 request body": NotApplicable("a request body, not a response"),
    "weaviate/export/POST /v1/export/s3 200 ExportCreateResponse": NOT_A_STATUS_CREATE,
    "weaviate/export/DELETE /v1/export/s3/{id} 204": NotApplicable("cancel answers 204 without a body"),
    W_EXPORT + "TRANSFERRING (in progress)": Snap(
        EXPORT,
        Phase.RUNNING,
        "TRANSFERRING",
        33.33,
        started_at="2026-08-20T02:00:00.123000Z",
        details={
            "backend": "s3",
            "path": EXPORT_PATH,
            "location": EXPORT_PATH,
            "collections": ["Article", "Product"],
            "objectsExported": 370000,
            "shards": {"total": 3, "transferring": 2, "succeeded": 1, "failed": 0, "skipped": 0},
            "failedShards": [],
        },
    ),
    W_EXPORT + "SUCCESS": Snap(
        EXPORT,
        Phase.SUCCEEDED,
        "SUCCESS",
        100.0,
        started_at="2026-08-20T02:00:00.123000Z",
        completed_at="2026-08-20T02:14:05.456000Z",
        details={
            "tookInMs": 845333,
            "objectsExported": 1012090,
            "shards": {"total": 3, "transferring": 0, "succeeded": 3, "failed": 0, "skipped": 0},
        },
    ),
    W_EXPORT + "SUCCESS (multi-tenant, offloaded/frozen tenant skipped)": Snap(
        EXPORT,
        Phase.SUCCEEDED,
        "SUCCESS",
        100.0,
        started_at="2026-08-20T03:00:58.250000Z",
        completed_at="2026-08-20T03:01:10Z",
        details={
            "collections": ["TenantDocs"],
            "objectsExported": 10,
            "skippedShards": [
                {"collection": "TenantDocs", "shard": "tenantEmpty", "reason": "no data"},
                {"collection": "TenantDocs", "shard": "tenantD", "reason": "tenant status is FROZEN"},
            ],
        },
    ),
    W_EXPORT + "FAILED (a shard failed)": Snap(
        EXPORT,
        Phase.FAILED,
        "FAILED",
        None,
        error="node weaviate-1 failed: failed to export class Article shard Xk3pQ9aLmN2b: "
        "upload parquet: context deadline exceeded",
        started_at="2026-08-20T02:00:00.123000Z",
        completed_at="2026-08-20T02:05:12.001000Z",
        details={
            "objectsExported": 541877,
            "failedShards": [
                {
                    "collection": "Article",
                    "shard": "Xk3pQ9aLmN2b",
                    "error": "upload parquet: context deadline exceeded",
                }
            ],
        },
    ),
    W_EXPORT + "FAILED (node left the cluster; first poll, completedAt not yet known)": Snap(
        EXPORT,
        Phase.FAILED,
        "FAILED",
        None,
        error="node weaviate-2 failed: node weaviate-2 is no longer part of the cluster",
        started_at="2026-08-20T02:00:00.123000Z",
        completed_at=None,
        details={"objectsExported": 90000},
    ),
    W_EXPORT + "CANCELED": Snap(
        EXPORT,
        Phase.CANCELED,
        "CANCELED",
        None,
        error="export was canceled",
        started_at="2026-08-20T02:00:00.123000Z",
        completed_at="2026-08-20T02:03:00.789000Z",
        details={"tookInMs": 180666, "collections": ["Article", "Product"], "shards": None},
    ),
    W_EXPORT_ERR + "GET status 404": Err(EXPORT, PollErrorKind.NOT_FOUND, None, "export not found"),
    W_EXPORT_ERR + "DELETE 409 (already SUCCESS/FAILED/CANCELED)": Err(
        EXPORT, PollErrorKind.HTTP_STATUS, None, "export has already finished"
    ),
    W_EXPORT_ERR + "POST 409 (ID reused)": Err(
        EXPORT, PollErrorKind.HTTP_STATUS, None, "export already exists"
    ),
    W_EXPORT_ERR + "POST/GET/DELETE 422 (feature disabled)": Err(
        EXPORT, PollErrorKind.HTTP_STATUS, None, "export API is disabled"
    ),
    W_EXPORT_ERR + "POST/GET/DELETE 422 (bad id)": Err(
        EXPORT, PollErrorKind.HTTP_STATUS, None, "invalid export id"
    ),
    W_EXPORT_ERR + "POST/GET/DELETE 422 (no bucket configured)": Err(
        EXPORT, PollErrorKind.HTTP_STATUS, None, "EXPORT_DEFAULT_BUCKET is required"
    ),
    W_EXPORT_ERR + "POST/GET/DELETE 422 (unknown backend)": Err(
        EXPORT, PollErrorKind.HTTP_STATUS, None, "backend ftp not available"
    ),
    W_EXPORT_ERR + "GET 403": Err(EXPORT, PollErrorKind.AUTH, None, "insufficient permissions"),
    W_EXPORT_ERR + "POST 422 from request validation (go-openapi, different shape)": Err(
        EXPORT, PollErrorKind.HTTP_STATUS, 602, "file_format in body is required"
    ),
    W_EXPORT_ERR + "401 no credentials, anonymous access disabled (different shape)": Err(
        EXPORT, PollErrorKind.AUTH, None, "anonymous access not enabled"
    ),
    W_EXPORT_ERR + "401 bad API key (go-openapi shape)": Err(
        EXPORT, PollErrorKind.AUTH, None, "unauthorized: invalid api key"
    ),
    # --- Weaviate backup and restore ------------------------------------------------------------
    W_BACKUP_RUNNING: Snap(
        BACKUP,
        Phase.RUNNING,
        "STARTED",
        None,
        started_at="2026-08-20T01:00:00Z",
        completed_at=None,
        details={"backend": "s3", "location": BACKUP_PATH, "collections": []},
    ),
    W_BACKUP + "SUCCESS": Snap(
        BACKUP,
        Phase.SUCCEEDED,
        "SUCCESS",
        100.0,
        started_at="2026-08-20T01:00:00Z",
        completed_at="2026-08-20T01:07:31.512000Z",
        details={"sizeGiB": 1.7342, "location": BACKUP_PATH},
    ),
    W_BACKUP + "FAILED": Snap(
        BACKUP,
        Phase.FAILED,
        "FAILED",
        None,
        error="node weaviate-2: upload: connection reset by peer",
        started_at="2026-08-20T01:00:00Z",
        completed_at="2026-08-20T01:02:10Z",
        details={"sizeGiB": None},
    ),
    W_BACKUP + "CANCELED (after coordinator restart)": Snap(
        BACKUP,
        Phase.CANCELED,
        "CANCELED",
        None,
        error="backup canceled due to node restart",
        started_at="2026-08-20T01:00:00Z",
        completed_at=None,
    ),
    W_RESTORE + "TRANSFERRING": Snap(
        RESTORE,
        Phase.RUNNING,
        "TRANSFERRING",
        None,
        details={"location": BACKUP_PATH, "timestampsObserved": True},
    ),
    W_RESTORE + "FINALIZING": Snap(
        RESTORE, Phase.RUNNING, "FINALIZING", None, details={"timestampsObserved": True}
    ),
    W_RESTORE + "CANCELED": Snap(
        RESTORE,
        Phase.CANCELED,
        "CANCELED",
        None,
        error="restore canceled by user",
        details={"timestampsObserved": True},
    ),
    "weaviate/backup/GET /v1/backups/s3?order=desc 200 BackupListResponse": NOT_A_STATUS_LIST,
    W_BACKUP_ERR + "GET create/restore status 404": (
        Err(BACKUP, PollErrorKind.NOT_FOUND, None, "metadata not found"),
        Err(RESTORE, PollErrorKind.NOT_FOUND, None, "metadata not found"),
    ),
    W_BACKUP_ERR + "DELETE create 422 (already succeeded)": Err(
        BACKUP, PollErrorKind.HTTP_STATUS, None, "already succeeded"
    ),
    W_BACKUP_ERR + "DELETE restore 422 (FINALIZING)": Err(
        RESTORE, PollErrorKind.HTTP_STATUS, None, "cannot be cancelled"
    ),
    W_BACKUP_ERR + "GET create status 422 (unknown backend)": Err(
        BACKUP, PollErrorKind.HTTP_STATUS, None, "no backup provider"
    ),
}


def _spec(source: str) -> JobSpec:
    return JobSpec(
        source=source, endpoint="https://db.example.com", job_id="job", backend="s3", cluster_id="c"
    )


def _response(sample: Any, override: int | None) -> HttpResponse:
    status = override if override is not None else sample.http_status
    assert status is not None, f"{sample.id}: no HTTP status in the sample; give one in EXPECTED"
    return HttpResponse(status_code=status, body=json.dumps(sample.body).encode())


def _check_snapshot(sample: Any, expected: Snap) -> None:
    source = get_source(expected.source)
    snapshot = source.parse(_response(sample, expected.http_status))
    actual = (
        snapshot.phase,
        snapshot.status,
        snapshot.progress,
        snapshot.error,
        snapshot.started_at,
        snapshot.completed_at,
        snapshot.status_known,
    )
    wanted = (
        expected.phase,
        expected.status,
        expected.progress,
        expected.error,
        expected.started_at,
        expected.completed_at,
        expected.status_known,
    )
    assert actual == wanted
    for key, value in expected.details.items():
        assert snapshot.details.get(key) == value, key
    json.dumps(snapshot.to_wire(), allow_nan=False)
    source.facts(_spec(expected.source), snapshot)  # renders without raising


def _check_error(sample: Any, expected: Err) -> None:
    with pytest.raises(PollError) as info:
        get_source(expected.source).parse(_response(sample, expected.http_status))
    error = info.value
    assert (error.kind, error.api_code) == (expected.kind, expected.api_code)
    if expected.text is not None:
        assert expected.text in error.message


def test_reference_sample(reference_sample: Any, reference_dir: Path) -> None:
    """One discovered sample (conftest `Sample`: id, family, http_status, body) against EXPECTED."""
    expectation = EXPECTED.get(reference_sample.id)
    assert expectation is not None, (
        f"unclassified reference sample {reference_sample.id!r}: add it to EXPECTED"
    )
    if isinstance(expectation, NotApplicable):
        assert expectation.reason
        return
    for item in expectation if isinstance(expectation, tuple) else (expectation,):
        if isinstance(item, Snap):
            _check_snapshot(reference_sample, item)
        else:
            _check_error(reference_sample, item)


def test_no_stale_expectations(reference_samples: list[Any]) -> None:
    """An expectation whose sample disappeared means the reference changed: look again."""
    discovered = {sample.id for sample in reference_samples}
    assert sorted(set(EXPECTED) - discovered) == []


def test_weaviate_examples_have_no_unclassified_section(weaviate_example_sections: set[str]) -> None:
    assert weaviate_example_sections == {"_about", "export", "backup"}


def test_every_source_family_has_samples(reference_dir: Path) -> None:
    families = {path.name for path in (reference_dir / "milvus" / "samples").iterdir() if path.is_dir()}
    assert families == {"zilliz-cloud-v1", "zilliz-cloud-v2", "milvus-v2", "pinecone"}


def test_reference_discovery_is_not_empty(reference_samples: list[Any]) -> None:
    # A broken glob must not turn the whole contract into zero tests.
    assert len(reference_samples) >= len(EXPECTED)


# --- the job a status sample names -------------------------------------------------------------------

ID_AT: dict[str, tuple[str, ...]] = {
    EXPORT: ("id",),
    BACKUP: ("id",),
    RESTORE: ("id",),
    PINECONE: ("id",),
    V1: ("data", "jobId"),
    V2: ("data", "jobId"),
    MILVUS: ("data", "jobId"),
}
"""Where each source's status body names its job: what `parse(..., expect_id=...)` compares."""
SAMPLES_NAMING_NO_JOB = {
    # Truncated in the issue it was quoted from; a complete describe body carries `jobId`.
    "milvus/samples/milvus-v2/describe.importing-80.partial.json",
}


def _named_job(body: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


def test_every_status_sample_names_its_job_where_the_source_looks(reference_sample: Any) -> None:
    """Each sample that parses to a snapshot still does when the poller expects the job it names,
    and is refused (INVALID_BODY) when the poller expects another one."""
    expectation = EXPECTED.get(reference_sample.id)
    items = expectation if isinstance(expectation, tuple) else (expectation,)
    for expected in (item for item in items if isinstance(item, Snap)):
        source = get_source(expected.source)
        response = _response(reference_sample, expected.http_status)
        named = _named_job(reference_sample.body, ID_AT[expected.source])
        if reference_sample.id in SAMPLES_NAMING_NO_JOB:
            assert named is None
            assert source.parse(response, expect_id="any-job").phase is expected.phase
            continue
        assert isinstance(named, str) and named, (
            f"{reference_sample.id}: no job id at {ID_AT[expected.source]}"
        )
        assert source.parse(response, expect_id=named) == source.parse(response)
        with pytest.raises(PollError) as info:
            source.parse(response, expect_id=f"{named}-other")
        assert info.value.kind is PollErrorKind.INVALID_BODY
        assert info.value.message == f"the answer is about job {named!r}, not {named + '-other'!r}"
