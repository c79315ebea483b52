"""The Slack sender function: one SQS batch of transitions to the Slack incoming webhook."""

from __future__ import annotations

import httpx

from jobwatch.adapters import aws
from jobwatch.adapters.sqs import SqsDeliveryQueue
from jobwatch.channels.slack_webhook import SlackWebhookChannel
from jobwatch.delivery.engine import DeliveryDeps, Sender
from jobwatch.entrypoints.wiring import CLOCK, delivery_ledger, job_store, secret_resolver
from jobwatch.settings import SlackSenderSettings

SLACK_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


def wire(settings: SlackSenderSettings) -> Sender:
    channel = SlackWebhookChannel(
        settings,
        secret_resolver(settings.secret_cache_s),
        httpx.Client(timeout=SLACK_TIMEOUT, follow_redirects=False),
    )
    deps = DeliveryDeps(
        ledger=delivery_ledger(settings),
        queue=SqsDeliveryQueue(aws.sqs(), settings.slack_queue_url, settings.slack_dlq_url),
        clock=CLOCK,
        standing=job_store(settings).transition_standing,
    )
    return Sender(channel, deps)


def cold_start() -> Sender:
    """Settings and adapters for this process; a missing variable stops here with one line."""
    return wire(SlackSenderSettings.from_env())
