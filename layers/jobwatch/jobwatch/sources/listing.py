"""List endpoints of the sources that have one: the requests and the parsing of their bodies.

Used by auto-discovery (`jobwatch.watches`). Kept next to the sources because a list body shares the
envelope, codes and status vocabulary of the status body of the same API, and is read with the same
strict helpers: a drifted list body raises `PollError(INVALID_BODY)` rather than inventing jobs.
- Zilliz Cloud v1: `GET /v1/vector/collections/import/list?clusterId=&pageSize=&currentPage=`, jobs in
  `data.tasks` (doc example) or `data.records` (doc schema), states ImportRunning/Completed/Failed.
- Zilliz Cloud v2: `POST /v2/vectordb/jobs/import/list {clusterId, pageSize, currentPage}`, `data.records`,
  states Pending/InProgress (Importing on other pages)/Completed/Failed.
- Milvus: `POST /v2/vectordb/jobs/import/list {dbName?}`, `data.records` with progress and reason; no paging.
- Weaviate: `GET /v1/backups/{backend}`, a JSON array of backups (exports have no list endpoint).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jobwatch.domain.model import Phase
from jobwatch.sources._fields import clamp_percent
from jobwatch.sources._milvus_envelope import MILVUS_CODES, ZILLIZ_CODES, CodeKinds, unwrap
from jobwatch.sources._path import path_segment
from jobwatch.sources._shape import (
    as_object,
    drift,
    is_success,
    json_type,
    opt_list,
    opt_number,
    opt_str_list,
    opt_text,
    opt_timestamp,
    raise_http_error,
)
from jobwatch.sources._weaviate import BACKUP_PHASES
from jobwatch.sources.base import HttpRequest, HttpResponse, decode_json

PAGE_SIZE = 100

ZILLIZ_V1_LIST_PHASES: Mapping[str, Phase] = {
    "ImportPending": Phase.PENDING,
    "ImportRunning": Phase.RUNNING,
    "ImportCompleted": Phase.SUCCEEDED,
    "ImportFailed": Phase.FAILED,
}
V2_LIST_PHASES: Mapping[str, Phase] = {
    "Pending": Phase.PENDING,
    "Importing": Phase.RUNNING,
    "InProgress": Phase.RUNNING,
    "Uncommitted": Phase.RUNNING,
    "Committing": Phase.RUNNING,
    "None": Phase.RUNNING,
    "Completed": Phase.SUCCEEDED,
    "Failed": Phase.FAILED,
}


@dataclass(frozen=True, slots=True)
class ListedJob:
    """One job as a list endpoint shows it: enough to decide whether and how to start tracking it."""

    job_id: str
    status: str
    phase: Phase
    status_known: bool
    collections: tuple[str, ...] = ()
    progress: float | None = None
    error: str | None = None
    completed_at: str | None = None
    """Only Weaviate lists say when a job ended; None elsewhere."""


@dataclass(frozen=True, slots=True)
class ListPage:
    jobs: list[ListedJob]
    total: int | None = None
    """Jobs in all pages, when the API says (Zilliz); None when the page is everything (Milvus, Weaviate)."""


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def zilliz_v1_request(endpoint: str, cluster_id: str, api_key: str | None, page: int) -> HttpRequest:
    """Query parameters are strings in the v1 spec, page numbers start at 1."""
    return HttpRequest(
        method="GET",
        url=endpoint.rstrip("/") + "/v1/vector/collections/import/list",
        headers=_headers(api_key),
        params={"clusterId": cluster_id, "pageSize": str(PAGE_SIZE), "currentPage": str(page)},
    )


def zilliz_v2_request(endpoint: str, cluster_id: str, api_key: str | None, page: int) -> HttpRequest:
    return HttpRequest(
        method="POST",
        url=endpoint.rstrip("/") + "/v2/vectordb/jobs/import/list",
        headers=_headers(api_key),
        json={"clusterId": cluster_id, "pageSize": PAGE_SIZE, "currentPage": page},
    )


def milvus_request(endpoint: str, db_name: str | None, api_key: str | None) -> HttpRequest:
    """Without `collectionName` Milvus lists every database's jobs (dbName is then advisory)."""
    body: dict[str, Any] = {"dbName": db_name} if db_name else {}
    return HttpRequest(
        method="POST",
        url=endpoint.rstrip("/") + "/v2/vectordb/jobs/import/list",
        headers=_headers(api_key),
        json=body,
    )


def weaviate_backups_request(endpoint: str, backend: str, api_key: str | None) -> HttpRequest:
    """The backend is one path segment (PollError CONFIG when it cannot be: see `domain.identifiers`)."""
    return HttpRequest(
        method="GET",
        url=f"{endpoint.rstrip('/')}/v1/backups/{path_segment('backend', backend)}",
        headers=_headers(api_key),
    )


def _count(value: Any) -> int | None:
    """`count` is an integer in examples and a string in the v1 schema table: accept both."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise drift("data.count", f"is {json_type(value)}, expected an integer")


def _job_id(record: dict[str, Any], key: str, where: str) -> str:
    value = record.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # Milvus ids are int64; some builds may send them as numbers
    if not isinstance(value, str) or not value.strip():
        raise drift(f"{where}.{key}", "is missing or not a string")
    return value.strip()


def _state(record: dict[str, Any], where: str, phases: Mapping[str, Phase]) -> tuple[str, Phase, bool]:
    status = opt_text(record, "state", where)
    if status is None:
        raise drift(f"{where}.state", "is missing")
    phase = phases.get(status)
    return status, phase or Phase.RUNNING, phase is not None


def _records(data: dict[str, Any], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    for key in keys:
        if data.get(key) is not None:
            return [as_object(raw, f"data.{key}[{i}]") for i, raw in enumerate(opt_list(data, key, "data"))]
    return []


def _enveloped(
    response: HttpResponse, codes: CodeKinds, keys: tuple[str, ...], phases: Mapping[str, Phase]
) -> ListPage:
    data = unwrap(response, codes)
    jobs = []
    for index, record in enumerate(_records(data, keys)):
        where = f"data.{keys[0]}[{index}]"
        status, phase, known = _state(record, where, phases)
        collection = opt_text(record, "collectionName", where)
        jobs.append(
            ListedJob(
                job_id=_job_id(record, "jobId", where),
                status=status,
                phase=phase,
                status_known=known,
                collections=(collection,) if collection else (),
                progress=clamp_percent(opt_number(record, "progress", where)),
                error=opt_text(record, "reason", where),
            )
        )
    return ListPage(jobs, _count(data.get("count")))


def parse_zilliz_v1_list(response: HttpResponse) -> ListPage:
    return _enveloped(response, ZILLIZ_CODES, ("tasks", "records"), ZILLIZ_V1_LIST_PHASES)


def parse_zilliz_v2_list(response: HttpResponse) -> ListPage:
    return _enveloped(response, ZILLIZ_CODES, ("records",), V2_LIST_PHASES)


def parse_milvus_list(response: HttpResponse) -> ListPage:
    page = _enveloped(response, MILVUS_CODES, ("records",), V2_LIST_PHASES)
    return ListPage(page.jobs, None)


def parse_weaviate_backups(response: HttpResponse) -> ListPage:
    """`BackupListResponse`: an array; running backups carry Go's zero `completedAt` (read as None)."""
    if not is_success(response):
        raise_http_error(response)
    data = decode_json(response, "backup list")
    if not isinstance(data, list):
        raise drift("body", f"is {json_type(data)}, expected an array of backups")
    jobs = []
    for index, raw in enumerate(data):
        where = f"[{index}]"
        item = as_object(raw, where)
        status = opt_text(item, "status", where)
        if status is None:
            raise drift(f"{where}.status", "is missing")
        phase = BACKUP_PHASES.get(status)
        jobs.append(
            ListedJob(
                job_id=_job_id(item, "id", where),
                status=status,
                phase=phase or Phase.RUNNING,
                status_known=phase is not None,
                collections=tuple(opt_str_list(item, "classes", where)),
                error=opt_text(item, "error", where),
                completed_at=opt_timestamp(item, "completedAt", where),
            )
        )
    return ListPage(jobs, None)
