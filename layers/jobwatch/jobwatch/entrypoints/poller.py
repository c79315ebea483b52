"""The scheduled poller: read the Scheduler input, run this tick (D44), return its counts."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from jobwatch.adapters import aws
from jobwatch.adapters.dynamodb.leases import DynamoShardLeases
from jobwatch.adapters.http.upstream import HttpUpstream
from jobwatch.adapters.sns import SnsPublisher
from jobwatch.adapters.sqs import SqsShardOrders
from jobwatch.app.fanout import run_tick
from jobwatch.app.poll_cycle import CycleReport, PollerDeps
from jobwatch.domain.cadence import next_tick
from jobwatch.domain.humanize import parse_timestamp
from jobwatch.entrypoints.wiring import CLOCK, job_store, remaining, secret_resolver, watch_store
from jobwatch.observability import logger
from jobwatch.settings import PollerSettings


class ScheduleInput(BaseModel):
    """The EventBridge Scheduler `Input` of the poll schedule (placeholders resolved by Scheduler)."""

    model_config = ConfigDict(extra="ignore")
    scheduledTime: str | None = None
    executionId: str | None = None

    def scheduled_epoch(self) -> float | None:
        """The tick this run belongs to; None when absent or not a timestamp (a manual invocation, or
        a placeholder Scheduler did not resolve)."""
        parsed = parse_timestamp(self.scheduledTime)
        return None if parsed is None else parsed.timestamp()


def wire(settings: PollerSettings) -> PollerDeps:
    """The poller's adapters; the poll workers run on the same ones (one queue, no orders to send)."""
    return PollerDeps(
        settings=settings,
        store=job_store(settings),
        publisher=SnsPublisher(aws.sns(), settings.topic_arn),
        secrets=secret_resolver(settings.secret_cache_s),
        upstream=lambda: HttpUpstream(settings, settings.poll_concurrency),
        clock=CLOCK,
        watches=watch_store(settings),
        leases=DynamoShardLeases(aws.dynamodb(), settings.table),
        orders=SqsShardOrders(aws.sqs(), settings.shard_queue_url) if settings.shard_queue_url else None,
    )


def cold_start() -> PollerDeps:
    """Settings and adapters for this process; a missing variable stops here with one line."""
    return wire(PollerSettings.from_env())


def holder_of(context: Any) -> str:
    """Who holds a lease: the invocation's request id (the process id outside Lambda)."""
    return str(getattr(context, "aws_request_id", "") or f"local-{os.getpid()}")


def run(deps: PollerDeps, event: Mapping[str, Any] | None, context: Any) -> CycleReport:
    """This tick, as the scheduled Lambda runs it."""
    schedule = ScheduleInput.model_validate(event or {})
    logger.info(
        "poll cycle starting",
        extra={"scheduledTime": schedule.scheduledTime, "executionId": schedule.executionId},
    )
    tick_s = schedule.scheduled_epoch()
    following = next_tick(deps.clock.now(), tick_s, deps.settings.poll_period_s)
    return asyncio.run(run_tick(deps, remaining(context), tick_s, following, holder_of(context)))
