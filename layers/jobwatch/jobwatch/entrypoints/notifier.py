"""The notifier function: one SQS batch of transitions, routed and delivered to every destination.

Channels are built per destination the first time one is used and kept for the process: a Slack
app's WebClient, an EventBridge client, the webhook poster. What a destination type needs is only
imported when a route uses it (slack_sdk costs about 100 ms of import).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from jobwatch.adapters import aws
from jobwatch.adapters.dynamodb.routes import DynamoRouteStore
from jobwatch.adapters.sns import SnsEmailPublisher
from jobwatch.adapters.sqs import SqsDeliveryQueue
from jobwatch.app.routing import Router, RoutingRecord
from jobwatch.channels.base import Channel, ChannelTuning
from jobwatch.channels.email import EmailChannel
from jobwatch.channels.slack_webhook import SlackWebhookChannel
from jobwatch.delivery.engine import DeliveryDeps
from jobwatch.delivery.notifier import Notifier
from jobwatch.domain.routing import (
    DEFAULT_WEBHOOK_MARKER,
    AnyDestination,
    EmailDestination,
    EventBridgeDestination,
    Route,
    SlackAppDestination,
    SlackWebhookDestination,
    WebhookDestination,
    default_routes,
)
from jobwatch.entrypoints.wiring import CLOCK, delivery_ledger, job_store, secret_resolver
from jobwatch.ports import EmailPublisher, Secrets
from jobwatch.settings import NotifierSettings

if TYPE_CHECKING:
    from jobwatch.ports import ThreadStore

SLACK_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


def tuning_of(settings: NotifierSettings) -> ChannelTuning:
    return ChannelTuning(
        min_interval_s=settings.slack_min_interval_s,
        max_retry_after_s=settings.delivery_max_retry_after_s,
        max_attempts=settings.delivery_max_attempts,
        retry_base_s=settings.delivery_retry_base_s,
        order_wait_s=settings.delivery_order_wait_s,
        order_retry_s=settings.delivery_order_retry_s,
    )


@dataclass
class ChannelBook:
    """`delivery.notifier.Channels`: the channel of each destination, built once per process."""

    settings: NotifierSettings
    secrets: Secrets
    slack_base_url: str | None = None
    """The Slack Web API's base URL (a local stand-in in tests and the demo; None: slack.com)."""
    email_publisher: EmailPublisher | None = None
    """Publishes alert e-mails (None: the settings' topic through SNS; the fault lab injects faults)."""
    http: httpx.Client | None = None
    """The client for Slack webhooks (None: built on first use; the fault lab passes its own)."""
    _built: dict[str, Channel] = field(default_factory=dict)
    _threads: ThreadStore | None = None

    def channel(self, destination: AnyDestination) -> Channel:
        built = self._built.get(destination.id)
        if built is None:
            built = self._built[destination.id] = self._build(destination)
        return built

    def close(self) -> None:
        if self.http is not None:
            self.http.close()

    def _http_client(self) -> httpx.Client:
        if self.http is None:
            self.http = httpx.Client(timeout=SLACK_TIMEOUT, follow_redirects=False)
        return self.http

    def _build(self, destination: AnyDestination) -> Channel:
        settings, tuning = self.settings, tuning_of(self.settings)
        if isinstance(destination, SlackWebhookDestination):
            secret = destination.webhook_secret
            if secret == DEFAULT_WEBHOOK_MARKER:
                secret = settings.slack_webhook_secret or secret  # unset: every send is BLOCKED, alarmed
            return SlackWebhookChannel(destination.id, secret, self.secrets, self._http_client(), tuning)
        if isinstance(destination, EmailDestination):
            publisher = self.email_publisher or SnsEmailPublisher(aws.sns(), settings.email_topic_arn)
            return EmailChannel(
                destination.id, publisher, settings.email_max_attempts, settings.email_retry_base_s
            )
        return self._build_lazily(destination, tuning)

    def _build_lazily(self, destination: AnyDestination, tuning: ChannelTuning) -> Channel:
        """Destination kinds whose libraries only deployments that route to them should import."""
        if isinstance(destination, SlackAppDestination):
            from jobwatch.adapters.dynamodb.threads import DynamoThreadStore
            from jobwatch.channels.slack_app import SlackAppChannel

            if self._threads is None:
                self._threads = DynamoThreadStore(aws.dynamodb(), self.settings.table)
            return SlackAppChannel(
                destination, self.secrets, self._threads, tuning, base_url=self.slack_base_url
            )
        if isinstance(destination, EventBridgeDestination):
            from jobwatch.channels.eventbridge import EventBridgeChannel

            return EventBridgeChannel(destination, aws.events(), tuning)
        if isinstance(destination, WebhookDestination):
            from jobwatch.adapters.http.webhook_client import WebhookPoster
            from jobwatch.channels.webhook import WebhookChannel

            return WebhookChannel(destination, self.secrets, WebhookPoster(self.settings), tuning)
        raise TypeError(f"no channel for destination type {type(destination).__name__}")


def defaults_of(settings: NotifierSettings) -> list[Route]:
    """The default routes; without a webhook secret, the Slack one is left out."""
    routes = default_routes(settings.alert_email_events)
    return routes if settings.slack_webhook_secret else [r for r in routes if r.name != "default-slack"]


def wire(settings: NotifierSettings) -> Notifier:
    ledger = delivery_ledger(settings)
    routes = DynamoRouteStore(aws.dynamodb(), settings.table)
    router = Router(routes, defaults_of(settings), CLOCK, settings.routes_cache_s)
    deps = DeliveryDeps(
        ledger=ledger,
        queue=SqsDeliveryQueue(aws.sqs(), settings.notify_queue_url, settings.notify_dlq_url),
        clock=CLOCK,
        standing=job_store(settings).transition_standing,
    )
    book = ChannelBook(settings, secret_resolver(settings.secret_cache_s), settings.slack_api_url)
    return Notifier(RoutingRecord(ledger, router, CLOCK), book, deps)


def cold_start() -> Notifier:
    """Settings and adapters for this process; a missing variable stops here with one line."""
    return wire(NotifierSettings.from_env())
