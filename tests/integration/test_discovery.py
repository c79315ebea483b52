"""Auto-discovery end to end: watches created through the API, listings served by the simulator.

A discovery run is started explicitly (`jobwatch discover`, the same code the poller runs at the start
of a cycle), then the real poll cycle runs: new jobs are tracked and notified without registration,
jobs that had ended before the watch are recorded and never notified.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from jobwatch_tools.api_server import build_event
from jobwatch_tools.cli import main
from jobwatch_tools.local import api_handler, discover_once, operations

from jobwatch.adapters.dynamodb.jobs import DynamoJobStore
from jobwatch.api.routes import ROUTES
from jobwatch.domain.model import Phase
from jobwatch_devkit.harness import LocalDeployment
from jobwatch_devkit.simulator import UpstreamSimulator, fault_http, state

pytestmark = pytest.mark.integration

ZILLIZ_V1 = "zilliz-import-v1"
CLUSTER = "in01-watch001"


def _post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
    event = build_event(
        "POST", path, [("Content-Type", "application/json")], json.dumps(body).encode(), ROUTES
    )
    result = api_handler(event, None)
    return result["statusCode"], json.loads(result["body"])


def _discover(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["discover", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert isinstance(report, dict)
    return report


def _by_job(store: DynamoJobStore) -> dict[str, Any]:
    return {job.spec.job_id: job for job in store.all_jobs()}


Counts = Callable[[dict[str, Any]], dict[str, int]]


def _counts(report: dict[str, Any]) -> dict[str, int]:
    return {k: report[k] for k in ("watches", "listed", "tracked", "recorded_ended", "known")}


def test_a_watched_zilliz_cluster_is_tracked_and_notified_without_registration(
    deployment: LocalDeployment,
    sim: UpstreamSimulator,
    sim_url: str,
    store: DynamoJobStore,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim.add_job(ZILLIZ_V1, "job-old", [state(ready=1.0)], cluster_id=CLUSTER)
    sim.add_job(ZILLIZ_V1, "job-failed-old", [state(error="bad parquet schema")], cluster_id=CLUSTER)
    sim.add_job(ZILLIZ_V1, "job-new", [state(ready=0.3), state(ready=1.0)], cluster_id=CLUSTER)
    status, watch = _post(
        "/watches",
        {"kind": "zilliz-cloud-v1", "endpoint": sim_url, "clusterId": CLUSTER, "labels": {"team": "search"}},
    )
    assert status == 201

    report = _discover(capsys)
    assert _counts(report) == {"watches": 1, "listed": 3, "tracked": 1, "recorded_ended": 2, "known": 0}
    assert report["errors"] == []
    jobs = _by_job(store)
    assert set(jobs) == {"job-old", "job-failed-old", "job-new"}
    new = jobs["job-new"]
    assert (new.spec.source, new.spec.cluster_id, new.spec.labels) == (ZILLIZ_V1, CLUSTER, {"team": "search"})
    assert new.snapshot is None  # the poller's first observation will be its transition
    old = jobs["job-old"]
    assert old.snapshot is not None and old.snapshot.phase is Phase.SUCCEEDED and old.terminal
    assert jobs["job-failed-old"].snapshot is not None
    assert jobs["job-failed-old"].snapshot.phase is Phase.FAILED

    first = deployment.poll()
    assert (first.jobs, first.transitions) == (1, 1)  # ended jobs are not even polled
    second = deployment.poll()
    assert second.transitions == 1
    published = deployment.published()
    assert [(t.job_id, t.event) for t in published] == [("job-new", "STARTED"), ("job-new", "SUCCEEDED")]
    assert all(t.job.labels == {"team": "search"} for t in published)
    assert sim.request_count("job-old") == 0 and sim.request_count("job-failed-old") == 0

    # The watch is primed now: a job that starts *and* finishes between two cycles is news.
    listed = store.get_job(new.key)
    assert listed is not None
    sim.add_job(ZILLIZ_V1, "job-quick", [state(ready=1.0)], cluster_id=CLUSTER)
    report = _discover(capsys)
    assert _counts(report) == {"watches": 1, "listed": 4, "tracked": 1, "recorded_ended": 0, "known": 3}
    deployment.poll()
    assert [(t.job_id, t.event) for t in deployment.published()][-1] == ("job-quick", "SUCCEEDED")

    # Untracking a discovered job is final: the watch does not bring it back.
    quick = _by_job(store)["job-quick"]
    assert main(["untrack", quick.key]) == 0
    report = _discover(capsys)
    assert (report["tracked"], report["known"]) == (0, 4)
    assert "job-quick" not in _by_job(store)

    capsys.readouterr()
    assert main(["watches", "--json"]) == 0
    (listed_watch,) = json.loads(capsys.readouterr().out)
    assert listed_watch["id"] == watch["id"] and listed_watch["primedAt"] is not None


def test_weaviate_backups_use_completed_at_and_v2_milvus_watches_list_too(
    deployment: LocalDeployment,
    sim: UpstreamSimulator,
    sim_url: str,
    store: DynamoJobStore,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim.add_job("weaviate-backup", "nightly-1", [state("SUCCESS")], backend="s3")
    # The simulator stamps completedAt when it first shows a finished state: show it before the watch.
    httpx.get(f"{sim_url}/v1/backups/s3", timeout=5).raise_for_status()
    sim.add_job("weaviate-backup", "nightly-2", [state("TRANSFERRING"), state("SUCCESS")], backend="s3")
    sim.add_job("zilliz-import-v2", "job-v2", [state("Importing", progress=40)], cluster_id=CLUSTER)
    sim.add_job("milvus-import", "453468002260053160", [state("Pending")])
    sim.add_job("milvus-import", "453468002260053161", [state("Completed")])
    for body in (
        {"kind": "weaviate-backups", "endpoint": sim_url, "backend": "s3"},
        {"kind": "zilliz-cloud-v2", "endpoint": sim_url, "clusterId": CLUSTER},
        {"kind": "milvus", "endpoint": sim_url, "dbName": "default"},
    ):
        assert _post("/watches", body)[0] == 201

    report = _discover(capsys)
    assert _counts(report) == {"watches": 3, "listed": 5, "tracked": 3, "recorded_ended": 2, "known": 0}
    jobs = _by_job(store)
    assert jobs["nightly-1"].terminal and not jobs["nightly-2"].terminal
    assert jobs["nightly-1"].snapshot is not None
    assert jobs["nightly-1"].snapshot.details["endedBeforeWatch"] is True
    assert jobs["453468002260053160"].spec.options == {"dbName": "default"}
    assert jobs["job-v2"].spec.source == "zilliz-import-v2"

    deployment.poll()
    events = sorted((t.job_id, t.event) for t in deployment.published())
    assert events == [("453468002260053160", "QUEUED"), ("job-v2", "STARTED"), ("nightly-2", "STARTED")]


def test_a_failing_listing_is_reported_and_changes_nothing(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, store: DynamoJobStore
) -> None:
    assert (
        _post(
            "/watches",
            {
                "kind": "zilliz-cloud-v1",
                "endpoint": sim_url,
                "clusterId": CLUSTER,
                "secretName": "jobwatch/missing",
                "allowMissingSecret": True,
            },
        )[0]
        == 201
    )
    report = discover_once()
    assert (report.tracked, len(report.errors)) == (0, 1)
    assert "jobwatch/missing" in report.errors[0]["error"]
    assert store.all_jobs() == []
    assert operations().list_watches().watches[0].primed_at is None


def test_a_redirect_to_the_metadata_address_is_a_poll_error_not_a_request(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, store: DynamoJobStore
) -> None:
    """The poller never follows redirects: a vetted endpoint cannot bounce it to an internal address."""
    location = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
    sim.add_job(
        ZILLIZ_V1,
        "job-redirect",
        [fault_http(302, body="", headers={"Location": location})],
        cluster_id=CLUSTER,
    )
    job = deployment.track(source=ZILLIZ_V1, endpoint=sim_url, job_id="job-redirect", cluster_id=CLUSTER)
    report = deployment.poll()
    assert (report.polled, report.poll_errors, report.transitions) == (1, 1, 0)
    (error,) = report.errors
    assert error["error"].startswith("HTTP_STATUS HTTP 302")
    assert sim.request_count("job-redirect") == 1
    stored = store.get_job(job.key)
    assert stored is not None and stored.snapshot is None  # no phase was ever seen
    assert deployment.published() == []
