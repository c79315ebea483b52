"""Pinecone bulk import (serverless indexes): `GET https://{index_host}/bulk/imports/{id}`.

The spec endpoint is the index host (`https://…svc….pinecone.io`; a bare host gets `https://`, which is
how Pinecone's describe-index returns it). Headers: `Api-Key` and `X-Pinecone-Api-Version`
(`spec.options["apiVersion"]`, default 2025-10, the version the stored spec describes). Unlike the
Milvus family, errors use real HTTP status codes with an `rpcStatus {code, message}` body.
Status: Pending -> PENDING, InProgress -> RUNNING, Completed -> SUCCEEDED, Failed -> FAILED,
Cancelled (two L's) -> CANCELED. `percentComplete` is 0..100 per the spec; outside that is drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from jobwatch.domain.model import JobSpec, Phase, Snapshot
from jobwatch.sources import _facts
from jobwatch.sources._path import path_segment
from jobwatch.sources._shape import (
    check_job_id,
    drift,
    is_success,
    load_object,
    opt_int,
    opt_number,
    opt_object,
    opt_text,
    opt_timestamp,
    progress_for,
    raise_http_error,
    req_status,
)
from jobwatch.sources.base import Fact, HttpRequest, HttpResponse, Source

DEFAULT_API_VERSION = "2025-10"

_PHASES: Mapping[str, Phase] = {
    "Pending": Phase.PENDING,
    "InProgress": Phase.RUNNING,
    "Completed": Phase.SUCCEEDED,
    "Failed": Phase.FAILED,
    "Cancelled": Phase.CANCELED,
}


class PineconeImportSource:
    """One bulk import from object storage into a Pinecone index."""

    name: ClassVar[str] = "pinecone-import"
    title: ClassVar[str] = "Pinecone import"
    required_fields: ClassVar[tuple[str, ...]] = ()
    path_fields: ClassVar[tuple[str, ...]] = ("job_id",)
    success_word: ClassVar[str] = "import finished"
    max_requests_per_second: ClassVar[float | None] = None

    def build_request(self, spec: JobSpec, api_key: str | None) -> HttpRequest:
        host = spec.endpoint.strip().rstrip("/")
        if "://" not in host:
            host = f"https://{host}"
        headers = {
            "Accept": "application/json",
            "X-Pinecone-Api-Version": spec.options.get("apiVersion") or DEFAULT_API_VERSION,
        }
        if api_key is not None:
            headers["Api-Key"] = api_key
        return HttpRequest(
            method="GET", url=f"{host}/bulk/imports/{path_segment('job_id', spec.job_id)}", headers=headers
        )

    def parse(self, response: HttpResponse, expect_id: str | None = None) -> Snapshot:
        """The import is named by the top-level `id` (in every example; the spec does not mark it
        required, so a body without one is accepted)."""
        if not is_success(response):
            raise_http_error(response)
        body = load_object(response)
        check_job_id(body, "id", expect_id)
        status = req_status(body, "status")
        phase = _PHASES.get(status)
        percent = opt_number(body, "percentComplete")
        if percent is not None and not 0.0 <= percent <= 100.0:
            raise drift("percentComplete", f"is {percent}, expected 0..100")
        uri = opt_text(body, "uri")
        details: dict[str, Any] = {
            "location": uri,
            "uri": uri,
            "collections": [],  # imports target namespaces named by the files, not listed here
            "recordsImported": opt_int(body, "recordsImported"),
        }
        validation = opt_object(body, "validationResult")
        if validation is not None:  # newer API versions only
            details["importSuccesses"] = opt_int(validation, "importSuccesses", "validationResult")
            details["importErrors"] = opt_int(validation, "importErrors", "validationResult")
        return Snapshot(
            phase=phase or Phase.RUNNING,
            status=status,
            progress=progress_for(phase or Phase.RUNNING, percent),
            error=opt_text(body, "error"),
            started_at=opt_timestamp(body, "createdAt"),
            completed_at=opt_timestamp(body, "finishedAt"),
            details=details,
            status_known=phase is not None,
        )

    def facts(self, spec: JobSpec, snapshot: Snapshot) -> list[Fact]:
        details = snapshot.details
        facts = _facts.fact("Records imported", _facts.count(details.get("recordsImported")))
        if _facts.as_int(details.get("importErrors")):
            facts += _facts.fact("Rejected records", _facts.count(details.get("importErrors")))
        return facts


SOURCE: Source = PineconeImportSource()
