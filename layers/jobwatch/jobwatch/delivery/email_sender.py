"""E-mail delivery: each routed transition reaches the alert e-mail topic once.

The transitions topic delivers at least once (the outbox republishes a transition whose first publish
may already have gone out), and an SNS e-mail subscription cannot dedupe. So e-mail is fed like
Slack: the topic's e-mail events (filtered on `event`) land on a queue, and this sender claims
(email, transitionId) in DynamoDB before publishing the rendered text to the e-mail-only topic. A
redelivered or republished transition finds the claim settled and is skipped.

A failed publish gives the claim back and hands the record to SQS again with a growing visibility
(30 s doubling to 900 s); the queue's redrive policy dead-letters it after its receives are spent
(alarm). A record that cannot be read goes to the dead-letter queue at once, with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from jobwatch.adapters.dynamodb.jobs import JobStore
from jobwatch.delivery.envelope import transition_from_sqs_body
from jobwatch.delivery.records import BatchReport, send_to_dead_letter_queue
from jobwatch.domain.model import Transition
from jobwatch.observability import MetricUnit, logger, metrics

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

CHANNEL = "email"
CLAIM_LEASE_S = 60.0
"""Longer than one publish can take; a sender that died holding a claim gives way after this."""
RETRY_BASE_S = 30.0
MAX_VISIBILITY_S = 900


class EmailPublisher(Protocol):
    def publish_email(self, transition: Transition) -> str: ...


@dataclass
class EmailDeps:
    store: JobStore
    publisher: EmailPublisher
    sqs: SQSClient
    dlq_url: str = ""


def retry_visibility_s(receive_count: int) -> int:
    """Visibility after the `receive_count`-th failed try: 30 s doubling, capped at 900 s."""
    return int(min(MAX_VISIBILITY_S, RETRY_BASE_S * 2 ** max(0, min(receive_count - 1, 10))))


class _EmailBatch:
    def __init__(self, deps: EmailDeps, queue_url: str | None) -> None:
        self.deps = deps
        self.queue_url = queue_url
        self.report = BatchReport()

    def retry_later(self, record: dict[str, Any], transition: Transition, reason: str) -> None:
        """Give the claim back and let SQS offer the record again after a growing delay."""
        self.deps.store.release_delivery(CHANNEL, transition.transition_id)
        self.report.retried += 1
        self.report.failures.append(record["messageId"])
        receives = _receive_count(record)
        delay = retry_visibility_s(receives)
        logger.warning(
            "e-mail publish failed; will retry",
            extra={
                "jobKey": transition.job_key,
                "transitionId": transition.transition_id,
                "reason": reason,
                "receiveCount": receives,
                "delayS": delay,
            },
        )
        if self.queue_url and record.get("receiptHandle"):
            try:
                self.deps.sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=delay
                )
            except Exception as exc:  # the queue's own visibility timeout applies instead
                logger.warning("could not stretch the visibility", extra={"error": str(exc)})

    def dead_letter(self, record: dict[str, Any], reason: str) -> None:
        self.report.dead_lettered += 1
        metrics.add_metric(name="EmailDeadLettered", unit=MetricUnit.Count, value=1)
        logger.error(
            "e-mail event dead-lettered", extra={"messageId": record.get("messageId"), "reason": reason}
        )
        send_to_dead_letter_queue(self.deps.sqs, self.deps.dlq_url, record.get("body", ""), reason)

    def handle(self, record: dict[str, Any]) -> None:
        try:
            transition = transition_from_sqs_body(record.get("body", ""))
        except ValueError as exc:
            self.dead_letter(record, f"unreadable: {exc}")
            return
        tid = transition.transition_id
        fields = {"jobKey": transition.job_key, "jobId": transition.job_id, "transitionId": tid}
        claim = self.deps.store.claim_delivery(CHANNEL, tid, CLAIM_LEASE_S)
        if claim == "done":
            self.report.duplicates += 1
            metrics.add_metric(name="EmailDuplicatesSkipped", unit=MetricUnit.Count, value=1)
            logger.info("e-mail already sent; duplicate skipped", extra=fields)
            return
        if claim == "busy":  # another sender is publishing it right now: look again later
            self.report.failures.append(record["messageId"])
            self.report.retried += 1
            return
        try:
            self.deps.publisher.publish_email(transition)
        except Exception as exc:
            self.retry_later(record, transition, repr(exc)[:300])
            return
        self.deps.store.finish_delivery(CHANNEL, tid, "DELIVERED")
        self.report.delivered += 1
        metrics.add_metric(name="EmailDelivered", unit=MetricUnit.Count, value=1)
        logger.info("e-mail published", extra=fields)


def _receive_count(record: dict[str, Any]) -> int:
    try:
        return max(1, int((record.get("attributes") or {}).get("ApproximateReceiveCount", 1)))
    except (TypeError, ValueError):
        return 1


def deliver_email_batch(
    event: dict[str, Any],
    deps: EmailDeps,
    queue_url: str | None = None,
    remaining_s: Callable[[], float] = lambda: math.inf,
) -> BatchReport:
    """Process one SQS batch; `report.response()` is what the Lambda handler returns."""
    batch = _EmailBatch(deps, queue_url)
    for record in event.get("Records", []):
        if remaining_s() < 3:  # not enough time to publish and record it: SQS offers it again
            batch.report.failures.append(record["messageId"])
            continue
        try:
            batch.handle(record)
        except Exception:  # one bad record must not fail the others
            logger.exception("unexpected error sending e-mail", extra={"messageId": record.get("messageId")})
            batch.report.failures.append(record["messageId"])
    return batch.report
