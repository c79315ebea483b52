"""Local runs of the functions' code paths: drain the sender queues as the SQS event source would,
poll one job once, track a job. Tools only: never in the Lambda layer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from jobwatch.adapters import aws
from jobwatch.adapters.http.client import make_http_client
from jobwatch.app.poll_cycle import poll_spec, utc_now_iso
from jobwatch.domain.model import JobSpec, Snapshot, TrackedJob
from jobwatch.entrypoints.email_sender import email_deps
from jobwatch.entrypoints.slack_sender import delivery_deps
from jobwatch.entrypoints.wiring import job_store
from jobwatch.observability import logger
from jobwatch.settings import get_settings

if TYPE_CHECKING:  # the poller's cold start does not pay for the Slack side
    from jobwatch.delivery.records import BatchReport


def drain_slack_queue(max_batches: int = 100) -> BatchReport:
    """Receive from the Slack queue and feed batches through the Lambda code path (local runs)."""
    from jobwatch.delivery.slack_sender import deliver_batch

    deps = delivery_deps()
    queue_url = deps.settings.slack_queue_url
    if not queue_url:
        raise RuntimeError(
            "JOBWATCH_SLACK_QUEUE_URL is not set (run `jobwatch local-stack` and eval its output)"
        )
    return _drain_queue(queue_url, lambda event: deliver_batch(event, deps, queue_url=queue_url), max_batches)


def drain_email_queue(max_batches: int = 100) -> BatchReport | None:
    """The e-mail queue's counterpart of `drain_slack_queue`; None when no e-mail queue is set."""
    from jobwatch.delivery.email_sender import deliver_email_batch

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
    from jobwatch.delivery.records import BatchReport, record_from_message

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
    from jobwatch.app.registration import build_spec
    from jobwatch.domain.endpoints import EndpointPolicy

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
