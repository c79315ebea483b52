"""Zilliz Cloud import progress: the v1 API (`GET .../import/get`) and the v2 API (`POST getProgress`).

Zilliz's traps: v1 has no status word (its state is `readyPercentage`, a 0..1 fraction, plus
`errorMessage`), v1 answers `code: 200` where v2 answers `code: 0`, and both say "no such job" or
"bad key" with HTTP 200 and a non-success code. v2 is Milvus REST v2 hosted, so it shares Milvus's
progress and task-state conventions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..http11 import Response
from .jobs import DEFAULT_TOTAL_ROWS, FILE_SIZE, Dialect, Job, seconds_time, simulated_message
from .milvus import progress_int, task_state
from .script import JobState

ZILLIZ_V1 = "zilliz-import-v1"
ZILLIZ_V2 = "zilliz-import-v2"

# Not recorded anywhere we could read: Zilliz's code for an unknown job id. Chosen to follow the
# API's convention (HTTP 200 + non-success code).
ZILLIZ_V1_NOT_FOUND_CODE = 80020
ZILLIZ_V2_NOT_FOUND_CODE = 40020
ZILLIZ_V1_BAD_PARAMS_CODE = 80000

_V1_UNAUTHORIZED = {
    "code": 80001,
    "message": "Invalid token: Your token is not valid. Please double-check your request parameters "
    "and ensure that you have provided a valid token.",
}
_V2_UNAUTHORIZED = {"code": 21119, "message": "The apikey is illegal"}
_DEFAULT_COLLECTION = "medium_articles"


def _number(value: float) -> float | int:
    """Integral floats as ints: `readyPercentage` is `0`/`1` in the samples, not `0.0`/`1.0`."""
    return int(value) if float(value).is_integer() else value


def _ready_fraction(st: JobState) -> float:
    if st.ready is not None:
        return float(st.ready)
    if st.progress is not None:
        return float(st.progress) / 100.0
    return 1.0 if st.status in ("ImportCompleted", "Completed") else 0.0


def render_v1(job: Job, st: JobState, backend: str) -> dict[str, Any]:
    ready = _ready_fraction(st)
    completed = job.completion(ready >= 1)
    complete_time = seconds_time(completed) if completed else None
    files = st.files or ("data/1.parquet",)
    error = st.error or None
    details = [
        {
            "fileName": name,
            "fileSize": FILE_SIZE,
            "readyPercentage": _number(ready),
            "completeTime": complete_time,
            "errorMessage": error,
        }
        for name in files
    ]
    return {
        "collectionName": job.collection,
        "fileName": files[0] if len(files) == 1 else files[0].rsplit("/", 1)[0] + "/",
        "fileSize": FILE_SIZE * len(files),
        "readyPercentage": _number(ready),
        "completeTime": complete_time,
        "errorMessage": error,
        "jobId": job.job_id,
        "details": details,
    }


def render_v2(job: Job, st: JobState, backend: str) -> dict[str, Any]:
    status = st.status or "Importing"
    progress = progress_int(st, status)
    completed = job.completion(status == "Completed")
    complete_time = seconds_time(completed) if completed else ""
    files = st.files or ("data/1.parquet",)
    total = st.total_rows if st.total_rows is not None else DEFAULT_TOTAL_ROWS
    reason = st.error or ""
    details = [
        {
            "fileName": name,
            "fileSize": FILE_SIZE,
            "state": task_state(status),
            "progress": progress,
            "completeTime": complete_time,
            "reason": reason,
        }
        for name in files
    ]
    return {
        "jobId": job.job_id,
        "collectionName": job.collection,
        "fileName": files[0],
        "fileSize": FILE_SIZE * len(files),
        "state": status,
        "progress": progress,
        "completeTime": complete_time,
        "reason": reason,
        "totalRows": total,
        "details": details,
    }


def page_params(size: Any, page: Any) -> tuple[int, int]:
    """`pageSize`/`currentPage` as both APIs read them: defaults 10 and 1, never below 1."""
    try:
        size_n = int(size) if size not in (None, "") else 10
        page_n = int(page) if page not in (None, "") else 1
    except (TypeError, ValueError):
        return 10, 1
    return max(1, size_n), max(1, page_n)


def _v1_list_state(job: Job) -> str:
    st = job.visible_state()
    if st.status:
        return st.status
    if st.error:
        return "ImportFailed"
    return "ImportCompleted" if _ready_fraction(st) >= 1 else "ImportRunning"


def v1_list_body(jobs: Sequence[Job], page_size: int, page: int) -> dict[str, Any]:
    """`GET /v1/vector/collections/import/list`: one page of tasks, with the total count."""
    tasks = [{"collectionName": j.collection, "jobId": j.job_id, "state": _v1_list_state(j)} for j in jobs]
    data = {
        "tasks": tasks[(page - 1) * page_size : page * page_size],
        "count": len(tasks),
        "currentPage": page,
        "pageSize": page_size,
    }
    return {"code": 200, "data": data}


def v2_list_body(jobs: Sequence[Job], page_size: int, page: int) -> dict[str, Any]:
    """`POST /v2/vectordb/jobs/import/list` with a `clusterId`: one page of records."""
    records = [
        {
            "collectionName": j.collection,
            "jobId": j.job_id,
            "state": task_state(j.visible_state().status or "Importing"),
        }
        for j in jobs
    ]
    data = {
        "count": len(records),
        "currentPage": page,
        "pageSize": page_size,
        "records": records[(page - 1) * page_size : page * page_size],
    }
    return {"code": 0, "data": data}


def v1_bad_params(message: str) -> Response:
    return Response.json({"code": ZILLIZ_V1_BAD_PARAMS_CODE, "message": message})


def _v1_not_found(job_id: str) -> Response:
    message = f"Import job not found: jobId {job_id} does not exist in this cluster."
    return Response.json({"code": ZILLIZ_V1_NOT_FOUND_CODE, "message": message})


def _v2_not_found(job_id: str) -> Response:
    message = f"The import job {job_id} does not exist."
    return Response.json({"code": ZILLIZ_V2_NOT_FOUND_CODE, "message": message})


def _error_body(status: int) -> Any:
    return {"code": status, "message": simulated_message(status)}


V1 = Dialect(
    source=ZILLIZ_V1,
    default_collection=_DEFAULT_COLLECTION,
    # v1 has no status word: its state is readyPercentage plus errorMessage.
    status_keys=("readyPercentage", "errorMessage"),
    render=render_v1,
    unauthorized=lambda token: Response.json(_V1_UNAUTHORIZED, 401),
    not_found=_v1_not_found,
    error_body=_error_body,
    envelope_code=200,
    scope="cluster",
)
V2 = Dialect(
    source=ZILLIZ_V2,
    default_collection=_DEFAULT_COLLECTION,
    status_keys=("state",),
    render=render_v2,
    unauthorized=lambda token: Response.json(_V2_UNAUTHORIZED, 401),
    not_found=_v2_not_found,
    error_body=_error_body,
    envelope_code=0,
    scope="cluster",
)
