"""The poller function: read the Scheduler input, run one poll cycle."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from jobwatch.adapters import aws
from jobwatch.adapters.sns import SnsPublisher
from jobwatch.app.poll_cycle import CycleReport, PollerDeps, run_cycle
from jobwatch.entrypoints.wiring import _remaining, job_store, secret_resolver
from jobwatch.observability import logger
from jobwatch.settings import get_settings

if TYPE_CHECKING:  # the poller's cold start does not pay for the Slack side
    pass


class ScheduleInput(BaseModel):
    """The EventBridge Scheduler `Input` of the poll schedule (placeholders resolved by Scheduler)."""

    model_config = ConfigDict(extra="ignore")
    scheduledTime: str | None = None
    executionId: str | None = None


@cache
def poller_deps() -> PollerDeps:
    from jobwatch.adapters.dynamodb.watches import WatchStore

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
