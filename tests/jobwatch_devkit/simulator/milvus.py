"""Milvus REST v2 import describe and list (self-hosted Milvus; Zilliz Cloud v2 shares its conventions).

Milvus answers errors with HTTP 200 and a `{code, message}` body (2100: no such job, 1800: not
authenticated, 1807: rate limited), omits `reason` when it is empty, lists no per-file tasks before
pre-import finishes and answers unknown paths with gin's plain-text 404.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..http11 import Request, Response
from .jobs import DEFAULT_TOTAL_ROWS, FILE_SIZE, Dialect, Job, seconds_time, simulated_message
from .script import JobState

MILVUS = "milvus-import"

_UNAUTHORIZED = {"code": 1800, "message": "user hasn't authenticated"}


def progress_int(st: JobState, status: str) -> int:
    """REST v2 `progress` is an integer percentage (Zilliz v2 too)."""
    if st.progress is not None:
        return int(st.progress)
    return 100 if status == "Completed" else 0


def task_state(job_state: str) -> str:
    """Per-file task states use `InProgress` where the job says `Importing`."""
    return "InProgress" if job_state == "Importing" else job_state


def render(job: Job, st: JobState, backend: str) -> dict[str, Any]:
    status = st.status or "Importing"
    progress = progress_int(st, status)
    completed = job.completion(status == "Completed")
    complete_time = seconds_time(completed) if completed else ""
    failed = status == "Failed"
    total = st.total_rows if st.total_rows is not None else (0 if failed else DEFAULT_TOTAL_ROWS)
    rows = st.rows if st.rows is not None else (0 if failed else total * progress // 100)
    files = st.files or ("data/1.parquet",)
    details: list[dict[str, Any]] = []
    if status != "Pending":  # details list import tasks only: none before pre-import finishes
        per_file = total // len(files) if files else 0
        for name in files:
            detail: dict[str, Any] = {
                "completeTime": complete_time,
                "fileName": f"[{name}]",
                "fileSize": FILE_SIZE,
                "importedRows": rows // len(files),
                "progress": progress,
                "state": task_state(status),
                "totalRows": per_file,
            }
            if st.error:
                detail["reason"] = st.error
            details.append(detail)
    obj: dict[str, Any] = {
        "jobId": job.job_id,
        "collectionName": job.collection,
        "completeTime": complete_time,
        "state": status,
        "progress": progress,
        "importedRows": rows,
        "totalRows": total,
    }
    if st.error:  # Milvus omits `reason` when empty (Zilliz sends "")
        obj["reason"] = st.error
    obj["fileSize"] = FILE_SIZE * len(details)
    obj["details"] = details
    return obj


def list_body(jobs: Iterable[Job]) -> dict[str, Any]:
    """`POST /v2/vectordb/jobs/import/list`: every job as a record, no paging."""
    records = []
    for job in jobs:
        st = job.visible_state()
        status = st.status or "Importing"
        record: dict[str, Any] = {
            "collectionName": job.collection,
            "jobId": job.job_id,
            "progress": progress_int(st, status),
            "state": status,
        }
        if st.error:
            record["reason"] = st.error
        records.append(record)
    return {"code": 0, "data": {"records": records}}


def request_body(request: Request) -> dict[str, Any] | Response:
    """A REST v2 request's JSON object, or the bind error Milvus answers when there is none."""
    try:
        body = request.json()
    except ValueError as exc:
        return bind_error(f"invalid JSON: {exc}")
    if not isinstance(body, dict):
        return bind_error("body is not an object")
    return body


def bind_error(detail: str) -> Response:
    """What a REST v2 handler answers when the request body does not bind (HTTP 200, code 1801)."""
    return Response.json({"code": 1801, "message": f"can only accept json format request, error: {detail}"})


def missing_job_id() -> Response:
    message = "missing required parameters, error: Key: 'JobIDReq.JobID' Error:Field validation for "
    message += "'JobID' failed on the 'required' tag"
    return Response.json({"code": 1802, "message": message})


def job_id_not_a_string(job_id: object) -> Response:
    kind = "number" if isinstance(job_id, int | float) else type(job_id).__name__
    return bind_error(f"json: cannot unmarshal {kind} into Go struct field JobIDReq.jobId of type string")


def page_not_found() -> Response:
    """gin's default 404, as Milvus answers unknown paths."""
    return Response.text(404, "404 page not found")


def _not_found(job_id: str) -> Response:
    message = f"import job does not exist, jobID={job_id}: importing data failed"
    return Response.json({"code": 2100, "message": message})


def _error_body(status: int) -> Any:
    if status == 429:
        return {"code": 1807, "message": "request is rejected by limiter"}
    return {"code": status, "message": simulated_message(status)}


DIALECT = Dialect(
    source=MILVUS,
    default_collection="medium_articles",
    status_keys=("state",),
    render=render,
    unauthorized=lambda token: Response.json(_UNAUTHORIZED, 401),
    not_found=_not_found,
    error_body=_error_body,
    envelope_code=0,
)
