"""Health events through the real handlers, the simulator and the Slack sink.

STALLED/RESUMED, UNREACHABLE/RECOVERED, AUTH_FAILED (naming the secret), LOST and OVERDUE: each is
sent exactly once, never changes the phase (except LOST, which is terminal) and reaches Slack.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from jobwatch.adapters import aws
from jobwatch.domain.model import Phase
from jobwatch_devkit.harness import LocalDeployment
from jobwatch_devkit.simulator import UpstreamSimulator, fault_http, fault_rate_limit, hold, state
from jobwatch_devkit.slack_sink import SlackSink

EXPORT = "weaviate-export"
MILVUS = "milvus-import"


def events_of(deployment: LocalDeployment, job_id: str) -> list[str]:
    return [t.event for t in deployment.published() if t.job_id == job_id]


def test_unreachable_once_then_recovered(
    make_deployment: Callable[..., LocalDeployment], sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    deployment = make_deployment({"JOBWATCH_UNREACHABLE_AFTER": "3", "JOBWATCH_ADAPTIVE_POLLING": "false"})
    faults = [fault_http(500), fault_rate_limit(1), fault_http(503), fault_http(500), fault_http(500)]
    sim.add_job(
        EXPORT,
        "exp-flaky",
        [state("TRANSFERRING"), *faults, state("TRANSFERRING"), state("SUCCESS")],
        backend="s3",
    )
    deployment.track(source=EXPORT, endpoint=sim_url, job_id="exp-flaky", backend="s3")
    reports = [deployment.poll() for _ in range(8)]
    assert events_of(deployment, "exp-flaky") == ["STARTED", "UNREACHABLE", "RECOVERED", "SUCCEEDED"]
    assert sum(r.poll_errors for r in reports) == 5
    unreachable = next(t for t in deployment.published() if t.event == "UNREACHABLE")
    assert unreachable.current.phase is Phase.RUNNING and unreachable.previous == unreachable.current
    assert unreachable.note is not None and "3 polls failed in a row" in unreachable.note
    assert deployment.deliver().delivered == 4
    assert len(sink.messages()) == 4


def test_auth_failed_names_the_secret_to_fix(
    make_deployment: Callable[..., LocalDeployment], sim: UpstreamSimulator, sim_url: str
) -> None:
    deployment = make_deployment({"JOBWATCH_UNREACHABLE_AFTER": "2", "JOBWATCH_ADAPTIVE_POLLING": "false"})
    aws.secretsmanager().create_secret(Name="jobwatch/rotated", SecretString="old-key")
    sim.add_job(EXPORT, "exp-auth", [state("TRANSFERRING")], backend="s3", api_key="new-key")
    deployment.track(
        source=EXPORT, endpoint=sim_url, job_id="exp-auth", backend="s3", secret_name="jobwatch/rotated"
    )
    for _ in range(4):
        deployment.poll()
    assert events_of(deployment, "exp-auth") == ["AUTH_FAILED"]
    alert = deployment.published()[0]
    assert alert.note is not None and "jobwatch/rotated" in alert.note and "HTTP 401" in alert.note
    assert "old-key" not in alert.model_dump_json()  # secret values never travel


def test_lost_after_repeated_not_found(
    make_deployment: Callable[..., LocalDeployment], sim: UpstreamSimulator, sim_url: str
) -> None:
    deployment = make_deployment({"JOBWATCH_LOST_AFTER": "2", "JOBWATCH_ADAPTIVE_POLLING": "false"})
    sim.add_job(MILVUS, "4510", [state("Importing", progress=40), hold()])
    job = deployment.track(source=MILVUS, endpoint=sim_url, job_id="4510")
    deployment.poll()
    sim.reset()  # the server garbage-collected the job: describe now answers code 2100
    for _ in range(3):
        deployment.poll()
    assert events_of(deployment, "4510") == ["STARTED", "LOST"]
    stored = next(j for j in deployment.jobs() if j.key == job.key)
    assert stored.snapshot is not None and stored.snapshot.phase is Phase.LOST and stored.terminal
    assert deployment.poll().jobs == 0  # terminal: no longer polled


def test_stalled_at_80_percent_with_every_file_completed_then_resumed(
    make_deployment: Callable[..., LocalDeployment], sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    deployment = make_deployment({"JOBWATCH_STALL_AFTER_S": "1", "JOBWATCH_ADAPTIVE_POLLING": "false"})
    parked = state("Importing", progress=80, rows=520161, total_rows=520161, files=["5.parquet"])
    sim.add_job(MILVUS, "4520", [parked, hold(), state("Completed", progress=100)])
    deployment.track(source=MILVUS, endpoint=sim_url, job_id="4520")
    deployment.poll()
    deployment.poll()
    assert events_of(deployment, "4520") == ["STARTED"]  # not yet: below the threshold
    time.sleep(1.2)
    deployment.poll()
    deployment.poll()  # once only
    assert events_of(deployment, "4520") == ["STARTED", "STALLED"]
    stalled = deployment.published()[-1]
    assert stalled.note is not None and "no progress for" in stalled.note
    sim.advance("4520")
    deployment.poll()
    assert events_of(deployment, "4520") == ["STARTED", "STALLED", "SUCCEEDED"]
    assert deployment.deliver().delivered == 3


def test_resumed_when_progress_moves_again(
    make_deployment: Callable[..., LocalDeployment], sim: UpstreamSimulator, sim_url: str
) -> None:
    deployment = make_deployment({"JOBWATCH_STALL_AFTER_S": "1", "JOBWATCH_ADAPTIVE_POLLING": "false"})
    sim.add_job(
        MILVUS, "4530", [state("Importing", progress=40), hold(), state("Importing", progress=60), hold()]
    )
    deployment.track(source=MILVUS, endpoint=sim_url, job_id="4530")
    deployment.poll()
    time.sleep(1.2)
    deployment.poll()
    sim.advance("4530")
    deployment.poll()
    deployment.poll()
    assert events_of(deployment, "4530") == ["STARTED", "STALLED", "RESUMED"]


def test_overdue_once_past_the_maximum_duration(
    make_deployment: Callable[..., LocalDeployment], sim: UpstreamSimulator, sim_url: str
) -> None:
    # The simulator reports exports as started one minute before registration.
    deployment = make_deployment({"JOBWATCH_MAX_DURATION_S": "30", "JOBWATCH_ADAPTIVE_POLLING": "false"})
    sim.add_job(EXPORT, "exp-slow", [state("TRANSFERRING")], backend="s3")
    deployment.track(source=EXPORT, endpoint=sim_url, job_id="exp-slow", backend="s3")
    for _ in range(3):
        deployment.poll()
    assert events_of(deployment, "exp-slow") == ["STARTED", "OVERDUE"]
