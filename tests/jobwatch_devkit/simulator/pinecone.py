"""Pinecone bulk import describe and list (`GET /bulk/imports[/{id}]`).

Pinecone is the one source keyed by an `Api-Key` header rather than a bearer token, and its errors
are real HTTP statuses carrying a gRPC-style rpcStatus body `{code, message, details}`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..http11 import Response
from .jobs import Dialect, Job, seconds_time, simulated_message
from .script import JobState

PINECONE = "pinecone-import"

_TERMINAL = frozenset({"Completed", "Failed", "Cancelled"})
# Not recorded anywhere we could read: Pinecone's rpcStatus texts. The codes follow gRPC's.
_GRPC_CODE = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 422: 3, 429: 8, 500: 13, 502: 14, 503: 14, 504: 4}


def render(job: Job, st: JobState, backend: str) -> dict[str, Any]:
    status = st.status or "InProgress"
    completed = job.completion(status in _TERMINAL)
    percent = 100.0 if status == "Completed" else 0.0
    if st.progress is not None:
        percent = float(st.progress)
    obj: dict[str, Any] = {
        "id": job.job_id,
        "uri": f"s3://jobwatch-sim/imports/{job.collection}/",
        "status": status,
        "createdAt": seconds_time(job.started),
        "percentComplete": percent,
        "recordsImported": st.rows if st.rows is not None else 0,
    }
    if completed is not None:
        obj["finishedAt"] = seconds_time(completed)
    if st.error:
        obj["error"] = st.error
    return obj


def page_params(query: Mapping[str, str]) -> tuple[int, int] | Response:
    """`limit` (1..100, default 100) and the offset hidden in `paginationToken`, or the 400 answer."""
    try:
        limit = max(1, min(100, int(query.get("limit", "100"))))
        offset = int(query.get("paginationToken") or "0")
    except ValueError:
        body = {"code": 3, "message": "invalid limit or paginationToken", "details": []}
        return Response.json(body, 400)
    return limit, offset


def list_body(jobs: Sequence[Job], limit: int, offset: int) -> dict[str, Any]:
    """One page of full import descriptions, with a `pagination.next` token while more remain."""
    page = jobs[offset : offset + limit]
    out: dict[str, Any] = {"data": [render(j, j.visible_state(), "") for j in page]}
    if offset + limit < len(jobs):
        out["pagination"] = {"next": str(offset + limit)}
    return out


def unknown_path(path: str) -> Response:
    return Response.json({"code": 5, "message": f"path {path} not found", "details": []}, 404)


def _not_found(job_id: str) -> Response:
    return Response.json({"code": 5, "message": f"Import {job_id} not found", "details": []}, 404)


def _error_body(status: int) -> Any:
    return {"code": _GRPC_CODE.get(status, 2), "message": simulated_message(status), "details": []}


DIALECT = Dialect(
    source=PINECONE,
    default_collection="articles",
    status_keys=("status",),
    render=render,
    unauthorized=lambda token: Response.json({"code": 16, "message": "Invalid API Key", "details": []}, 401),
    not_found=_not_found,
    error_body=_error_body,
    key_header="api-key",
)
