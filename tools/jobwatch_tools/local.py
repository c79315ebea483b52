"""Local runs of the functions' code paths: one poll cycle, the sender queues drained as the SQS
event source would, one job polled once, the registration operations. Each uses the same wiring
the Lambda function builds at cold start (`jobwatch.entrypoints`), built once per process here.
Tools only: never in the Lambda layer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from jobwatch.adapters import aws
from jobwatch.adapters.http.upstream import HttpUpstream
from jobwatch.app.discovery import DiscoveryReport, run_discovery
from jobwatch.app.models import JobResource
from jobwatch.app.operations import Operations
from jobwatch.app.poll_cycle import CycleReport, PollerDeps
from jobwatch.app.polling import poll_spec
from jobwatch.app.registration import parse_job_registration
from jobwatch.channels.slack_webhook import SlackWebhookChannel
from jobwatch.delivery.engine import Sender
from jobwatch.delivery.records import BatchReport, record_from_message
from jobwatch.domain.model import JobSpec, Snapshot, TrackedJob
from jobwatch.entrypoints import api, email_sender, poller, slack_sender
from jobwatch.entrypoints.wiring import CLOCK, secret_resolver
from jobwatch.settings import (
    ApiSettings,
    EmailSenderSettings,
    PollerSettings,
    SettingsError,
    SlackSenderSettings,
    UpstreamSettings,
    load_settings,
)


class LocalSettings(PollerSettings, SlackSenderSettings, EmailSenderSettings, ApiSettings):
    """Every function's settings at once: what `jobwatch local-stack` exports for a local run."""


@cache
def poller_deps() -> PollerDeps:
    return poller.wire(load_settings(PollerSettings))


@cache
def slack() -> Sender:
    return slack_sender.wire(load_settings(SlackSenderSettings))


@cache
def email() -> Sender | None:
    """The e-mail sender, or None in a deployment without an e-mail queue."""
    try:
        settings = load_settings(EmailSenderSettings)
    except SettingsError:
        return None
    return email_sender.wire(settings)


@cache
def operations() -> Operations:
    return api.wire(load_settings(ApiSettings))


def clear_caches() -> None:
    """Forget wiring built for a previous environment (tests and the demo switch stacks)."""
    if slack.cache_info().currsize and isinstance(channel := slack().channel, SlackWebhookChannel):
        channel.close()
    for cached in (poller_deps, slack, email, operations, load_settings, secret_resolver):
        cached.cache_clear()


def poll_once() -> CycleReport:
    """One poll cycle through the poller function's code path."""
    return poller.run(poller_deps(), {}, None)


def drain_slack_queue(max_batches: int = 100) -> BatchReport:
    """Receive from the Slack queue and feed batches through the sender function's code path."""
    sender = slack()
    queue_url = load_settings(SlackSenderSettings).slack_queue_url
    return _drain_queue(queue_url, sender.deliver, max_batches)


def drain_email_queue(max_batches: int = 100) -> BatchReport | None:
    """The e-mail queue's counterpart of `drain_slack_queue`; None when no e-mail queue is set."""
    sender = email()
    if sender is None:
        return None
    return _drain_queue(load_settings(EmailSenderSettings).email_queue_url, sender.deliver, max_batches)


def _drain_queue(
    queue_url: str, deliver: Callable[[dict[str, Any]], BatchReport], max_batches: int
) -> BatchReport:
    """Receive batches and feed them to `deliver` as the SQS event source mapping would: records are
    deleted only when not reported as failures."""
    sqs = aws.sqs()
    total = BatchReport()
    for _ in range(max_batches):
        received = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = received.get("Messages", [])
        if not messages:
            break
        report = deliver({"Records": [record_from_message(dict(m)) for m in messages]})
        failed = set(report.failures)
        for m in messages:
            if m["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        total.add(report)
        if failed:
            break  # failed messages stay invisible until their visibility timeout, as in Lambda
    return total


def check_job(spec: JobSpec, api_key: str | None) -> Snapshot:
    """Poll one job once without tracking it (`jobwatch check`): no AWS needed."""
    settings = UpstreamSettings.from_env()

    async def once() -> Snapshot:
        async with HttpUpstream(settings, max_connections=1) as upstream:
            return await poll_spec(upstream, spec, api_key)

    return asyncio.run(once())


def discover_once() -> DiscoveryReport:
    """One discovery run over every watch (what the poller does at the start of a cycle)."""
    deps = poller_deps()

    async def once() -> DiscoveryReport:
        async with HttpUpstream(deps.settings, max_connections=8) as upstream:
            assert deps.watches is not None
            return await run_discovery(deps.store, deps.watches, upstream, deps.secrets, deps.settings, CLOCK)

    return asyncio.run(once())


def track_job(fields: Mapping[str, Any]) -> tuple[TrackedJob, bool]:
    """`jobwatch track` from Python: the API's own validation and store write."""
    resource, created = operations().track(parse_job_registration(fields), actor="local")
    job = operations().store.get_job(resource.key)
    assert job is not None
    return job, created


def list_jobs() -> list[TrackedJob]:
    return operations().store.all_jobs()


def show(key: str) -> JobResource | None:
    return operations().show(key)


def api_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The API function's handler with this process's operations (`jobwatch api serve`, tests)."""
    return api.handle(event, context, operations())
