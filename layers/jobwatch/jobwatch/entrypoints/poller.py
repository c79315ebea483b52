"""The poller function: read the Scheduler input, run one poll cycle, return its counts."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from jobwatch.adapters import aws
from jobwatch.adapters.http.upstream import HttpUpstream
from jobwatch.adapters.sns import SnsPublisher
from jobwatch.app.poll_cycle import CycleReport, PollerDeps, run_cycle
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
    return PollerDeps(
        settings=settings,
        store=job_store(settings),
        publisher=SnsPublisher(aws.sns(), settings.topic_arn),
        secrets=secret_resolver(settings.secret_cache_s),
        upstream=lambda: HttpUpstream(settings, settings.poll_concurrency),
        clock=CLOCK,
        watches=watch_store(settings),
    )


def cold_start() -> PollerDeps:
    """Settings and adapters for this process; a missing variable stops here with one line."""
    return wire(PollerSettings.from_env())


def run(deps: PollerDeps, event: Mapping[str, Any] | None, context: Any) -> CycleReport:
    """One poll cycle, as the scheduled Lambda runs it."""
    schedule = ScheduleInput.model_validate(event or {})
    logger.info(
        "poll cycle starting",
        extra={"scheduledTime": schedule.scheduledTime, "executionId": schedule.executionId},
    )
    tick = next_tick(deps.clock.now(), schedule.scheduled_epoch(), deps.settings.poll_period_s)
    return asyncio.run(run_cycle(deps, remaining(context), next_tick_s=tick))
