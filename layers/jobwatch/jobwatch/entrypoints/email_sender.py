"""The e-mail sender function: one SQS batch of alert e-mail events to the alert e-mail topic."""

from __future__ import annotations

from jobwatch.adapters import aws
from jobwatch.adapters.sns import SnsEmailPublisher
from jobwatch.adapters.sqs import SqsDeliveryQueue
from jobwatch.channels.email import EmailChannel
from jobwatch.delivery.engine import DeliveryDeps, Sender
from jobwatch.entrypoints.wiring import CLOCK, delivery_ledger
from jobwatch.settings import EmailSenderSettings


def wire(settings: EmailSenderSettings) -> Sender:
    channel = EmailChannel(settings, SnsEmailPublisher(aws.sns(), settings.email_topic_arn))
    deps = DeliveryDeps(
        ledger=delivery_ledger(settings),
        queue=SqsDeliveryQueue(aws.sqs(), settings.email_queue_url, settings.email_dlq_url),
        clock=CLOCK,
    )
    return Sender(channel, deps)


def cold_start() -> Sender:
    """Settings and adapters for this process; a missing variable stops here with one line."""
    return wire(EmailSenderSettings.from_env())
