"""Self-hosted Milvus (2.4+) bulk import through REST v2.

`POST {host}/v2/vectordb/jobs/import/describe` with JSON `{"jobId": "<string>"}` (always a string: the
server binds a string field, and the JSON number in Milvus's own curl examples fails with code 1801),
`Authorization: Bearer <user:password or token>` when a key is set, and `DB-Name` from
`spec.options["dbName"]` (describe reads the database only from that header).

States: Pending -> PENDING; Importing, Uncommitted, Committing (two-phase import) and the rare None ->
RUNNING; Completed -> SUCCEEDED; Failed -> FAILED. Code 2100 ("import job does not exist", also after the
3 h retention) is NOT_FOUND: the job is gone, which says nothing about whether it failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from jobwatch.domain.model import JobSpec, Phase, Snapshot
from jobwatch.sources import _facts
from jobwatch.sources._milvus_envelope import MILVUS_CODES, unwrap, v2_facts, v2_job_snapshot
from jobwatch.sources._shape import check_job_id
from jobwatch.sources.base import Fact, HttpRequest, HttpResponse, Source

_PATH = "/v2/vectordb/jobs/import/describe"

_PHASES: Mapping[str, Phase] = {
    "Pending": Phase.PENDING,
    "Importing": Phase.RUNNING,
    "Uncommitted": Phase.RUNNING,
    "Committing": Phase.RUNNING,
    "None": Phase.RUNNING,
    "Completed": Phase.SUCCEEDED,
    "Failed": Phase.FAILED,
}


class MilvusImportSource:
    """One bulk import into a self-hosted Milvus collection."""

    name: ClassVar[str] = "milvus-import"
    title: ClassVar[str] = "Milvus import"
    required_fields: ClassVar[tuple[str, ...]] = ()
    path_fields: ClassVar[tuple[str, ...]] = ()
    """The job id goes in the JSON body, never in the URL."""
    success_word: ClassVar[str] = "import finished"
    max_requests_per_second: ClassVar[float | None] = None
    """Import handlers are not behind Milvus's request limiter."""

    def build_request(self, spec: JobSpec, api_key: str | None) -> HttpRequest:
        headers = {"Accept": "application/json"}
        if api_key is not None:
            headers["Authorization"] = f"Bearer {api_key}"
        database = spec.options.get("dbName", "").strip()
        if database:
            headers["DB-Name"] = database
        return HttpRequest(
            method="POST", url=spec.endpoint.rstrip("/") + _PATH, headers=headers, json={"jobId": spec.job_id}
        )

    def parse(self, response: HttpResponse, expect_id: str | None = None) -> Snapshot:
        """`data.jobId` names the job: the handler echoes the requested id as a string (a build that
        sends an int64 number still matches). A body without it, like the truncated #39348 sample, is
        accepted."""
        data = unwrap(response, MILVUS_CODES)
        check_job_id(data, "jobId", expect_id, "data")
        return v2_job_snapshot(data, _PHASES)

    def facts(self, spec: JobSpec, snapshot: Snapshot) -> list[Fact]:
        facts = v2_facts(snapshot)
        if not snapshot.phase.terminal and snapshot.details.get("allFilesCompleted") is True:
            # Explains the long 80-90 % tail, which otherwise reads like a hang.
            facts.append(Fact("Stage", "all files imported; sorting and building indexes"))
        # The response does not name the database, so it comes from the spec.
        facts += _facts.fact("Database", spec.options.get("dbName") or None)
        return facts


SOURCE: Source = MilvusImportSource()
