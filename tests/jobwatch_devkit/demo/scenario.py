"""The demo's scenario: every job, what its upstream does cycle after cycle, and what must come of it.

Every source walks a full life: Weaviate export, backup and restore; Zilliz Cloud imports through the
v1 controller and the v2 control plane; self-hosted Milvus imports; Pinecone imports. Upstream status
changes that are not transitions (TRANSFERRED, FINALIZING, Importing 40 -> 80...) are stored, but
nobody is notified. To add a job, append a `DemoJob` to `JOBS` with the events it must produce.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobwatch_devkit.simulator import Step, fault_api_error, fault_http, hold, state

TEAM = "search"
"""The `team` label of every registered job: the team channel's route matches it."""
WATCH_TEAM = "catalog"
"""The label the watch gives the jobs it discovers: not the team's, so not in its channel."""
CYCLES = 12


@dataclass(frozen=True)
class DemoJob:
    source: str
    job_id: str
    steps: list[Step]
    expected: list[str]
    """Events the demo must see for this job, in order."""
    backend: str | None = None
    cluster_id: str | None = None
    collection: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    api_key: str | None = None
    secret: str | None = None
    must_show: tuple[str, ...] = ()
    """Texts every rendering of the job's last transition must contain (Slack thread reply, Slack
    webhook message, e-mail text)."""
    release_at: int | None = None
    """Cycle at which the demo releases the job's `hold()` step (`UpstreamSimulator.advance`)."""
    stalled_by: int | None = None
    """Parked since its first poll: the demo makes sure STALL_AFTER_S have passed before this cycle."""
    appears_at: int | None = None
    """Not registered: the job appears upstream at this cycle and a watch must discover it
    (0: it already existed, finished, before the watch was created: recorded, never notified)."""

    @property
    def name(self) -> str:
        return f"{self.source} {self.job_id}"

    @property
    def team(self) -> str:
        return WATCH_TEAM if self.appears_at is not None else TEAM


ARTICLE_SHARDS_RUNNING = {
    "Article": {
        "Xk3pQ9aLmN2b": {"status": "TRANSFERRING", "objectsExported": 120000},
        "h7TzR1vBcW4e": {"status": "SUCCESS", "objectsExported": 250000},
    },
}
ARTICLE_SHARDS_DONE = {
    "Article": {
        "Xk3pQ9aLmN2b": {"status": "SUCCESS", "objectsExported": 498213},
        "h7TzR1vBcW4e": {"status": "SUCCESS", "objectsExported": 501877},
    },
}
ARTICLE_SHARDS_FAILED = {
    "Article": {
        "Xk3pQ9aLmN2b": {
            "status": "FAILED",
            "objectsExported": 40000,
            "error": "upload parquet: context deadline exceeded",
        },
        "h7TzR1vBcW4e": {"status": "SUCCESS", "objectsExported": 501877},
    },
}

MILVUS_FILES = ("events/2026-11/part-1.parquet", "events/2026-11/part-2.parquet")
MILVUS_FILE_BYTES = 812_447_391
MILVUS_ROWS = 2_400_000


def milvus_files(*states: tuple[str, int], reason: str | None = None) -> dict[str, Any]:
    """`details` (one per file of MILVUS_FILES, each `(state, progress)`) and their summed `fileSize`,
    in the shape of shared/reference milvus-v2/describe.importing-80.partial.json. A file's rows follow
    its progress; a Failed file carries `reason`."""
    per_file = MILVUS_ROWS // len(MILVUS_FILES)
    details: list[dict[str, Any]] = []
    for name, (file_state, progress) in zip(MILVUS_FILES, states, strict=True):
        detail: dict[str, Any] = {
            "completeTime": "2026-11-20T09:41:07Z" if file_state == "Completed" else "",
            "fileName": f"[{name}]",
            "fileSize": MILVUS_FILE_BYTES,
            "importedRows": per_file * progress // 100,
            "progress": progress,
            "state": file_state,
            "totalRows": per_file,
        }
        if file_state == "Failed" and reason:
            detail["reason"] = reason
        details.append(detail)
    return {"details": details, "fileSize": MILVUS_FILE_BYTES * len(details)}


MILVUS_TIMEOUT = "import timeout: job ran longer than 300s"

JOBS = [
    DemoJob(
        "weaviate-export",
        "nightly-export",
        backend="s3",
        collection="Article",
        api_key="weaviate-demo-key",
        secret="jobwatch/weaviate-demo",
        steps=[
            state("STARTED"),
            state("TRANSFERRING", shards=ARTICLE_SHARDS_RUNNING),
            hold(),
            state("SUCCESS", shards=ARTICLE_SHARDS_DONE),
        ],
        expected=["STARTED", "SUCCEEDED"],
        must_show=("Objects exported", "1,000,090", "2/2 done"),
        release_at=4,  # the export is held at TRANSFERRING until cycle 4, then finishes
    ),
    DemoJob(
        "weaviate-export",
        "export-shard-failure",
        backend="s3",
        collection="Article",
        steps=[
            state("TRANSFERRING", shards=ARTICLE_SHARDS_RUNNING),
            state(
                "FAILED",
                shards=ARTICLE_SHARDS_FAILED,
                error="node weaviate-1 failed: upload parquet: context deadline exceeded <!channel>",
            ),
        ],
        expected=["STARTED", "FAILED"],
    ),
    DemoJob(
        "weaviate-export",
        "export-canceled",
        backend="gcs",
        collection="Product",
        steps=[
            state("TRANSFERRING", objects=20_000),
            state("TRANSFERRING", objects=60_000),  # moving: only the parked import below may stall
            state("CANCELED", objects=60_000, error="export was canceled"),
        ],
        expected=["STARTED", "CANCELED"],
    ),
    DemoJob(
        "zilliz-import-v1",
        "job-01j9medium",
        cluster_id="in01-7f3c2d",
        collection="medium_articles",
        steps=[
            state(ready=0.0),
            state(ready=0.4),
            fault_api_error(80010, "System is busy, please try again later"),
            state(ready=1.0),
        ],
        expected=["STARTED", "SUCCEEDED"],
    ),
    DemoJob(
        "zilliz-import-v1",
        "job-01j9broken",
        cluster_id="in01-7f3c2d",
        collection="medium_articles",
        steps=[
            state(ready=0.0),
            state(ready=0.2),
            state(ready=0.2, error="file 2.parquet: field 'vector' has dim 768, expected 1536"),
        ],
        expected=["STARTED", "FAILED"],
    ),
    DemoJob(
        "weaviate-backup",
        "nightly-2026-11-20",
        backend="s3",
        collection="Article",
        steps=[state("STARTED"), state("TRANSFERRING"), state("SUCCESS", size=48.62)],
        expected=["STARTED", "SUCCEEDED"],
        must_show=("48.62 GiB before compression",),
    ),
    DemoJob(
        "weaviate-restore",
        "nightly-2026-11-19",
        backend="s3",
        collection="Article",
        steps=[
            state("STARTED"),
            state("TRANSFERRING"),
            state("TRANSFERRED"),  # files staged: not the end, restore goes on
            state("FINALIZING"),  # schema applied, can no longer be canceled
            state("SUCCESS"),
        ],
        expected=["STARTED", "SUCCEEDED"],
        # Restore status has no timestamps: any duration is what jobwatch observed, and says so.
        must_show=("observed",),
    ),
    DemoJob(
        "zilliz-import-v2",
        "job-02v2articles",
        cluster_id="in03-9a1b7e",
        collection="medium_articles",
        steps=[
            state("Pending", total_rows=100_000),
            # importedRows: what Zilliz Cloud's describe alias answers (Milvus body); getProgress may omit it.
            state("Importing", progress=45, total_rows=100_000, extra={"importedRows": 45_000}),
            state("Completed", total_rows=100_000, extra={"importedRows": 100_000}),
        ],
        expected=["QUEUED", "STARTED", "SUCCEEDED"],
        must_show=("100,000 of 100,000",),
    ),
    DemoJob(
        "milvus-import",
        "458021734452345601",
        collection="events",
        options=(("dbName", "analytics"),),
        steps=[
            state("Pending", total_rows=MILVUS_ROWS),  # no details before pre-import finishes
            state(
                "Importing",
                progress=40,
                rows=MILVUS_ROWS * 40 // 100,
                total_rows=MILVUS_ROWS,
                extra=milvus_files(("InProgress", 40), ("InProgress", 40)),
            ),
            # Every file Completed, the job still Importing at 80 %: sorting and building indexes.
            state(
                "Importing",
                progress=80,
                rows=MILVUS_ROWS,
                total_rows=MILVUS_ROWS,
                extra=milvus_files(("Completed", 100), ("Completed", 100)),
            ),
            state(
                "Completed",
                rows=MILVUS_ROWS,
                total_rows=MILVUS_ROWS,
                extra=milvus_files(("Completed", 100), ("Completed", 100)),
            ),
        ],
        expected=["QUEUED", "STARTED", "SUCCEEDED"],
        must_show=("2,400,000 of 2,400,000", "2/2 done", "analytics"),
    ),
    DemoJob(
        "milvus-import",
        "458021734452345602",
        collection="events",
        options=(("dbName", "analytics"),),
        steps=[
            state(
                "Importing",
                progress=45,
                rows=MILVUS_ROWS * 45 // 100,
                total_rows=MILVUS_ROWS,
                extra=milvus_files(("InProgress", 60), ("InProgress", 30)),
            ),
            state(
                "Importing",
                progress=55,
                rows=MILVUS_ROWS * 55 // 100,
                total_rows=MILVUS_ROWS,
                extra=milvus_files(("Completed", 100), ("InProgress", 10)),
            ),
            # Milvus resets progress and rows to 0 when a job fails; `reason` says why.
            state(
                "Failed",
                progress=0,
                rows=0,
                total_rows=0,
                error=MILVUS_TIMEOUT,
                extra=milvus_files(("Completed", 100), ("Failed", 10), reason=MILVUS_TIMEOUT),
            ),
        ],
        expected=["STARTED", "FAILED"],
        must_show=(MILVUS_TIMEOUT, "1/2 done · 1 failed", "part-2.parquet"),
    ),
    DemoJob(
        "pinecone-import",
        "101",
        collection="articles",
        api_key="pinecone-demo-key",
        secret="jobwatch/pinecone-demo",
        options=(("apiVersion", "2025-10"),),
        steps=[
            state("Pending"),
            state("InProgress", progress=35.5, rows=355_000),
            state("Completed", progress=100, rows=1_000_000),
        ],
        expected=["QUEUED", "STARTED", "SUCCEEDED"],
        must_show=("1,000,000",),
    ),
    DemoJob(
        "pinecone-import",
        "102",
        collection="articles",
        steps=[
            state("InProgress", progress=12, rows=120_000),
            state("InProgress", progress=20, rows=200_000),
            state("Cancelled", progress=20, rows=200_000),
        ],
        expected=["STARTED", "CANCELED"],
    ),
    # Issue 3: a job parked at 80 % "Importing" while every file says Completed (Milvus's real trap)
    # is reported STALLED once, then finishes; an endpoint that fails three polls in a row is
    # reported UNREACHABLE once and RECOVERED once when it answers again.
    DemoJob(
        "milvus-import",
        "454000000000000001",
        collection="clue_data",
        options=(("dbName", "analytics"),),
        steps=[
            state("Importing", progress=80, rows=520_161, total_rows=520_161, files=["5.parquet"]),
            hold(),
            state("Completed", progress=100, rows=520_161, total_rows=520_161, files=["5.parquet"]),
        ],
        expected=["STARTED", "STALLED", "SUCCEEDED"],
        stalled_by=9,
        release_at=11,
    ),
    DemoJob(
        "weaviate-export",
        "export-flaky-endpoint",
        backend="s3",
        collection="Article",
        steps=[
            state("TRANSFERRING", objects=1_000),
            fault_http(503),
            fault_http(503),
            fault_http(502),
            state("TRANSFERRING", objects=5_000),
            state("SUCCESS", objects=9_000),
        ],
        expected=["STARTED", "UNREACHABLE", "RECOVERED", "SUCCEEDED"],
    ),
    # A running import Milvus stops knowing (a restarted standalone, a garbage-collected job): code
    # 2100 "import job does not exist" three polls in a row is LOST, jobwatch's own verdict.
    DemoJob(
        "milvus-import",
        "458021734452345603",
        collection="events",
        options=(("dbName", "analytics"),),
        steps=[
            state(
                "Importing",
                progress=30,
                rows=MILVUS_ROWS * 30 // 100,
                total_rows=MILVUS_ROWS,
                extra=milvus_files(("InProgress", 30), ("InProgress", 30)),
            ),
            fault_api_error(2100, "import job does not exist"),  # the last step repeats
        ],
        expected=["STARTED", "LOST"],
    ),
]

WATCHED_CLUSTER = "in01-watched"
JOBS += [
    DemoJob(
        "zilliz-import-v1",
        "job-finished-before-the-watch",
        cluster_id=WATCHED_CLUSTER,
        collection="products",
        steps=[state(ready=1.0)],
        expected=[],
        appears_at=0,
    ),
    DemoJob(
        "zilliz-import-v1",
        "job-found-by-the-watch",
        cluster_id=WATCHED_CLUSTER,
        collection="products",
        steps=[state(ready=0.3), state(ready=1.0)],
        expected=["STARTED", "SUCCEEDED"],
        appears_at=3,
    ),
]

STALL_AFTER_S = 8.0
"""Longer than any gap between two polls of a job that is not parked (a cycle and a pause: 1-4 s here),
shorter than the parked import's wait (`stalled_by`), which the demo measures rather than assumes."""
DEMO_SETTINGS = {
    "JOBWATCH_STALL_AFTER_S": f"{STALL_AFTER_S:g}",
    "JOBWATCH_UNREACHABLE_AFTER": "3",
    "JOBWATCH_ADAPTIVE_POLLING": "false",
}
"""The demo compresses time: a stall threshold of seconds instead of 30 minutes, and every job polled
every cycle (adaptive polling would space a stalled or unreachable job out by minutes)."""
CYCLE_PAUSE_S = 0.5
"""A breath between cycles, as between scheduled runs."""


def job_index(source: str, job_id: str) -> int:
    """Position in JOBS: output follows the list, whatever order SNS/SQS or DynamoDB return things in."""
    names = [(job.source, job.job_id) for job in JOBS]
    return names.index((source, job_id)) if (source, job_id) in names else len(names)


def job_of(source: str, job_id: str) -> DemoJob | None:
    return next((job for job in JOBS if (job.source, job.job_id) == (source, job_id)), None)
