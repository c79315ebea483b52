"""Entry points shared by the Lambda handlers and the CLI: wiring of settings to adapters.

Handlers and CLI commands call these functions and nothing deeper, so `jobwatch poll` and
`jobwatch deliver` exercise exactly the code the deployed functions run.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from jobwatch.adapters import aws
from jobwatch.adapters.publisher import SnsPublisher
from jobwatch.adapters.secrets import SecretResolver
from jobwatch.adapters.store import JobStore
from jobwatch.model import JobSpec, Snapshot, TrackedJob
from jobwatch.observability import logger
from jobwatch.poller import CycleReport, PollerDeps, make_http_client, poll_spec, run_cycle, utc_now_iso
from jobwatch.settings import Settings, get_settings

if TYPE_CHECKING:  # the poller's cold start does not pay for the Slack side
    from jobwatch.delivery import DeliveryDeps
    from jobwatch.email_delivery import EmailDeps
    from jobwatch.sqs_batch import BatchReport


class ScheduleInput(BaseModel):
    """The EventBridge Scheduler `Input` of the poll schedule (placeholders resolved by Scheduler)."""

    model_config = ConfigDict(extra="ignore")
    scheduledTime: str | None = None
    executionId: str | None = None


def _remaining(context: Any) -> Callable[[], float]:
    getter = getattr(context, "get_remaining_time_in_millis", None)
    if getter is None:
        return lambda: math.inf
    return lambda: float(getter()) / 1000.0


@cache
def secret_resolver() -> SecretResolver:
    return SecretResolver(aws.secretsmanager(), get_settings().secret_cache_s)


def job_store(settings: Settings) -> JobStore:
    return JobStore(aws.dynamodb(), settings.table, retention_days=settings.retention_days)


@cache
def poller_deps() -> PollerDeps:
    from jobwatch.adapters.watch_store import WatchStore

    settings = get_settings()
    return PollerDeps(
        settings=settings,
        store=job_store(settings),
        publisher=SnsPublisher(aws.sns(), settings.topic_arn),
        secrets=secret_resolver(),
        watches=WatchStore(aws.dynamodb(), settings.table),
    )


def handle_schedule(event: Mapping[str, Any] | None, context: Any) -> CycleReport:
    """One poll cycle, as run by the scheduled Lambda."""
    schedule = ScheduleInput.model_validate(event or {})
    logger.info(
        "poll cycle starting",
        extra={"scheduledTime": schedule.scheduledTime, "executionId": schedule.executionId},
    )
    return asyncio.run(run_cycle(poller_deps(), _remaining(context)))


@cache
def delivery_deps() -> DeliveryDeps:
    import httpx

    from jobwatch.delivery import DeliveryDeps

    settings = get_settings()
    return DeliveryDeps(
        settings=settings,
        store=job_store(settings),
        secrets=secret_resolver(),
        sqs=aws.sqs(),
        http=httpx.Client(timeout=httpx.Timeout(10.0, connect=3.0), follow_redirects=False),
    )


def handle_slack_batch(event: Mapping[str, Any], context: Any) -> BatchReport:
    """One SQS batch of transitions for Slack, as run by the Slack-sender Lambda."""
    from jobwatch.delivery import deliver_batch

    deps = delivery_deps()
    return deliver_batch(dict(event), deps, _remaining(context), deps.settings.slack_queue_url or None)


def drain_slack_queue(max_batches: int = 100) -> BatchReport:
    """Receive from the Slack queue and feed batches through the Lambda code path (local runs)."""
    from jobwatch.delivery import deliver_batch

    deps = delivery_deps()
    queue_url = deps.settings.slack_queue_url
    if not queue_url:
        raise RuntimeError(
            "JOBWATCH_SLACK_QUEUE_URL is not set (run `jobwatch local-stack` and eval its output)"
        )
    return _drain_queue(queue_url, lambda event: deliver_batch(event, deps, queue_url=queue_url), max_batches)


@cache
def email_deps() -> EmailDeps:
    from jobwatch.adapters.publisher import SnsEmailPublisher
    from jobwatch.email_delivery import EmailDeps

    settings = get_settings()
    return EmailDeps(
        store=job_store(settings),
        publisher=SnsEmailPublisher(aws.sns(), settings.email_topic_arn),
        sqs=aws.sqs(),
        dlq_url=settings.email_dlq_url,
    )


def handle_email_batch(event: Mapping[str, Any], context: Any) -> BatchReport:
    """One SQS batch of e-mail events, as run by the e-mail-sender Lambda."""
    from jobwatch.email_delivery import deliver_email_batch

    queue_url = get_settings().email_queue_url or None
    return deliver_email_batch(dict(event), email_deps(), queue_url, _remaining(context))


def drain_email_queue(max_batches: int = 100) -> BatchReport | None:
    """The e-mail queue's counterpart of `drain_slack_queue`; None when no e-mail queue is set."""
    from jobwatch.email_delivery import deliver_email_batch

    queue_url = get_settings().email_queue_url
    if not queue_url:
        return None
    deps = email_deps()
    return _drain_queue(queue_url, lambda event: deliver_email_batch(event, deps, queue_url), max_batches)


def _drain_queue(
    queue_url: str, deliver: Callable[[dict[str, Any]], BatchReport], max_batches: int
) -> BatchReport:
    """Receive batches and feed them to `deliver` as the SQS event source mapping would: records are
    deleted only when not reported as failures."""
    from jobwatch.sqs_batch import BatchReport, record_from_message

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
    """Poll one job once without tracking it (`jobwatch check`)."""
    settings = get_settings()

    async def once() -> Snapshot:
        async with make_http_client(settings, 1) as client:
            return await poll_spec(client, spec, api_key)

    return asyncio.run(once())


def track_job(fields: Mapping[str, Any]) -> tuple[TrackedJob, bool]:
    settings = get_settings()
    from jobwatch.registration import EndpointPolicy, build_spec  # not on the poller's cold path

    spec = build_spec(fields, EndpointPolicy.from_settings(settings))
    job, created = job_store(settings).add_job(spec, utc_now_iso())
    logger.info(
        "job tracked" if created else "job already tracked",
        extra={
            "jobKey": job.key,
            "jobId": spec.job_id,
            "source": spec.source,
            "secretName": spec.secret_name,
        },
    )
    return job, created


def list_jobs() -> list[TrackedJob]:
    return job_store(get_settings()).all_jobs()
