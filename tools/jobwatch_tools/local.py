"""Local runs of the functions' code paths: one poll cycle, the notifier's queue drained as the SQS
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
from jobwatch.delivery.notifier import Notifier
from jobwatch.delivery.records import BatchReport, record_from_message
from jobwatch.domain.model import JobSpec, Snapshot, TrackedJob
from jobwatch.entrypoints import api, notifier, poller
from jobwatch.entrypoints.notifier import ChannelBook
from jobwatch.entrypoints.wiring import CLOCK, job_store, secret_resolver
from jobwatch.observability import metrics
from jobwatch.settings import ApiSettings, NotifierSettings, PollerSettings, UpstreamSettings, load_settings


class LocalSettings(PollerSettings, NotifierSettings, ApiSettings):  # type: ignore[misc]
    """Every function's settings at once: what `jobwatch local-stack` exports for a local run.

    (mypy sees `email_topic_arn` required in one base and optional in another: the notifier's
    required form wins, as the MRO says, and the local stack always exports it.)"""


@cache
def poller_deps() -> PollerDeps:
    return poller.wire(load_settings(PollerSettings))


@cache
def notifier_book() -> tuple[Notifier, ChannelBook]:
    built = notifier.wire(load_settings(NotifierSettings))
    assert isinstance(built.channels, ChannelBook)
    return built, built.channels


def notify() -> Notifier:
    return notifier_book()[0]


@cache
def operations() -> Operations:
    return api.wire(load_settings(ApiSettings))


def clear_caches() -> None:
    """Forget wiring built for a previous environment (tests and the demo switch stacks)."""
    if notifier_book.cache_info().currsize:
        notifier_book()[1].close()
    for cached in (poller_deps, notifier_book, operations, load_settings, secret_resolver):
        cached.cache_clear()


def poll_once() -> CycleReport:
    """One poll cycle through the poller function's code path."""
    return poller.run(poller_deps(), {}, None)


def drain_notify_queue(max_batches: int = 100) -> BatchReport:
    """Receive from the notifier's queue and feed batches through the notifier function's code path."""
    queue_url = load_settings(NotifierSettings).notify_queue_url
    return _drain_queue(queue_url, notify().deliver, max_batches)


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
    """The API function's handler with this process's operations (`jobwatch api serve`, tests).

    The Lambda flushes its metrics as EMF lines per invocation; locally they are dropped, never
    printed between an operator's lines."""
    try:
        return api.handle(event, context, operations())
    finally:
        metrics.clear_metrics()


def upgrade_table() -> tuple[int, int]:
    """Bring items an older jobwatch (or another shard layout) wrote up to date: the creation index
    key that `GET /jobs` pages through, and each active job's poll shard under this deployment's
    `JOBWATCH_POLL_SHARDS` (D44); idempotent. Returns (jobs indexed, jobs moved to another shard)."""
    store = job_store(load_settings(ApiSettings))
    return store.backfill_created_keys(), store.rebalance_poll_shards()
