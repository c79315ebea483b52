"""Zilliz Cloud import through the v1 controller (deprecated, still served).

`GET {controller}/v1/vector/collections/import/get?jobId=…&clusterId=…` with `Authorization: Bearer
<api key or user:password>`; the controller is `https://controller.api.{region}.zillizcloud.com`.
Self-hosted Milvus has no such route (use `milvus-import`).

v1 has no state field, so the phase is derived as Zilliz's own Java sample does, failure first: a
non-null `errorMessage` is FAILED, `readyPercentage >= 1` SUCCEEDED, anything else RUNNING. `status`
carries the v1 list API's words (ImportFailed / ImportCompleted / ImportRunning) so messages use Zilliz's
vocabulary. `readyPercentage` is a FRACTION 0..1 (progress = x100); a value outside 0..1 is schema drift,
never rescaled by guesswork. Doc-generator "Unknown type" placeholders read as null.
"""

from __future__ import annotations

from typing import Any, ClassVar

from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.domain.model import JobSpec, Phase, Snapshot
from jobwatch.sources import _facts
from jobwatch.sources._milvus_envelope import ZILLIZ_CODES, unwrap
from jobwatch.sources._shape import (
    as_object,
    capped,
    check_job_id,
    drift,
    opt_int,
    opt_list,
    opt_number,
    opt_text,
    opt_timestamp,
    progress_for,
)
from jobwatch.sources.base import Fact, HttpRequest, HttpResponse, Source

_PATH = "/v1/vector/collections/import/get"


def _fraction(obj: dict[str, Any], key: str, where: str) -> float | None:
    """`readyPercentage`: 0..1 where 1 means done. 0.5 is 50 %, so 50 can only be drift."""
    value = opt_number(obj, key, where)
    if value is not None and not 0.0 <= value <= 1.0:
        raise drift(f"{where}.{key}", f"is {value}, expected a fraction between 0 and 1")
    return value


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else round(fraction * 100.0, 2)


def _file(entry: dict[str, Any], where: str) -> dict[str, Any]:
    ready = _fraction(entry, "readyPercentage", where)
    return {
        "fileName": opt_text(entry, "fileName", where),
        "fileSize": opt_int(entry, "fileSize", where),
        "progress": _percent(ready),
        "completeTime": opt_timestamp(entry, "completeTime", where),
        "error": opt_text(entry, "errorMessage", where),
        "_done": ready is not None and ready >= 1.0,
    }


class ZillizImportV1Source:
    """One bulk import into a Zilliz Cloud collection, polled through the v1 controller."""

    name: ClassVar[str] = "zilliz-import-v1"
    title: ClassVar[str] = "Zilliz Cloud import"
    required_fields: ClassVar[tuple[str, ...]] = ("cluster_id",)
    path_fields: ClassVar[tuple[str, ...]] = ()
    """Job and cluster ids are query parameters, never path segments."""
    success_word: ClassVar[str] = "import finished"
    max_requests_per_second: ClassVar[float | None] = 20.0
    """Zilliz's control-plane limit (20 req/s per user per endpoint); v1 documents none of its own."""

    def build_request(self, spec: JobSpec, api_key: str | None) -> HttpRequest:
        if not spec.cluster_id:
            raise PollError(PollErrorKind.CONFIG, f"{self.name} needs a cluster_id")
        headers = {"Accept": "application/json"}
        if api_key is not None:
            headers["Authorization"] = f"Bearer {api_key}"
        return HttpRequest(
            method="GET",
            url=spec.endpoint.rstrip("/") + _PATH,
            headers=headers,
            params={"jobId": spec.job_id, "clusterId": spec.cluster_id},
        )

    def parse(self, response: HttpResponse, expect_id: str | None = None) -> Snapshot:
        """`data.jobId` names the job (every documented progress body carries it); a body without one
        is accepted."""
        data = unwrap(response, ZILLIZ_CODES)
        check_job_id(data, "jobId", expect_id, "data")
        error = opt_text(data, "errorMessage", "data")
        ready = _fraction(data, "readyPercentage", "data")
        if error is not None:
            phase, status = Phase.FAILED, "ImportFailed"
        elif ready is None:
            # Without an error the fraction is the only statement about the job.
            raise drift("data.readyPercentage", "is missing")
        elif ready >= 1.0:
            phase, status = Phase.SUCCEEDED, "ImportCompleted"
        else:
            phase, status = Phase.RUNNING, "ImportRunning"
        files = [
            _file(as_object(raw, f"data.details[{index}]"), f"data.details[{index}]")
            for index, raw in enumerate(opt_list(data, "details", "data"))
        ]
        done = sum(1 for item in files if item.pop("_done") and item["error"] is None)
        collection = opt_text(data, "collectionName", "data")
        kept, left_out = capped(files, first=lambda item: item["error"] is not None)
        details: dict[str, Any] = {
            "collectionName": collection,
            "collections": [collection] if collection else [],
            "fileName": opt_text(data, "fileName", "data"),
            "fileSize": opt_int(data, "fileSize", "data"),
            "files": kept,
            "filesTotal": len(files),
            "filesDone": done,
            "filesFailed": sum(1 for item in files if item["error"] is not None),
        }
        if left_out:
            details["filesTruncated"] = left_out
        return Snapshot(
            phase=phase,
            status=status,
            progress=progress_for(phase, _percent(ready)),
            error=error,
            started_at=None,  # v1 reports no start time
            completed_at=opt_timestamp(data, "completeTime", "data"),
            details=details,
        )

    def facts(self, spec: JobSpec, snapshot: Snapshot) -> list[Fact]:
        # No `location` detail: the body does not name the cluster, the renderer shows spec.cluster_id.
        return _facts.file_facts(snapshot.details, lambda item: item.get("error") is not None)


SOURCE: Source = ZillizImportV1Source()
