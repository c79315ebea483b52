"""A small world of fakes for component tests: a poller and both senders wired as the functions wire
them, over in-memory ports and a fake clock (see `jobwatch_devkit.fakes`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from jobwatch.app.poll_cycle import CycleReport, PollerDeps, run_cycle
from jobwatch.channels.email import EmailChannel
from jobwatch.channels.slack_webhook import SlackWebhookChannel
from jobwatch.delivery.engine import DeliveryDeps, Sender
from jobwatch.domain.model import JobSpec, TrackedJob
from jobwatch.settings import EmailSenderSettings, PollerSettings, SlackSenderSettings

from .fakes import (
    FakeClock,
    FakeQueue,
    FakeSecrets,
    FakeSlackWebhook,
    InMemoryJobStore,
    InMemoryLedger,
    InMemoryWatchStore,
    RecordingEmailTopic,
    RecordingPublisher,
    ScriptedUpstream,
    drain,
    record,
    sns_envelope,
)

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
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.slack_queue = FakeQueue(self.clock)
        self.email_queue = FakeQueue(self.clock)

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

    # -- the senders ------------------------------------------------------------------------------

    def slack(self, **env: str) -> Sender:
        settings = SlackSenderSettings.from_env(
            {
                **BASE,
                "JOBWATCH_SLACK_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "JOBWATCH_SLACK_QUEUE_URL": "queue://slack",
                "JOBWATCH_SLACK_DLQ_URL": "queue://slack-dlq",
                "JOBWATCH_SLACK_MIN_INTERVAL_S": "0",
                **env,
            }
        )
        channel = SlackWebhookChannel(settings, self.secrets, self.slack_hook.client())
        deps = DeliveryDeps(
            ledger=self.ledger,
            queue=self.slack_queue,
            clock=self.clock,
            standing=self.store.transition_standing,
            sleep=self.clock.advance,
        )
        return Sender(channel, deps)

    def email(self, **env: str) -> Sender:
        settings = EmailSenderSettings.from_env(
            {
                **BASE,
                "JOBWATCH_EMAIL_TOPIC_ARN": "arn:aws:sns:us-east-1:1:mail",
                "JOBWATCH_EMAIL_QUEUE_URL": "queue://email",
                "JOBWATCH_EMAIL_DLQ_URL": "queue://email-dlq",
                **env,
            }
        )
        deps = DeliveryDeps(
            ledger=self.ledger, queue=self.email_queue, clock=self.clock, sleep=self.clock.advance
        )
        return Sender(EmailChannel(settings, self.email_topic), deps)

    def published_records(self) -> list[dict[str, Any]]:
        """What the transitions topic delivered to a sender's queue, as Lambda records."""
        return [record(sns_envelope(t)) for t in self.publisher.published]

    def deliver_all(self, sender: Sender, queue: FakeQueue, records: list[dict[str, Any]]) -> None:
        """One batch, then every delayed copy as the clock reaches it."""
        drain(sender.deliver, queue, self.clock, records)
