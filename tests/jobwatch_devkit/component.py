"""A small world of fakes for component tests: the poller and the notifier wired as the functions wire
them, over in-memory ports and a fake clock (see `jobwatch_devkit.fakes`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from jobwatch.app.operations import Operations
from jobwatch.app.poll_cycle import CycleReport, PollerDeps, run_cycle
from jobwatch.app.routing import Router, RoutingRecord
from jobwatch.channels.base import Channel
from jobwatch.channels.email import EmailChannel
from jobwatch.channels.slack_webhook import SlackWebhookChannel
from jobwatch.delivery.engine import DeliveryDeps
from jobwatch.delivery.notifier import Notifier
from jobwatch.domain.endpoints import EndpointPolicy
from jobwatch.domain.model import JobSpec, TrackedJob
from jobwatch.domain.routing import (
    DEFAULT_WEBHOOK_MARKER,
    AnyDestination,
    EmailDestination,
    EventBridgeDestination,
    SlackWebhookDestination,
)
from jobwatch.entrypoints.notifier import ChannelBook, defaults_of, tuning_of
from jobwatch.settings import ApiSettings, NotifierSettings, PollerSettings

from .fakes import (
    FakeClock,
    FakeQueue,
    FakeSecrets,
    FakeSlackWebhook,
    InMemoryJobStore,
    InMemoryLedger,
    InMemoryRouteStore,
    InMemoryWatchStore,
    RecordingEmailTopic,
    RecordingPublisher,
    ScriptedUpstream,
    drain,
    record,
    sns_envelope,
)
from .fakes_events import FakeEventBridge

ENDPOINT = "https://weaviate.example.com"
WEBHOOK_SECRET = "jobwatch/slack-webhook"
BASE = {"JOBWATCH_TABLE": "jobs", "JOBWATCH_TOPIC_ARN": "arn:aws:sns:us-east-1:1:t"}


def export_status(job_id: str, status: str, **fields: Any) -> dict[str, Any]:
    """A Weaviate export status body (GET /v1/export/{backend}/{id})."""
    return {"id": job_id, "backend": "s3", "path": f"s3://bucket/{job_id}", "status": status, **fields}


def export_spec(job_id: str, **fields: Any) -> JobSpec:
    return JobSpec(source="weaviate-export", endpoint=ENDPOINT, job_id=job_id, backend="s3", **fields)


@dataclass
class World:
    """Fakes shared by the poller and the senders, as one deployment shares its table and topic."""

    clock: FakeClock = field(default_factory=FakeClock)
    store: InMemoryJobStore = field(default_factory=InMemoryJobStore)
    ledger: InMemoryLedger = field(default_factory=InMemoryLedger)
    watches: InMemoryWatchStore = field(default_factory=InMemoryWatchStore)
    publisher: RecordingPublisher = field(default_factory=RecordingPublisher)
    upstream: ScriptedUpstream = field(default_factory=ScriptedUpstream)
    secrets: FakeSecrets = field(
        default_factory=lambda: FakeSecrets({WEBHOOK_SECRET: "https://hooks.test/x"})
    )
    slack_hook: FakeSlackWebhook = field(default_factory=FakeSlackWebhook)
    email_topic: RecordingEmailTopic = field(default_factory=RecordingEmailTopic)
    routes: InMemoryRouteStore = field(default_factory=InMemoryRouteStore)
    events: FakeEventBridge = field(default_factory=FakeEventBridge)
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.notify_queue = FakeQueue(self.clock)

    # -- the poller -------------------------------------------------------------------------------

    def poller(self, **env: str) -> PollerDeps:
        settings = PollerSettings.from_env({**BASE, **self.env, **env})
        return PollerDeps(
            settings=settings,
            store=self.store,
            publisher=self.publisher,
            secrets=self.secrets,
            upstream=lambda: self.upstream,
            clock=self.clock,
            watches=self.watches,
        )

    def track(self, spec: JobSpec) -> TrackedJob:
        job, _ = self.store.add_job(spec, self.clock.now_iso())
        return job

    def cycle(self, **env: str) -> CycleReport:
        return asyncio.run(run_cycle(self.poller(**env)))

    def operations(self) -> Operations:
        """The API's operations on the same fakes (registration, listing, snooze and mute)."""
        return Operations(
            settings=ApiSettings.from_env(BASE),
            store=self.store,
            watches=self.watches,
            publisher=self.publisher,
            policy=EndpointPolicy(False),
            clock=self.clock,
            secret_names=self.secrets,
            routes=self.routes,
        )

    # -- the notifier -----------------------------------------------------------------------------

    def notifier(self, **env: str) -> Notifier:
        """The notifier as the function wires it, on the fakes: routes from `self.routes` (the
        deployment defaults when none is stored), channels through `FakeChannelBook`."""
        settings = NotifierSettings.from_env(
            {
                **BASE,
                "JOBWATCH_NOTIFY_QUEUE_URL": "queue://notify",
                "JOBWATCH_NOTIFY_DLQ_URL": "queue://notify-dlq",
                "JOBWATCH_EMAIL_TOPIC_ARN": "arn:aws:sns:us-east-1:1:mail",
                "JOBWATCH_SLACK_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "JOBWATCH_SLACK_MIN_INTERVAL_S": "0",
                **env,
            }
        )
        deps = DeliveryDeps(
            ledger=self.ledger,
            queue=self.notify_queue,
            clock=self.clock,
            standing=self.store.transition_standing,
            sleep=self.clock.advance,
        )
        router = Router(self.routes, defaults_of(settings), self.clock, ttl_s=0)
        book = FakeChannelBook(settings, self.secrets, world=self)
        return Notifier(RoutingRecord(self.ledger, router, self.clock), book, deps)

    def published_records(self) -> list[dict[str, Any]]:
        """What the transitions topic delivered to a sender's queue, as Lambda records."""
        return [record(sns_envelope(t)) for t in self.publisher.published]

    def deliver_all(self, notifier: Notifier, records: list[dict[str, Any]]) -> None:
        """One batch, then every delayed copy as the clock reaches it."""
        drain(notifier.deliver, self.notify_queue, self.clock, records)


@dataclass
class FakeChannelBook(ChannelBook):
    """The notifier's channel book with the world's fakes behind each channel: the Slack webhook
    and the e-mail topic as recorded fakes, EventBridge as `FakeEventBridge`, webhooks as a poster
    that records, Slack apps on `FakeSlackApi` (slack_sdk with its HTTP call stubbed)."""

    world: World | None = None

    def _build(self, destination: AnyDestination) -> Channel:
        world, tuning = self.world, tuning_of(self.settings)
        assert world is not None
        if isinstance(destination, SlackWebhookDestination):
            secret = (
                WEBHOOK_SECRET
                if destination.webhook_secret == DEFAULT_WEBHOOK_MARKER
                else destination.webhook_secret
            )
            return SlackWebhookChannel(
                destination.id, secret, self.secrets, world.slack_hook.client(), tuning
            )
        if isinstance(destination, EmailDestination):
            return EmailChannel(destination.id, world.email_topic, 10, 30.0)
        if isinstance(destination, EventBridgeDestination):
            from jobwatch.channels.eventbridge import EventBridgeChannel

            return EventBridgeChannel(destination, world.events, tuning)
        return super()._build(destination)
