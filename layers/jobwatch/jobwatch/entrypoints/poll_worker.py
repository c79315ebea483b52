"""The poll worker: one SQS batch of shard orders (D44), each polled for its tick, failures reported
per message so SQS retries only those (and dead-letters what keeps failing)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from jobwatch.app.fanout import BadOrder, read_order, run_order
from jobwatch.app.poll_cycle import PollerDeps
from jobwatch.entrypoints.poller import holder_of, wire
from jobwatch.entrypoints.wiring import remaining
from jobwatch.observability import Metric, MetricUnit, logger, metrics
from jobwatch.settings import PollerSettings


def cold_start() -> PollerDeps:
    """The poller's settings and adapters; a worker never sends orders itself."""
    deps = wire(PollerSettings.from_env())
    deps.orders = None
    return deps


def run(deps: PollerDeps, event: Mapping[str, Any] | None, context: Any) -> dict[str, Any]:
    """Every order of the batch; returns the SQS partial-batch answer (only the key Lambda reads)."""
    failures: list[dict[str, str]] = []
    done: list[dict[str, Any]] = []
    for record in (event or {}).get("Records", []):
        message_id = str(record.get("messageId", ""))
        try:
            order = read_order(str(record.get("body", "")))
        except BadOrder as exc:
            logger.error(
                "queue message is not a shard order; left to the dead-letter queue",
                extra={"reason": str(exc)},
            )
            metrics.add_metric(name=Metric.BAD_SHARD_ORDERS, unit=MetricUnit.Count, value=1)
            failures.append({"itemIdentifier": message_id})
            continue
        try:
            report = asyncio.run(run_order(deps, order, remaining(context), holder_of(context)))
        except Exception:
            logger.exception("shard order failed; SQS delivers it again", extra={"shard": order.shard})
            failures.append({"itemIdentifier": message_id})
            continue
        done.append({"shard": order.shard, "tick": order.tick, **report.counts()})
    logger.info("shard orders done", extra={"orders": done, "failed": len(failures)})
    return {"batchItemFailures": failures}
