"""What the Weaviate sources (export, backup, restore) share: URLs, auth, error bodies and status reading.

Kept in one place because the three endpoints differ only in path and body fields, while the traps are
common (shared/reference/weaviate/NOTES.md): two error-body shapes (§4), a 401 that may not even be
JSON, Go zero dates for "not completed yet" (§5.1), and a status enum that may grow (§5.14).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.domain.model import JobSpec, Phase, Snapshot
from jobwatch.sources import _facts
from jobwatch.sources._path import path_segment
from jobwatch.sources._shape import (
    check_job_id,
    drift,
    error_text,
    is_success,
    load_object,
    opt_number,
    opt_text,
    opt_timestamp,
    progress_for,
    raise_http_error,
    req_status,
)
from jobwatch.sources.base import Fact, HttpRequest, HttpResponse

BACKUP_PHASES: Mapping[str, Phase] = {
    "STARTED": Phase.RUNNING,
    "TRANSFERRING": Phase.RUNNING,
    "TRANSFERRED": Phase.RUNNING,  # restore continues with FINALIZING (NOTES §5.12)
    "FINALIZING": Phase.RUNNING,
    "CANCELLING": Phase.RUNNING,  # two L's: still running until CANCELED (one L)
    "SUCCESS": Phase.SUCCEEDED,
    "FAILED": Phase.FAILED,
    "CANCELED": Phase.CANCELED,
}

_STAGES: Mapping[str, str] = {
    "STARTED": "started",
    "TRANSFERRING": "transferring files",
    "TRANSFERRED": "files transferred, not finished yet",
    "FINALIZING": "finalizing (can no longer be canceled)",
    "CANCELLING": "canceling",
}
"""Plain words for the in-progress statuses that read like an end (TRANSFERRED) or are unfamiliar."""


def build_request(
    spec: JobSpec,
    api_key: str | None,
    kind: str,
    suffix: tuple[str, ...] = (),
    params: dict[str, str] | None = None,
) -> HttpRequest:
    """`GET {endpoint}/v1/{kind}/{backend}/{id}[/suffix]`; backend and id are one segment each."""
    if not spec.backend:
        raise PollError(PollErrorKind.CONFIG, f"{spec.source} needs a backend (filesystem, s3, gcs, azure)")
    segments = (kind, path_segment("backend", spec.backend), path_segment("job_id", spec.job_id), *suffix)
    headers = {"Accept": "application/json"}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    return HttpRequest(
        method="GET",
        url=f"{spec.endpoint.rstrip('/')}/v1/{'/'.join(segments)}",
        headers=headers,
        params=params or None,
    )


def status_body(response: HttpResponse, expect_id: str | None) -> dict[str, Any]:
    """The decoded status object, or the PollError the response means (error bodies keep their text).

    The job is named by the top-level `id` (export, backup and restore status all carry it, `omitempty`
    so never blank in practice); a body without one is accepted, one naming another job is refused.
    """
    if not is_success(response):
        raise_http_error(response)
    body = load_object(response)
    check_job_id(body, "id", expect_id)
    if body.get("status") is None:
        text, _ = error_text(response.body)
        if text and ("error" in body or "message" in body):
            # An error body behind a 2xx (proxy or gateway): say what it said, it is still drift.
            raise drift("status", f"is missing; the body says: {text}")
    return body


def read_status(body: dict[str, Any], phases: Mapping[str, Phase]) -> tuple[str, Phase, bool]:
    """Raw status, its phase, and whether it is known: an unknown value is RUNNING, never terminal."""
    status = req_status(body, "status")
    phase = phases.get(status)
    if phase is None:
        return status, Phase.RUNNING, False
    return status, phase, True


def location(backend: str | None, path: str | None) -> str | None:
    """A readable place: URL-like paths (`s3://…`, `https://…`) stand alone, local paths get the backend."""
    if path and ("://" in path or not backend):
        return path
    if path and backend:
        return f"{backend}: {path}"
    return backend


def base_details(body: dict[str, Any]) -> dict[str, Any]:
    """Fields every Weaviate status body has: where the job writes/reads."""
    backend = opt_text(body, "backend")
    path = opt_text(body, "path")
    return {"backend": backend, "path": path, "location": location(backend, path)}


class BackupStatusSource:
    """Backup-create and restore status share statuses, URL and body; restore only drops fields.

    Progress: Weaviate reports none for backups (only `size` once finished), so it is None until
    SUCCESS (100). `size` is GiB *before* compression (NOTES §2), kept as `sizeGiB`.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    success_word: ClassVar[str]
    required_fields: ClassVar[tuple[str, ...]] = ("backend",)
    path_fields: ClassVar[tuple[str, ...]] = ("backend", "job_id")
    max_requests_per_second: ClassVar[float | None] = None
    path_suffix: ClassVar[tuple[str, ...]] = ()
    has_timestamps: ClassVar[bool] = True
    """False for restore: its status response has no timestamps (the handler drops them)."""

    def build_request(self, spec: JobSpec, api_key: str | None) -> HttpRequest:
        """Bucket/path overrides are query parameters; without them Weaviate looks in its defaults."""
        params = {key: spec.options[key] for key in ("bucket", "path") if spec.options.get(key)}
        return build_request(spec, api_key, "backups", self.path_suffix, params)

    def parse(self, response: HttpResponse, expect_id: str | None = None) -> Snapshot:
        body = status_body(response, expect_id)
        status, phase, known = read_status(body, BACKUP_PHASES)
        details = base_details(body)
        details["collections"] = []  # the status body does not list collections
        started_at = completed_at = None
        if self.has_timestamps:
            started_at = opt_timestamp(body, "startedAt")
            completed_at = opt_timestamp(body, "completedAt")
            size = opt_number(body, "size")
            if size is not None:
                details["sizeGiB"] = size
            base = opt_text(body, "incremental_base_backup_id")
            if base is not None:
                details["incrementalBaseBackupId"] = base
        else:
            # Durations of a restore can only come from when jobwatch saw each status.
            details["timestampsObserved"] = True
        return Snapshot(
            phase=phase,
            status=status,
            progress=progress_for(phase, None),
            error=opt_text(body, "error"),
            started_at=started_at,
            completed_at=completed_at,
            details=details,
            status_known=known,
        )

    def facts(self, spec: JobSpec, snapshot: Snapshot) -> list[Fact]:
        """Stage words for the confusing in-progress statuses, and the size once known."""
        facts: list[Fact] = []
        if not snapshot.phase.terminal:
            facts += _facts.fact("Stage", _STAGES.get(snapshot.status))
        size = snapshot.details.get("sizeGiB")
        if isinstance(size, int | float) and not isinstance(size, bool):
            facts.append(Fact("Size", f"{size:,.2f} GiB before compression"))
        base = snapshot.details.get("incrementalBaseBackupId")
        if isinstance(base, str) and base:
            facts.append(Fact("Incremental base", base))
        if snapshot.details.get("timestampsObserved"):
            observed = "restore status has no timestamps: durations are observed by jobwatch"
            facts.append(Fact("Timing", observed))
        return facts
