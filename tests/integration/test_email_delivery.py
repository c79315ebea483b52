"""Alert e-mail: each routed transition reaches the e-mail topic once, whatever SNS and SQS repeat.

With no route stored, the notifier's default routes send AlertEmailEvents plus TEST to the e-mail
destination `email` (and every transition to the default Slack webhook, so a drain's counts are sums
over both). The notifier claims (email, transitionId) and publishes the rendered text to the alert
e-mail topic with the `destination` attribute the standing subscription filters on; the test
subscribes a capture queue there in place of an address. A failed publish is retried as a failed
Slack post is: a delayed copy on the notifier's queue naming its destination (`jobwatchDestination`),
its attempts counted in the copy's `jobwatchAttempts` attribute.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from jobwatch_tools.local import notify

from jobwatch.adapters import aws
from jobwatch.adapters.sns import SnsPublisher
from jobwatch.adapters.sqs import SqsDeliveryQueue
from jobwatch.channels.base import Channel
from jobwatch.channels.email import EmailChannel
from jobwatch.delivery.notifier import DESTINATION_ATTRIBUTE, Notifier
from jobwatch.delivery.records import ATTEMPTS_ATTRIBUTE, record_from_message
from jobwatch.domain.model import Transition
from jobwatch.domain.routing import DEFAULT_EMAIL, AnyDestination, EmailDestination
from jobwatch.entrypoints import notifier
from jobwatch.entrypoints.notifier import ChannelBook
from jobwatch.entrypoints.wiring import delivery_ledger
from jobwatch.ports import EmailPublisher
from jobwatch.render.email import email_body, email_subject
from jobwatch.settings import NotifierSettings
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


def _email_destinations(deployment: LocalDeployment) -> list[str]:
    """The `destination` attribute of each message waiting on the e-mail capture queue (left there)."""
    messages = aws.sqs().receive_message(
        QueueUrl=deployment.email_capture_url, MaxNumberOfMessages=10, VisibilityTimeout=0
    )
    envelopes = [json.loads(m["Body"]) for m in messages.get("Messages", [])]
    return [e["MessageAttributes"]["destination"]["Value"] for e in envelopes]


def test_only_routed_events_are_emailed_and_each_once(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str
) -> None:
    started, failed = _failing_job(deployment, sim, sim_url)

    report = deployment.deliver()

    # STARTED and FAILED to the default Slack webhook, FAILED alone to the alert e-mail.
    assert (report.delivered, report.duplicates, report.dead_lettered) == (3, 0, 0)
    assert _email_destinations(deployment) == [DEFAULT_EMAIL]  # what the standing subscription filters on
    (email,) = deployment.emails()
    assert (email.event, email.transition_id) == ("FAILED", failed.transition_id)
    assert (email.subject, email.body) == (email_subject(failed), email_body(failed))
    assert started.transition_id not in {e.transition_id for e in deployment.emails()}


def test_a_republished_transition_is_not_emailed_twice(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str
) -> None:
    _, failed = _failing_job(deployment, sim, sim_url)
    assert deployment.deliver().delivered == 3  # STARTED and FAILED to Slack, FAILED to e-mail

    # The outbox republishes after a publish whose answer was lost: SNS delivers it again.
    SnsPublisher(aws.sns(), deployment.settings.topic_arn).publish(failed)
    again = deployment.deliver()

    assert (again.delivered, again.duplicates) == (0, 2)  # a duplicate for Slack and one for e-mail
    assert [e.transition_id for e in deployment.emails()] == [failed.transition_id]


class _BrokenTopic:
    def publish_email(self, transition: Transition, destination: str) -> str:
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


@dataclass
class _BookWithTopic(ChannelBook):
    """The notifier's channel book with this publisher behind every e-mail destination."""

    publisher: EmailPublisher | None = None

    def _build(self, destination: AnyDestination) -> Channel:
        if isinstance(destination, EmailDestination) and self.publisher is not None:
            settings = self.settings
            return EmailChannel(
                destination.id, self.publisher, settings.email_max_attempts, settings.email_retry_base_s
            )
        return super()._build(destination)


@pytest.fixture
def make_notifier() -> Iterator[Callable[[NotifierSettings, EmailPublisher, Any], Notifier]]:
    """The notifier function's wiring (`entrypoints.notifier.wire`) with this e-mail publisher and
    this SQS client behind its queue; the books' HTTP clients are closed afterwards."""
    books: list[ChannelBook] = []

    def make(settings: NotifierSettings, publisher: EmailPublisher, sqs: Any) -> Notifier:
        wired = notifier.wire(settings)
        assert isinstance(wired.channels, ChannelBook)
        book = _BookWithTopic(
            settings, wired.channels.secrets, wired.channels.slack_base_url, publisher=publisher
        )
        books.append(book)
        queue = SqsDeliveryQueue(sqs, settings.notify_queue_url, settings.notify_dlq_url)
        return dataclasses.replace(wired, channels=book, deps=dataclasses.replace(wired.deps, queue=queue))

    yield make
    for book in books:
        book.close()


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
    deployment: LocalDeployment,
    sim: UpstreamSimulator,
    sim_url: str,
    make_notifier: Callable[[NotifierSettings, EmailPublisher, Any], Notifier],
) -> None:
    _, failed = _failing_job(deployment, sim, sim_url)
    settings = deployment.settings
    ledger = delivery_ledger(settings)
    records = _receive(settings.notify_queue_url)
    assert len(records) == 2  # STARTED and FAILED: the notifier's queue takes every transition

    sqs = _RecordingSqs(aws.sqs())
    report = make_notifier(settings, _BrokenTopic(), sqs).deliver({"Records": records})

    # Both reach Slack. The e-mail is not a batch-item failure: the record is acknowledged and a
    # delayed copy retries it, for the e-mail destination only.
    assert (report.delivered, report.retried, report.deferred, report.failures) == (2, 1, 1, [])
    for record in records:
        aws.sqs().delete_message(QueueUrl=settings.notify_queue_url, ReceiptHandle=record["receiptHandle"])
    assert ledger.state(DEFAULT_EMAIL, failed.transition_id) is None  # the claim was given back
    (copy,) = sqs.sent
    assert copy["QueueUrl"] == settings.notify_queue_url
    assert copy["MessageBody"] == next(r["body"] for r in records if failed.transition_id in r["body"])
    assert copy["DelaySeconds"] == 30  # JOBWATCH_EMAIL_RETRY_BASE_S after the first failed try
    assert copy["MessageAttributes"][ATTEMPTS_ATTRIBUTE] == {"DataType": "Number", "StringValue": "1"}
    assert copy["MessageAttributes"][DESTINATION_ATTRIBUTE] == {"DataType": "String", "StringValue": "email"}
    assert _receive(settings.notify_queue_url) == []  # invisible for its delay
    assert _queue_counts(settings.notify_queue_url) == (0, 1)
    assert deployment.emails() == []

    working = notify()  # the notifier function's own wiring: the real alert e-mail topic
    report = working.deliver({"Records": [_as_received(copy)]})
    assert (report.delivered, report.retried, report.failures) == (1, 0, [])
    assert report.duplicates == 0  # the copy named its destination: Slack was not asked again
    assert ledger.state(DEFAULT_EMAIL, failed.transition_id) == "DELIVERED"
    assert [e.transition_id for e in deployment.emails()] == [failed.transition_id]

    # SQS delivers the copy once more (at-least-once): it is not e-mailed twice.
    again = working.deliver({"Records": [_as_received(copy)]})
    assert (again.delivered, again.duplicates) == (0, 1)
    assert [e.transition_id for e in deployment.emails()] == [failed.transition_id]


def test_an_email_that_keeps_failing_is_dead_lettered_with_the_reason_after_its_last_attempt(
    deployment: LocalDeployment,
    sim: UpstreamSimulator,
    sim_url: str,
    make_notifier: Callable[[NotifierSettings, EmailPublisher, Any], Notifier],
) -> None:
    _, failed = _failing_job(deployment, sim, sim_url)
    settings = deployment.settings
    sqs = _RecordingSqs(aws.sqs())
    broken = make_notifier(settings, _BrokenTopic(), sqs)
    first = broken.deliver({"Records": _receive(settings.notify_queue_url)})  # Slack takes both
    assert (first.delivered, first.retried) == (2, 1)
    (copy,) = sqs.sent  # the e-mail's retry, as SQS will hand it over once its delay has passed
    record = _as_received(copy)
    last = str(settings.email_max_attempts - 1)
    record["messageAttributes"][ATTEMPTS_ATTRIBUTE] = {"stringValue": last, "dataType": "Number"}

    report = broken.deliver({"Records": [record]})

    assert (report.delivered, report.retried, report.deferred, report.dead_lettered) == (0, 0, 0, 1)
    assert report.failures == []
    _, dead = sqs.sent
    assert dead["QueueUrl"] == settings.notify_dlq_url
    reason = dead["MessageAttributes"]["reason"]["StringValue"]
    assert reason.startswith(f"gave up after {settings.email_max_attempts} attempts")
    assert "SNS unavailable" in reason
    assert delivery_ledger(settings).state(DEFAULT_EMAIL, failed.transition_id) == "FAILED_PERMANENT"
    assert deployment.emails() == []


def test_an_unreadable_event_goes_to_the_dead_letter_queue_with_its_reason(
    deployment: LocalDeployment,
) -> None:
    settings = deployment.settings
    garbled = {"messageId": "m-1", "receiptHandle": "", "body": "{not json", "attributes": {}}

    report = notify().deliver({"Records": [garbled]})

    assert (report.dead_lettered, report.failures) == (1, [])
    (dead,) = aws.sqs().receive_message(
        QueueUrl=settings.notify_dlq_url, MessageAttributeNames=["All"], WaitTimeSeconds=0
    )["Messages"]
    assert dead["Body"] == "{not json"
    assert dead["MessageAttributes"]["reason"]["StringValue"].startswith("unreadable:")
    assert deployment.emails() == []
