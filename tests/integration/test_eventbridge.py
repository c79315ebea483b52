"""The EventBridge channel against moto server: a bus, rules with event patterns, SQS targets.

What a rule's target receives is what a consumer builds on: `source`, `detail-type`, `detail` (the
versioned transition event), `resources` and `time`. The two example rules of docs/eventbridge.md
are put on the bus as written there, and must match exactly the events the docs say they match.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from jobwatch.adapters import aws
from jobwatch.channels.base import ChannelTuning
from jobwatch.channels.eventbridge import EventBridgeChannel
from jobwatch.delivery.engine import DeliveryDeps, deliver_batch
from jobwatch.delivery.records import BatchReport
from jobwatch.domain.model import JobSpec, Phase, Snapshot, Transition
from jobwatch.domain.routing import EventBridgeDestination
from jobwatch.domain.severity import severity_for
from jobwatch_devkit.fakes import FakeClock, FakeQueue, InMemoryLedger, record, sns_envelope
from jobwatch_devkit.harness import LocalDeployment

pytestmark = pytest.mark.integration

BUS = "vector-jobs"

STEP_FUNCTIONS_RULE = {
    "source": ["jobwatch"],
    "detail-type": ["Vector DB Job State Change"],
    "detail": {"event": ["SUCCEEDED"], "source": ["zilliz-import-v1", "zilliz-import-v2"]},
}
"""docs/eventbridge.md, example 1: start a workflow when a Zilliz import succeeded."""

PAGING_RULE = {
    "source": ["jobwatch"],
    "detail-type": ["Vector DB Job State Change"],
    "detail": {"event": ["FAILED"], "job": {"labels": {"env": ["prod"]}}},
}
"""docs/eventbridge.md, example 2: page the on-call when a production job failed."""

EVERYTHING_RULE = {"source": ["jobwatch"]}


def _spec(source: str, job_id: str, env: str = "prod") -> JobSpec:
    return JobSpec(
        source=source,
        endpoint="https://api.cloud.zilliz.com",
        job_id=job_id,
        cluster_id="in01-abc" if source.startswith("zilliz") else None,
        backend=None if source.startswith("zilliz") else "s3",
        labels={"env": env, "team": "search"},
    )


def _transition(spec: JobSpec, event: str, phase: Phase, version: int = 2) -> Transition:
    return Transition(
        transition_id=f"{spec.key}#{version}",
        job_key=spec.key,
        source=spec.source,
        job_id=spec.job_id,
        event=event,
        severity=severity_for(event),
        occurred_at="2026-01-01T10:42:05Z",
        job=spec,
        previous=Snapshot(phase=Phase.RUNNING, status="Importing", progress=40.0),
        current=Snapshot(phase=phase, status="Completed", details={"collections": ["articles"]}),
        note="no progress for 30m 00s" if event == "STALLED" else None,
        previous_transition_id=f"{spec.key}#{version - 1}",
    )


@pytest.fixture
def events(deployment: LocalDeployment) -> Iterator[Any]:
    """boto3's EventBridge client on the test's moto server (created after the deployment's env)."""
    aws.events.cache_clear()
    yield aws.events()
    aws.events.cache_clear()


def _queue_behind_rule(events: Any, name: str, pattern: dict[str, Any]) -> str:
    """A rule on BUS with `pattern`, whose target is a new SQS queue; returns the queue URL."""
    sqs = aws.sqs()
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventBusName=BUS, EventPattern=json.dumps(pattern), State="ENABLED")
    events.put_targets(Rule=name, EventBusName=BUS, Targets=[{"Id": "queue", "Arn": arn}])
    return url


def _received(url: str) -> list[dict[str, Any]]:
    messages = aws.sqs().receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def _deliver(events: Any, *transitions: Transition, bus: str = BUS) -> tuple[BatchReport, FakeQueue]:
    clock = FakeClock()
    queue = FakeQueue(clock)
    channel = EventBridgeChannel(EventBridgeDestination(bus=bus), events, ChannelTuning())
    deps = DeliveryDeps(ledger=InMemoryLedger(), queue=queue, clock=clock, sleep=clock.advance)
    report = deliver_batch({"Records": [record(sns_envelope(t)) for t in transitions]}, channel, deps)
    return report, queue


def test_a_rule_target_receives_the_event_as_consumers_will_see_it(events: Any) -> None:
    events.create_event_bus(Name=BUS)
    everything = _queue_behind_rule(events, "everything", EVERYTHING_RULE)
    transition = _transition(_spec("zilliz-import-v2", "job-01j9x7c2"), "SUCCEEDED", Phase.SUCCEEDED)

    report, _ = _deliver(events, transition)

    assert (report.delivered, report.failures, report.dead_lettered) == (1, [], 0)
    (event,) = _received(everything)
    assert event["source"] == "jobwatch"
    assert event["detail-type"] == "Vector DB Job State Change"
    assert event["detail"] == transition.to_wire()
    assert event["detail"]["schema"] == "jobwatch.transition/v1"
    assert event["resources"] == [f"jobwatch:job/{transition.job_key}"]
    assert event["time"] == "2026-01-01T10:42:05Z"


def test_the_example_rules_of_the_docs_match_what_they_say(events: Any) -> None:
    events.create_event_bus(Name=BUS)
    workflow = _queue_behind_rule(events, "start-workflow", STEP_FUNCTIONS_RULE)
    paging = _queue_behind_rule(events, "page-on-call", PAGING_RULE)
    zilliz_v1, zilliz_v2 = _spec("zilliz-import-v1", "imp-1"), _spec("zilliz-import-v2", "imp-2")
    weaviate, staging = _spec("weaviate-export", "exp-1"), _spec("zilliz-import-v2", "imp-3", env="staging")

    report, _ = _deliver(
        events,
        _transition(zilliz_v1, "SUCCEEDED", Phase.SUCCEEDED),  # workflow
        _transition(zilliz_v2, "SUCCEEDED", Phase.SUCCEEDED),  # workflow
        _transition(weaviate, "SUCCEEDED", Phase.SUCCEEDED),  # neither: not a Zilliz import
        _transition(zilliz_v2, "STALLED", Phase.RUNNING, 3),  # neither: a health event
        _transition(weaviate, "FAILED", Phase.FAILED, 3),  # paging
        _transition(staging, "FAILED", Phase.FAILED),  # neither: not production
    )

    assert report.delivered == 6
    started = sorted((e["detail"]["source"], e["detail"]["jobId"]) for e in _received(workflow))
    assert started == [("zilliz-import-v1", "imp-1"), ("zilliz-import-v2", "imp-2")]
    paged = [(e["detail"]["event"], e["detail"]["jobId"]) for e in _received(paging)]
    assert paged == [("FAILED", "exp-1")]


def test_health_and_test_events_have_their_own_detail_types(events: Any) -> None:
    events.create_event_bus(Name=BUS)
    health = _queue_behind_rule(
        events, "health", {"source": ["jobwatch"], "detail-type": ["Vector DB Job Health Change"]}
    )
    spec = _spec("zilliz-import-v2", "imp-9")

    _deliver(events, _transition(spec, "STALLED", Phase.RUNNING), _transition(spec, "TEST", Phase.RUNNING, 3))

    ((event),) = _received(health)
    assert event["detail"]["event"] == "STALLED" and event["detail"]["note"] == "no progress for 30m 00s"


def test_a_bus_that_does_not_exist_is_a_permanent_failure(events: Any) -> None:
    transition = _transition(_spec("zilliz-import-v2", "imp-4"), "FAILED", Phase.FAILED)

    report, queue = _deliver(events, transition, bus="no-such-bus")

    assert (report.delivered, report.dead_lettered) == (0, 1)
    ((_, reason),) = queue.dead_letters
    assert reason.startswith("call failed: ResourceNotFoundException")


def test_a_rule_can_match_jobs_by_their_resource(events: Any) -> None:
    events.create_event_bus(Name=BUS)
    zilliz_jobs = _queue_behind_rule(
        events, "zilliz-jobs", {"resources": [{"prefix": "jobwatch:job/zilliz-"}]}
    )
    zilliz, weaviate = _spec("zilliz-import-v1", "imp-5"), _spec("weaviate-export", "exp-5")

    _deliver(
        events, _transition(zilliz, "FAILED", Phase.FAILED), _transition(weaviate, "FAILED", Phase.FAILED)
    )

    assert [e["resources"] for e in _received(zilliz_jobs)] == [[f"jobwatch:job/{zilliz.key}"]]
