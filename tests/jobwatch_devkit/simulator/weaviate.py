"""Weaviate's export, backup-create and restore status APIs, and the backup list.

Weaviate's traps, as shared/reference records them: `completedAt` is Go's zero time while running
(never omitted), `objectsExported` is omitempty (a zero count is absent), a CANCELED export always
carries an error text, restore status has no timestamps at all, and the anonymous 401 is written by
hand without a Content-Type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from ..http11 import Response
from .jobs import Dialect, Job, simulated_message
from .script import JobState

WEAVIATE_EXPORT = "weaviate-export"
WEAVIATE_BACKUP = "weaviate-backup"
WEAVIATE_RESTORE = "weaviate-restore"

_TERMINAL = frozenset({"SUCCESS", "FAILED", "CANCELED"})
ZERO_TIME = "0001-01-01T00:00:00.000Z"
"""Go's zero time as Weaviate serializes an unset `completedAt` (it is never omitted)."""
_DEFAULT_COLLECTION = "Article"
_ANONYMOUS_401 = (
    '{"code":401,"message": "anonymous access not enabled. Please authenticate through one of the '
    'available methods: [API-keys, OIDC]" }'
)


def _time(dt: datetime) -> str:
    """go-openapi strfmt DateTime: RFC 3339 with milliseconds, always UTC `Z`."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _location(backend: str, kind: str, job_id: str) -> str:
    if backend in ("s3", "backup-s3"):
        return f"s3://jobwatch-sim/{kind}/{job_id}"
    if backend in ("gcs", "backup-gcs"):
        return f"gs://jobwatch-sim/{kind}/{job_id}"
    if backend in ("azure", "backup-azure"):
        return f"https://jobwatchsim.blob.core.windows.net/jobwatch-sim/{kind}/{job_id}"
    return f"/var/lib/weaviate/{kind}/{job_id}"


def render_export(job: Job, st: JobState, backend: str) -> dict[str, Any]:
    status = st.status or "TRANSFERRING"
    completed = job.completion(status in _TERMINAL)
    obj: dict[str, Any] = {
        "backend": backend,
        "classes": [job.collection],
        "completedAt": _time(completed) if completed else ZERO_TIME,
    }
    error = st.error
    if error is None and status == "CANCELED":
        error = "export was canceled"  # a CANCELED export always carries an error text
    if error:
        obj["error"] = error
    obj["id"] = job.job_id
    obj["path"] = _location(backend, "exports", job.job_id)
    shards = st.shards if st.shards is not None else _default_shards(job, st, status)
    if shards:
        obj["shardStatus"] = _clean_shards(shards)
    obj["startedAt"] = _time(job.started)
    obj["status"] = status
    if completed is not None:
        took = int((completed - job.started).total_seconds() * 1000)
        if took:
            obj["tookInMs"] = took
    return obj


def render_backup(job: Job, st: JobState, backend: str) -> dict[str, Any]:
    status = st.status or "STARTED"
    completed = job.completion(status in _TERMINAL)
    obj: dict[str, Any] = {
        "backend": backend,
        "completedAt": _time(completed) if completed else ZERO_TIME,
    }
    if st.error:
        obj["error"] = st.error
    obj["id"] = job.job_id
    obj["path"] = _location(backend, "backups", job.job_id)
    size = st.size if st.size is not None else (1.7342 if status == "SUCCESS" else None)
    if size:
        obj["size"] = size
    obj["startedAt"] = _time(job.started)
    obj["status"] = status
    return obj


def render_restore(job: Job, st: JobState, backend: str) -> dict[str, Any]:
    status = st.status or "STARTED"
    obj: dict[str, Any] = {"backend": backend}
    error = st.error
    if error is None and status == "CANCELED":
        error = "restore canceled by user"
    if error:
        obj["error"] = error
    obj["id"] = job.job_id
    obj["path"] = _location(backend, "backups", job.job_id)
    obj["status"] = status
    return obj


def backup_list(jobs: Iterable[Job], backend: str) -> list[dict[str, Any]]:
    """`GET /v1/backups/{backend}`: one summary per backup, in the order given."""
    items = []
    for job in jobs:
        full = render_backup(job, job.visible_state(), backend)
        item: dict[str, Any] = {"classes": [job.collection], "completedAt": full["completedAt"]}
        item["id"] = job.job_id
        if "size" in full:
            item["size"] = full["size"]
        item["startedAt"] = full["startedAt"]
        item["status"] = full["status"]
        items.append(item)
    return items


def _default_shards(job: Job, st: JobState, status: str) -> dict[str, dict[str, dict[str, Any]]] | None:
    """One shard per export, as node reports show it: none yet for STARTED, none for CANCELED."""
    if status in ("STARTED", "CANCELED"):
        return None
    shard_status = status if status in ("SUCCESS", "FAILED") else "TRANSFERRING"
    shard: dict[str, Any] = {}
    if status == "FAILED" and st.error:
        shard["error"] = st.error
    if st.objects:
        shard["objectsExported"] = st.objects
    shard["status"] = shard_status
    return {job.collection: {job.shard_name: shard}}


def _clean_shards(shards: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """`objectsExported` is omitempty in Weaviate: a zero count is left out, never sent as 0."""
    out: dict[str, Any] = {}
    for cls_name, per_shard in shards.items():
        out[cls_name] = {
            name: {k: v for k, v in progress.items() if not (k == "objectsExported" and not v)}
            for name, progress in per_shard.items()
        }
    return out


def _unauthorized(token: str | None) -> Response:
    if token is None:  # written by hand in Weaviate's anonymous middleware: no Content-Type
        return Response.text(401, _ANONYMOUS_401, content_type=None)
    return Response.json({"code": 401, "message": "unauthorized: invalid api key"}, 401)


def _export_not_found(job_id: str) -> Response:
    return Response.json({"error": [{"message": "export not found"}]}, 404)


def _backup_not_found(job_id: str) -> Response:
    message = f'coordinator cannot get status: metadata not found: "{job_id}": backup not found'
    return Response.json({"error": [{"message": message}]}, 404)


def _restore_not_found(job_id: str) -> Response:
    message = f'coordinator cannot get restore status: metadata not found: "{job_id}": backup not found'
    return Response.json({"error": [{"message": message}]}, 404)


def _error_body(status: int) -> Any:
    return {"error": [{"message": simulated_message(status)}]}


def method_not_allowed(method: str, allowed: str) -> Response:
    message = f"method {method} is not allowed, but [{allowed}] are"
    return Response.json({"code": 405, "message": message}, 405, headers=(("Allow", allowed),))


def unknown_path(path: str) -> Response:
    """go-openapi's answer for a path it has no route for."""
    return Response.json({"code": 404, "message": f"path {path} was not found"}, 404)


def _dialect(
    source: str,
    render: Callable[[Job, JobState, str], dict[str, Any]],
    not_found: Callable[[str], Response],
) -> Dialect:
    return Dialect(
        source=source,
        default_collection=_DEFAULT_COLLECTION,
        status_keys=("status",),
        render=render,
        unauthorized=_unauthorized,
        not_found=not_found,
        error_body=_error_body,
        scope="backend",
    )


EXPORT = _dialect(WEAVIATE_EXPORT, render_export, _export_not_found)
BACKUP = _dialect(WEAVIATE_BACKUP, render_backup, _backup_not_found)
RESTORE = _dialect(WEAVIATE_RESTORE, render_restore, _restore_not_found)
