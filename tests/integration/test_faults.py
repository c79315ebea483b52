"""Upstream faults: each one is a logged poll error, never a state change or a notification.

Every case runs the same script against the real poller: a first poll sees the job running (one
STARTED event), the second poll meets the fault, the third sees the job finish. The fault poll must be
counted (`poll_errors`, or `ignored` for an undocumented status), logged once on stderr as JSON with
the job key and the error kind, leave the job item untouched (same version, same snapshot) and send
nothing to SNS or Slack; the recovery must then be an ordinary RUNNING -> SUCCEEDED transition whose id
shows that nothing was written in between (`<key>#2`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from jobwatch.adapters.dynamodb.jobs import DynamoJobStore
from jobwatch.domain.model import Phase, TrackedJob
from jobwatch_devkit.harness import LocalDeployment
from jobwatch_devkit.simulator import (
    Step,
    UpstreamSimulator,
    fault_api_error,
    fault_array,
    fault_drift,
    fault_hang,
    fault_html,
    fault_http,
    fault_malformed,
    fault_rate_limit,
    fault_reset,
    state,
    unknown_status,
)
from jobwatch_devkit.slack_sink import SlackSink

pytestmark = pytest.mark.integration

EXPORT = "weaviate-export"
ZILLIZ = "zilliz-import-v1"
CLUSTER = "in01-7d1e0b"
POLL_FAILED = "poll failed; job phase unchanged"
IGNORED = "poll result ignored; job state unchanged"

LogReader = Callable[[], list[dict[str, Any]]]


@dataclass(frozen=True)
class Fault:
    source: str
    step: Step
    kind: str | None
    """The logged `errorKind`; None for an ignored result (no error kind, a `reason` instead)."""
    error: str
    """The logged `error` (or `reason`): exact, or its start when it ends with ": "."""


_RUNNING = {EXPORT: state("STARTED"), ZILLIZ: state(ready=0.25)}
_DONE = {EXPORT: state("SUCCESS", objects=1000), ZILLIZ: state(ready=1)}

FAULTS: dict[str, Fault] = {
    # -- Weaviate export ----------------------------------------------------------------------------------
    "export-malformed-json": Fault(
        EXPORT,
        fault_malformed(),
        "INVALID_BODY",
        "INVALID_BODY HTTP 200: body is not JSON (application/json): ",
    ),
    "export-array-body": Fault(
        EXPORT, fault_array(), "INVALID_BODY", "INVALID_BODY HTTP 200: expected a JSON object, got list"
    ),
    "export-html-error-page": Fault(
        EXPORT, fault_html(503), "HTTP_STATUS", "HTTP_STATUS HTTP 503: 503 Service Temporarily Unavailable"
    ),
    "export-unknown-status": Fault(
        EXPORT, unknown_status("REBALANCING"), None, "unknown upstream status 'REBALANCING'"
    ),
    "export-http-500": Fault(
        EXPORT, fault_http(500), "HTTP_STATUS", "HTTP_STATUS HTTP 500: simulated 500 Internal Server Error"
    ),
    "export-http-429-retry-after": Fault(
        EXPORT,
        fault_rate_limit(30),
        "RATE_LIMITED",
        "RATE_LIMITED HTTP 429: simulated 429 Too Many Requests",
    ),
    "export-hang-past-read-timeout": Fault(
        EXPORT, fault_hang(2.5), "TIMEOUT", "TIMEOUT: no answer in time (ReadTimeout)"
    ),
    "export-connection-reset": Fault(EXPORT, fault_reset(), "CONNECTION", "CONNECTION: "),
    "export-drift-status-missing": Fault(
        EXPORT, fault_drift(), "INVALID_BODY", "INVALID_BODY: schema drift: status is missing"
    ),
    "export-drift-shard-not-an-object": Fault(
        EXPORT,
        state("TRANSFERRING", extra={"shardStatus": {"Article": "TRANSFERRING"}}),
        "INVALID_BODY",
        "INVALID_BODY: schema drift: shardStatus.Article is a string, expected an object",
    ),
    "export-http-401": Fault(EXPORT, fault_http(401), "AUTH", "AUTH HTTP 401: simulated 401 Unauthorized"),
    # -- Zilliz Cloud import (v1) -------------------------------------------------------------------------
    "zilliz-api-error-code-in-http-200": Fault(
        ZILLIZ,
        fault_api_error(80010, "Cluster in01-7d1e0b is not running."),
        "API_ERROR",
        "API_ERROR HTTP 200 code 80010: Cluster in01-7d1e0b is not running.",
    ),
    "zilliz-auth-code-in-http-200": Fault(
        ZILLIZ,
        fault_api_error(80001, "Invalid token"),
        "AUTH",
        "AUTH HTTP 200 code 80001: Invalid token",
    ),
    "zilliz-http-500": Fault(
        ZILLIZ,
        fault_http(500),
        "HTTP_STATUS",
        "HTTP_STATUS HTTP 500 code 500: simulated 500 Internal Server Error",
    ),
    "zilliz-drift-ready-missing": Fault(
        ZILLIZ, fault_drift(), "INVALID_BODY", "INVALID_BODY: schema drift: data.readyPercentage is missing"
    ),
    "zilliz-drift-file-not-an-object": Fault(
        ZILLIZ,
        state(ready=0.5, extra={"details": ["data/1.parquet"]}),
        "INVALID_BODY",
        "INVALID_BODY: schema drift: data.details[0] is a string, expected an object",
    ),
    "zilliz-http-401": Fault(
        ZILLIZ,
        fault_http(401),
        "AUTH",
        "AUTH HTTP 401 code 401: simulated 401 Unauthorized",
    ),
}


def _tid(job_key: str, version: int) -> str:
    """The id of a transition the job's current life recorded at `version` (docs/decisions.md, D28)."""
    from jobwatch_tools.local import list_jobs

    from jobwatch.domain.transitions import transition_id

    (job,) = [job for job in list_jobs() if job.key == job_key]
    return transition_id(job_key, version, life=job.life)


def _track(deployment: LocalDeployment, source: str, job_id: str, endpoint: str) -> TrackedJob:
    if source == EXPORT:
        return deployment.track(source=source, endpoint=endpoint, job_id=job_id, backend="s3")
    return deployment.track(source=source, endpoint=endpoint, job_id=job_id, cluster_id=CLUSTER)


def _job(store: DynamoJobStore, key: str) -> TrackedJob:
    job = store.get_job(key)
    assert job is not None
    return job


@pytest.mark.parametrize("case", list(FAULTS.values()), ids=list(FAULTS))
def test_fault_is_a_logged_poll_error_without_state_change_or_notification(
    deployment: LocalDeployment,
    sim: UpstreamSimulator,
    sim_url: str,
    sink: SlackSink,
    store: DynamoJobStore,
    stderr_logs: LogReader,
    case: Fault,
) -> None:
    job_id = f"{case.source}-faulty"
    sim.add_job(case.source, job_id, [_RUNNING[case.source], case.step, _DONE[case.source]])
    job = _track(deployment, case.source, job_id, sim_url)

    report = deployment.poll()
    assert (report.transitions, report.published, report.poll_errors) == (1, 1, 0)
    assert deployment.deliver().delivered == 1
    running = _job(store, job.key)
    assert running.version == 1
    stderr_logs()  # forget the lines of the first cycle

    # The fault.
    report = deployment.poll()
    counted = (report.poll_errors, report.ignored)
    assert counted == ((1, 0) if case.kind is not None else (0, 1))
    assert (report.polled, report.unchanged, report.updated, report.transitions) == (1, 0, 0, 0)
    assert (report.published, report.republished, report.conflicts, report.events) == (0, 0, 0, [])
    records = [r for r in stderr_logs() if r.get("jobKey") == job.key]
    assert len(records) == 1, records
    record = records[0]
    assert (record["level"], record["jobId"], record["source"]) == ("WARNING", job_id, case.source)
    if case.kind is not None:
        assert record["message"] == POLL_FAILED
        assert record["errorKind"] == case.kind
        logged = record["error"]
    else:
        assert record["message"] == IGNORED
        assert "errorKind" not in record
        logged = record["reason"]
    if case.error.endswith(": "):  # the rest depends on the transport's wording
        assert logged.startswith(case.error) and len(logged) > len(case.error), logged
    else:
        assert logged == case.error
    assert report.errors == [{"jobKey": job.key, "jobId": job_id, "error": logged}]
    after = _job(store, job.key)
    # The phase, snapshot, version and timestamps stay; only the error streak is counted (issue 3).
    assert after.model_copy(update={"health": running.health}) == running
    if case.kind is not None:
        assert (after.health.consecutive_errors, after.health.last_error_kind) == (1, case.kind)
    else:
        assert after.health == running.health
    assert len(deployment.published()) == 1
    delivery = deployment.deliver()
    assert (delivery.delivered, delivery.retried, delivery.dead_lettered) == (0, 0, 0)
    assert len(sink.messages()) == 1

    # The upstream answers correctly again: an ordinary transition, as if the fault never happened.
    report = deployment.poll()
    assert (report.poll_errors, report.ignored, report.transitions, report.published) == (0, 0, 1, 1)
    events = deployment.published()
    assert len(events) == 2
    finished = events[1]
    assert (finished.event, finished.transition_id) == ("SUCCEEDED", _tid(job.key, 2))
    assert finished.previous == running.snapshot
    assert finished.previous is not None and finished.previous.phase is Phase.RUNNING
    assert finished.current.phase is Phase.SUCCEEDED
    assert deployment.deliver().delivered == 1
    assert len(sink.messages()) == 2
    assert sim.request_count(job_id) == 3  # one request per cycle: no retry storm on a fault

    report = deployment.poll()
    assert (report.jobs, report.polled) == (0, 0)
