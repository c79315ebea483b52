"""Alert e-mail: each routed transition reaches the e-mail topic once, whatever SNS and SQS repeat.

The transitions topic feeds the e-mail queue through a filter on `event` (AlertEmailEvents plus TEST);
the e-mail sender claims (email, transitionId) and publishes the rendered text to the alert e-mail
topic, where the test subscribes a capture queue in place of an address.
"""

from __future__ import annotations

from typing import Any

import pytest

from jobwatch.adapters import aws
from jobwatch.adapters.dynamodb.jobs import JobStore
from jobwatch.adapters.sns import SnsEmailPublisher, SnsPublisher
from jobwatch.delivery.email_sender import EmailDeps, deliver_email_batch
from jobwatch.delivery.records import record_from_message
from jobwatch.domain.model import Transition
from jobwatch.entrypoints.email_sender import email_deps
from jobwatch.render.email import email_body, email_subject
from jobwatch_devkit.harness import LocalDeployment
from jobwatch_devkit.simulator import UpstreamSimulator, state

pytestmark = pytest.mark.integration

EXPORT = "weaviate-export"


def _failing_job(deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str) -> list[Transition]:
    sim.add_job(EXPORT, "exp-broken", [state("STARTED"), state("FAILED", error="disk full")], backend="s3")
    deployment.track(source=EXPORT, endpoint=sim_url, job_id="exp-broken", backend="s3")
    deployment.poll()
    deployment.poll()
    published = deployment.published()
    assert [t.event for t in published] == ["STARTED", "FAILED"]
    return published


def _receive(queue_url: str) -> list[dict[str, Any]]:
    messages = aws.sqs().receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=0,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    return [record_from_message(dict(m)) for m in messages.get("Messages", [])]


def test_only_routed_events_are_emailed_and_each_once(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str
) -> None:
    started, failed = _failing_job(deployment, sim, sim_url)

    report = deployment.deliver_email()

    assert (report.delivered, report.duplicates, report.dead_lettered) == (1, 0, 0)
    (email,) = deployment.emails()
    assert (email.event, email.transition_id) == ("FAILED", failed.transition_id)
    assert (email.subject, email.body) == (email_subject(failed), email_body(failed))
    assert started.transition_id not in {e.transition_id for e in deployment.emails()}


def test_a_republished_transition_is_not_emailed_twice(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str
) -> None:
    _, failed = _failing_job(deployment, sim, sim_url)
    assert deployment.deliver_email().delivered == 1

    # The outbox republishes after a publish whose answer was lost: SNS delivers it again.
    SnsPublisher(aws.sns(), deployment.settings.topic_arn).publish(failed)
    again = deployment.deliver_email()

    assert (again.delivered, again.duplicates) == (0, 1)
    assert [e.transition_id for e in deployment.emails()] == [failed.transition_id]


class _BrokenTopic:
    def publish_email(self, transition: Transition) -> str:
        raise RuntimeError("SNS unavailable")


def test_a_failed_publish_is_retried_later_and_then_sent_once(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, store: JobStore
) -> None:
    _, failed = _failing_job(deployment, sim, sim_url)
    settings = deployment.settings
    records = _receive(settings.email_queue_url)
    assert len(records) == 1

    broken = EmailDeps(store=store, publisher=_BrokenTopic(), sqs=aws.sqs(), dlq_url=settings.email_dlq_url)
    report = deliver_email_batch({"Records": records}, broken, settings.email_queue_url)

    assert (report.delivered, report.retried, report.failures) == (0, 1, [records[0]["messageId"]])
    assert store.delivery_state("email", failed.transition_id) is None  # the claim was given back
    assert _receive(settings.email_queue_url) == []  # invisible for the backoff (30 s after one try)
    assert deployment.emails() == []

    working = EmailDeps(
        store=store,
        publisher=SnsEmailPublisher(aws.sns(), settings.email_topic_arn),
        sqs=aws.sqs(),
        dlq_url=settings.email_dlq_url,
    )
    report = deliver_email_batch({"Records": records}, working, settings.email_queue_url)
    assert (report.delivered, report.failures) == (1, [])
    assert [e.transition_id for e in deployment.emails()] == [failed.transition_id]


def test_an_unreadable_event_goes_to_the_dead_letter_queue_with_its_reason(
    deployment: LocalDeployment, store: JobStore
) -> None:
    settings = deployment.settings
    garbled = {"messageId": "m-1", "receiptHandle": "", "body": "{not json", "attributes": {}}

    report = deliver_email_batch({"Records": [garbled]}, email_deps(), settings.email_queue_url)

    assert (report.dead_lettered, report.failures) == (1, [])
    (dead,) = aws.sqs().receive_message(
        QueueUrl=settings.email_dlq_url, MessageAttributeNames=["All"], WaitTimeSeconds=0
    )["Messages"]
    assert dead["Body"] == "{not json"
    assert dead["MessageAttributes"]["reason"]["StringValue"].startswith("unreadable:")
    assert deployment.emails() == []
