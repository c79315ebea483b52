"""Zilliz Cloud import through the v2 control plane.

`POST {endpoint}/v2/vectordb/jobs/import/getProgress` with JSON `{"clusterId", "jobId"}` and
`Authorization: Bearer <api key>`. The endpoint is the control plane, documented as
`https://api.cloud.zilliz.com` (China: `https://api.cloud.zilliz.com.cn`); an empty spec endpoint uses the
former. States: Pending -> PENDING, Importing or InProgress (the list API's spelling) -> RUNNING,
Completed -> SUCCEEDED, Failed -> FAILED (with `reason`); `progress` is already 0..100.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.domain.model import JobSpec, Phase, Snapshot
from jobwatch.sources._milvus_envelope import ZILLIZ_CODES, unwrap, v2_facts, v2_job_snapshot
from jobwatch.sources._shape import check_job_id
from jobwatch.sources.base import Fact, HttpRequest, HttpResponse, Source

DEFAULT_ENDPOINT = "https://api.cloud.zilliz.com"
_PATH = "/v2/vectordb/jobs/import/getProgress"

_PHASES: Mapping[str, Phase] = {
    "Pending": Phase.PENDING,
    "Importing": Phase.RUNNING,
    "InProgress": Phase.RUNNING,
    "Completed": Phase.SUCCEEDED,
    "Failed": Phase.FAILED,
}


class ZillizImportV2Source:
    """One bulk import into a Zilliz Cloud cluster, polled through the v2 control plane."""

    name: ClassVar[str] = "zilliz-import-v2"
    title: ClassVar[str] = "Zilliz Cloud import"
    required_fields: ClassVar[tuple[str, ...]] = ("cluster_id",)
    path_fields: ClassVar[tuple[str, ...]] = ()
    """The job id goes in the JSON body, never in the URL."""
    success_word: ClassVar[str] = "import finished"
    max_requests_per_second: ClassVar[float | None] = 20.0
    """Documented: 20 requests per second per user per control-plane endpoint."""

    def build_request(self, spec: JobSpec, api_key: str | None) -> HttpRequest:
        if not spec.cluster_id:
            raise PollError(PollErrorKind.CONFIG, f"{self.name} needs a cluster_id")
        headers = {"Accept": "application/json"}
        if api_key is not None:
            headers["Authorization"] = f"Bearer {api_key}"
        endpoint = spec.endpoint.strip().rstrip("/") or DEFAULT_ENDPOINT
        return HttpRequest(
            method="POST",
            url=endpoint + _PATH,
            headers=headers,
            json={"clusterId": spec.cluster_id, "jobId": spec.job_id},
        )

    def parse(self, response: HttpResponse, expect_id: str | None = None) -> Snapshot:
        """`data.jobId` names the job (the documented getProgress body always carries it); a body
        without one is accepted."""
        data = unwrap(response, ZILLIZ_CODES)
        check_job_id(data, "jobId", expect_id, "data")
        return v2_job_snapshot(data, _PHASES)

    def facts(self, spec: JobSpec, snapshot: Snapshot) -> list[Fact]:
        # No `location` detail: the body does not name the cluster, the renderer shows spec.cluster_id.
        return v2_facts(snapshot)


SOURCE: Source = ZillizImportV2Source()
