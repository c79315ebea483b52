"""The notifier: one SQS batch of transitions, each routed to its destinations, each destination
through the one engine (claims, order, retries, dead-letters per destination).

A record that is an original message (from the transitions topic) is routed — once, recorded — and
handed to the engine of every destination it goes to; a record that is a delayed copy names its one
destination (`jobwatchDestination`), so a retry or a wait goes only there. A destination's engine
keeps its own pace, order and pauses: a rate-limited Slack channel defers its own deliveries and
never holds back an EventBridge bus in the same batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from jobwatch.channels.base import Channel, Notice
from jobwatch.delivery.engine import DeliveryDeps, _Batch, in_job_order
from jobwatch.delivery.envelope import transition_from_sqs_body
from jobwatch.delivery.records import BatchReport, string_attribute
from jobwatch.domain.model import Transition
from jobwatch.domain.routing import AnyDestination, Delivery
from jobwatch.observability import Metric, MetricUnit, logger, metrics

DESTINATION_ATTRIBUTE = "jobwatchDestination"


class Routing(Protocol):
    """Where transitions go (app.routing.RoutingRecord)."""

    def deliveries_of(self, transition: Transition) -> list[Delivery]: ...

    def delivery_to(self, transition: Transition, destination_id: str) -> Delivery | None: ...

    def predecessor_here(self, previous: str, destination_id: str) -> str | None: ...


class Channels(Protocol):
    """The channel of a destination (built once per destination and process)."""

    def channel(self, destination: AnyDestination) -> Channel: ...


@dataclass
class Notifier:
    routing: Routing
    channels: Channels
    deps: DeliveryDeps
    """Ledger, queue and clock shared by every destination (`predecessor_here` and `copy_attributes` are
    set here from the routing)."""

    def __post_init__(self) -> None:
        self.deps.predecessor_here = self.routing.predecessor_here
        self.deps.copy_attributes = lambda destination_id: {DESTINATION_ATTRIBUTE: destination_id}

    def deliver(
        self, event: dict[str, Any], remaining_s: Callable[[], float] = lambda: math.inf
    ) -> BatchReport:
        return _NotifyBatch(self, remaining_s).run(list(event.get("Records", [])))


class _NotifyBatch:
    def __init__(self, notifier: Notifier, remaining_s: Callable[[], float]) -> None:
        self.notifier = notifier
        self.remaining_s = remaining_s
        self.batches: dict[str, _Batch] = {}
        self.job_of: dict[str, str] = {}
        self.report = BatchReport()

    def batch_for(self, delivery: Delivery) -> _Batch:
        batch = self.batches.get(delivery.destination_id)
        if batch is None:
            channel = self.notifier.channels.channel(delivery.destination)
            batch = self.batches[delivery.destination_id] = _Batch(
                channel, self.notifier.deps, self.remaining_s
            )
            batch.job_of = self.job_of
        return batch

    def deliveries(self, record: dict[str, Any], transition: Transition) -> list[Delivery]:
        destination_id = string_attribute(record, DESTINATION_ATTRIBUTE)
        if destination_id is None:
            return self.notifier.routing.deliveries_of(transition)
        delivery = self.notifier.routing.delivery_to(transition, destination_id)
        if delivery is None:
            logger.warning(
                "a delayed copy names a destination its transition was never routed to; dropped",
                extra={"transitionId": transition.transition_id, "destination": destination_id},
            )
            return []
        return [delivery]

    def handle(self, record: dict[str, Any]) -> None:
        body = record.get("body", "")
        try:
            transition = transition_from_sqs_body(body)
        except ValueError as exc:
            logger.error(
                "unreadable message dead-lettered",
                extra={"messageId": record.get("messageId"), "error": str(exc)},
            )
            self.report.dead_lettered += 1
            metrics.add_metric(name=Metric.UNREADABLE_NOTICES, unit=MetricUnit.Count, value=1)
            self.notifier.deps.queue.dead_letter(body, f"unreadable: {exc}")
            return
        for delivery in self.deliveries(record, transition):
            notice = Notice(transition, tuple(delivery.mentions), tuple(delivery.routes))
            self.batch_for(delivery).handle_notice(record, notice)

    def run(self, records: list[dict[str, Any]]) -> BatchReport:
        for record in in_job_order(records, self.job_of):
            try:
                self.handle(record)
            except Exception:  # one bad record must not fail the others
                logger.exception(
                    "unexpected error delivering record", extra={"messageId": record.get("messageId")}
                )
                self.report.failures.append(record["messageId"])
        for batch in self.batches.values():
            self.report.add(batch.report)
        self.report.failures = list(dict.fromkeys(self.report.failures))
        return self.report
