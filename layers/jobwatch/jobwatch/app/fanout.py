"""One tick over K shards: polled here (small fleets), or ordered out to poll workers (D44).

The scheduled run is the coordinator. Without a shard queue it takes each shard's lease for its tick
and polls the shards it got, all in this invocation. With one, it queues one order per shard and keeps
the once-per-tick housekeeping (discovery, the outbox); each poll worker takes its shard's lease for
the order's tick and polls that shard only, with its share of each endpoint's limits. Leases make a
duplicated schedule, a redelivered order or a late order harmless: a shard is polled by one run per
tick. Every run stops taking work before the next tick (`run_cycle`), so cycles never overlap, and a
worker that dies loses nothing: what it wrote is in the outbox, what it did not poll the next tick does.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from jobwatch.app.poll_cycle import CycleReport, CycleScope, PollerDeps, run_cycle
from jobwatch.domain.cadence import tick_margin_s
from jobwatch.domain.shards import ShardLayout, layout_of
from jobwatch.observability import Metric, MetricUnit, logger, metrics

Remaining = Callable[[], float]


class ShardOrder(BaseModel):
    """One worker's order: poll `shard` of `shards` for the tick that started at `tick` (epoch s)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    tick: float = Field(ge=0, allow_inf_nan=False)
    shard: int = Field(ge=0)
    shards: int = Field(ge=1, le=1000)

    @model_validator(mode="after")
    def _shard_in_layout(self) -> ShardOrder:
        if self.shard >= self.shards:
            raise ValueError(f"shard {self.shard} is not one of {self.shards}")
        return self


class BadOrder(ValueError):
    """A queue message that is not a shard order (its text is kept short and never echoed whole)."""


def read_order(body: str) -> ShardOrder:
    try:
        return ShardOrder.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise BadOrder(f"not a shard order ({where}: {first['msg']})") from None


def _count(report: CycleReport) -> CycleReport:
    metrics.add_metric(name=Metric.SHARDS_POLLED, unit=MetricUnit.Count, value=report.shards_polled)
    metrics.add_metric(name=Metric.SHARDS_SKIPPED, unit=MetricUnit.Count, value=report.shards_skipped)
    return report


def _taken(deps: PollerDeps, shards: range, tick_s: float, holder: str) -> list[int]:
    leases = deps.leases
    if leases is None:
        return list(shards)
    return [shard for shard in shards if leases.take(shard, tick_s, holder)]


async def run_tick(
    deps: PollerDeps, remaining: Remaining, tick_s: float | None, next_tick_s: float, holder: str
) -> CycleReport:
    """The scheduled run. `tick_s` is the schedule's time for this run (None: a manual run, which
    takes no lease in the inline mode and orders the shards for now in fan-out)."""
    layout = layout_of(deps.settings)
    if deps.orders is not None:
        return await _coordinate(deps, remaining, deps.clock.now() if tick_s is None else tick_s, next_tick_s)
    every = range(layout.shards)
    taken = list(every) if tick_s is None else _taken(deps, every, tick_s, holder)
    report = await run_cycle(deps, remaining, next_tick_s, CycleScope(shards=taken))
    report.shards_polled, report.shards_skipped = len(taken), layout.shards - len(taken)
    if report.shards_skipped:
        logger.info(
            "another run holds this tick's shards; not polling them", extra={"skipped": report.shards_skipped}
        )
    return _count(report)


async def _coordinate(
    deps: PollerDeps, remaining: Remaining, tick_s: float, next_tick_s: float
) -> CycleReport:
    """Order every shard out, then do the housekeeping: workers start polling while it runs. Jobs
    that discovery tracks now are polled from the next tick on."""
    assert deps.orders is not None
    shards = deps.settings.poll_shards
    bodies = [
        ShardOrder(tick=tick_s, shard=shard, shards=shards).model_dump_json() for shard in range(shards)
    ]
    try:
        sent = deps.orders.send(bodies)
    except Exception:  # nothing polled this tick is polled the next: report it, do the housekeeping
        logger.exception("shard orders not sent; the shards are polled from the next tick")
        sent = 0
    report = await run_cycle(deps, remaining, next_tick_s, CycleScope(shards=[]))
    report.orders_sent = sent
    metrics.add_metric(name=Metric.SHARD_ORDERS_SENT, unit=MetricUnit.Count, value=sent)
    logger.info("shard orders sent", extra={"orders": sent, "shards": shards, "tick": tick_s})
    return report


def order_deadline_s(deps: PollerDeps, order: ShardOrder) -> float:
    """When the order's cycle stops taking work: the next tick less the margin (D39)."""
    settings = deps.settings
    return (
        order.tick
        + settings.poll_period_s
        - tick_margin_s(settings.upstream_deadline_s, settings.poll_period_s)
    )


async def run_order(deps: PollerDeps, order: ShardOrder, remaining: Remaining, holder: str) -> CycleReport:
    """A poll worker's run: one shard for one tick, if the tick is still on and no run has it."""
    fields = {"shard": order.shard, "shards": order.shards, "tick": order.tick}
    if deps.clock.now() >= order_deadline_s(deps, order):
        logger.info("shard order came after its cycle; the next tick polls the shard", extra=fields)
        return _count(CycleReport(shards_skipped=1))
    if deps.leases is not None and not deps.leases.take(order.shard, order.tick, holder):
        logger.info("another run holds this shard for this tick; not polling it", extra=fields)
        return _count(CycleReport(shards_skipped=1))
    share = ShardLayout(order.shards, deps.settings.endpoint_spread).sub_shards
    scope = CycleScope(shards=[order.shard], endpoint_share=share, housekeeping=False)
    report = await run_cycle(deps, remaining, order.tick + deps.settings.poll_period_s, scope)
    report.shards_polled = 1
    return _count(report)
