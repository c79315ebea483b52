"""Alert e-mail: each routed transition reaches the e-mail topic once, whatever SNS and SQS repeat.

The transitions topic feeds the e-mail queue through a filter on `event` (AlertEmailEvents plus TEST);
the e-mail sender claims (email, transitionId) and publishes the rendered text to the alert e-mail
topic, where the test subscribes a capture queue in place of an address. A failed publish is retried
as the Slack sender retries a post: a delayed copy on the e-mail queue, its attempts counted in the
copy's `jobwatchAttempts` attribute.
"""

from __future__ import annotations

from typing import Any

import pytest
from jobwatch_tools.local import email

from jobwatch.adapters import aws
from jobwatch.adapters.sns import SnsEmailPublisher, SnsPublisher
from jobwatch.adapters.sqs import SqsDeliveryQueue
from jobwatch.channels.email import EmailChannel
from jobwatch.delivery.engine import DeliveryDeps, Sender
from jobwatch.delivery.records import ATTEMPTS_ATTRIBUTE, record_from_message
from jobwatch.domain.model import Transition
from jobwatch.entrypoints.wiring import CLOCK, delivery_ledger
from jobwatch.ports import EmailPublisher
from jobwatch.render.email import email_body, email_subject
from jobwatch.settings import EmailSenderSettings
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


class _RecordingSqs:
    """The real SQS client, keeping the arguments of every `send_message` (the delayed copies)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.sent: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def send_message(self, **kwargs: Any) -> Any:
        self.sent.append(kwargs)
        return self._client.send_message(**kwargs)


def _sender(settings: EmailSenderSettings, publisher: EmailPublisher, sqs: Any) -> Sender:
    """The e-mail sender function's wiring (`entrypoints.email_sender.wire`) with this publisher."""
    deps = DeliveryDeps(
        ledger=delivery_ledger(settings),
        queue=SqsDeliveryQueue(sqs, settings.email_queue_url, settings.email_dlq_url),
        clock=CLOCK,
    )
    return Sender(EmailChannel(settings, publisher), deps)


def _as_received(sent: dict[str, Any]) -> dict[str, Any]:
    """The Lambda record SQS hands over once a copy's delay has passed."""
    return record_from_message(
        {
            "MessageId": "copy-1",
            "ReceiptHandle": "",
            "Body": sent["MessageBody"],
            "Attributes": {"ApproximateReceiveCount": "1"},
            "MessageAttributes": sent["MessageAttributes"],
        }
    )


def _queue_counts(queue_url: str) -> tuple[int, int]:
    """(visible, delayed) messages on a queue."""
    attributes = aws.sqs().get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesDelayed"]
    )


def test_a_failed_publish_is_retried_later_and_then_sent_once(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str
) -> None:
    _, failed = _failing_job(deployment, sim, sim_url)
    settings = deployment.settings
    ledger = delivery_ledger(settings)
    records = _receive(settings.email_queue_url)
    assert len(records) == 1

    sqs = _RecordingSqs(aws.sqs())
    report = _sender(settings, _BrokenTopic(), sqs).deliver({"Records": records})

    # Not a batch-item failure: the record is acknowledged and a delayed copy retries it.
    assert (report.delivered, report.retried, report.deferred, report.failures) == (0, 1, 1, [])
    aws.sqs().delete_message(QueueUrl=settings.email_queue_url, ReceiptHandle=records[0]["receiptHandle"])
    assert ledger.state("email", failed.transition_id) is None  # the claim was given back
    (copy,) = sqs.sent
    assert copy["QueueUrl"] == settings.email_queue_url
    assert copy["MessageBody"] == records[0]["body"]
    assert copy["DelaySeconds"] == 30  # JOBWATCH_EMAIL_RETRY_BASE_S after the first failed try
    assert copy["MessageAttributes"][ATTEMPTS_ATTRIBUTE] == {"DataType": "Number", "StringValue": "1"}
    assert _receive(settings.email_queue_url) == []  # invisible for its delay
    assert _queue_counts(settings.email_queue_url) == (0, 1)
    assert deployment.emails() == []

    working = _sender(settings, SnsEmailPublisher(aws.sns(), settings.email_topic_arn), aws.sqs())
    report = working.deliver({"Records": [_as_received(copy)]})
    assert (report.delivered, report.retried, report.failures) == (1, 0, [])
    assert ledger.state("email", failed.transition_id) == "DELIVERED"
    assert [e.transition_id for e in deployment.emails()] == [failed.transition_id]

    # SQS delivers the copy once more (at-least-once): it is not e-mailed twice.
    again = working.deliver({"Records": [_as_received(copy)]})
    assert (again.delivered, again.duplicates) == (0, 1)
    assert [e.transition_id for e in deployment.emails()] == [failed.transition_id]


def test_an_email_that_keeps_failing_is_dead_lettered_with_the_reason_after_its_last_attempt(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str
) -> None:
    _, failed = _failing_job(deployment, sim, sim_url)
    settings = deployment.settings
    (record,) = _receive(settings.email_queue_url)
    last = str(settings.email_max_attempts - 1)
    record["messageAttributes"][ATTEMPTS_ATTRIBUTE] = {"stringValue": last, "dataType": "Number"}

    sqs = _RecordingSqs(aws.sqs())
    report = _sender(settings, _BrokenTopic(), sqs).deliver({"Records": [record]})

    assert (report.delivered, report.retried, report.deferred, report.dead_lettered) == (0, 0, 0, 1)
    assert report.failures == []
    (dead,) = sqs.sent
    assert dead["QueueUrl"] == settings.email_dlq_url
    reason = dead["MessageAttributes"]["reason"]["StringValue"]
    assert reason.startswith(f"gave up after {settings.email_max_attempts} attempts")
    assert "SNS unavailable" in reason
    assert delivery_ledger(settings).state("email", failed.transition_id) == "FAILED_PERMANENT"
    assert deployment.emails() == []


def test_an_unreadable_event_goes_to_the_dead_letter_queue_with_its_reason(
    deployment: LocalDeployment,
) -> None:
    settings = deployment.settings
    garbled = {"messageId": "m-1", "receiptHandle": "", "body": "{not json", "attributes": {}}
    sender = email()
    assert sender is not None

    report = sender.deliver({"Records": [garbled]})

    assert (report.dead_lettered, report.failures) == (1, [])
    (dead,) = aws.sqs().receive_message(
        QueueUrl=settings.email_dlq_url, MessageAttributeNames=["All"], WaitTimeSeconds=0
    )["Messages"]
    assert dead["Body"] == "{not json"
    assert dead["MessageAttributes"]["reason"]["StringValue"].startswith("unreadable:")
    assert deployment.emails() == []
