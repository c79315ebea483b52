"""Slack delivery: drains the SQS queue fed by the transitions topic, one post per transition.

Delivery never touches the poll cycle. Each transition is claimed in DynamoDB before posting
(dedupe by transitionId), so an SQS redelivery or a duplicated publish never shows twice.
429 is honoured (short waits in process, longer ones through SQS visibility); 400/403/404/410
are permanent: dead-lettered once with the reason, never retried in a storm.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from jobwatch.adapters.secrets import SecretUnavailableError
from jobwatch.adapters.store import JobStore
from jobwatch.channels.slack import SlackChannel, validate_payload
from jobwatch.messages import transition_from_sqs_body
from jobwatch.observability import MetricUnit, logger, metrics
from jobwatch.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

CHANNEL = "slack"
PERMANENT_STATUSES = frozenset({400, 403, 404, 410})
CLAIM_LEASE_S = 120.0


class Secrets(Protocol):
    def get(self, name: str) -> str: ...


@dataclass(frozen=True, slots=True)
class PostResult:
    status: int | None
    """None when the request never got an HTTP answer."""
    body: str
    retry_after_s: float | None = None


def post_json(client: httpx.Client, url: str, payload: dict[str, Any]) -> PostResult:
    try:
        response = client.post(url, json=payload)
    except httpx.HTTPError as exc:
        return PostResult(None, f"{type(exc).__name__}: {exc}")
    retry_after: float | None = None
    header = response.headers.get("retry-after")
    if header is not None:
        try:
            retry_after = max(0.0, float(header))
        except ValueError:
            retry_after = None
    return PostResult(response.status_code, response.text[:200], retry_after)


@dataclass
class DeliveryDeps:
    settings: Settings
    store: JobStore
    secrets: Secrets
    sqs: SQSClient
    http: httpx.Client
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic


@dataclass
class BatchReport:
    delivered: int = 0
    duplicates: int = 0
    retried: int = 0
    dead_lettered: int = 0
    failures: list[str] = field(default_factory=list)

    def response(self) -> dict[str, Any]:
        """The partial-batch-failure answer Lambda's SQS integration expects."""
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in self.failures]}


class _Batch:
    def __init__(self, deps: DeliveryDeps, remaining_s: Callable[[], float], queue_url: str | None) -> None:
        self.deps = deps
        self.remaining_s = remaining_s
        self.queue_url = queue_url
        self.channel = SlackChannel()
        self.report = BatchReport()
        self.webhook: str | None = None
        self.last_post_at: float | None = None
        self.throttled = False
        self.held_jobs: set[str] = set()
        self.job_of: dict[str, str] = {}
        """messageId -> jobKey of the records in this batch."""

    def dead_letter(self, body: str, reason: str) -> None:
        self.report.dead_lettered += 1
        metrics.add_metric(name="SlackPermanentFailures", unit=MetricUnit.Count, value=1)
        dlq = self.deps.settings.slack_dlq_url
        if dlq:
            self.deps.sqs.send_message(
                QueueUrl=dlq,
                MessageBody=body,
                MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:256]}},
            )

    def retry_later(self, record: dict[str, Any], transition_id: str | None, delay_s: float | None) -> None:
        self.report.retried += 1
        self.report.failures.append(record["messageId"])
        job_key = self.job_of.get(record.get("messageId", ""))
        if job_key is not None:
            self.held_jobs.add(job_key)  # its later transitions wait too: Slack shows them in order
        if transition_id is not None:
            self.deps.store.release_delivery(CHANNEL, transition_id)
        if delay_s is not None and self.queue_url and record.get("receiptHandle"):
            self.deps.sqs.change_message_visibility(
                QueueUrl=self.queue_url,
                ReceiptHandle=record["receiptHandle"],
                VisibilityTimeout=min(43200, max(1, math.ceil(delay_s))),
            )

    def pace(self) -> None:
        interval = self.deps.settings.slack_min_interval_s
        if self.last_post_at is not None and interval > 0:
            wait = self.last_post_at + interval - self.deps.monotonic()
            if wait > 0:
                self.deps.sleep(wait)

    def handle(self, record: dict[str, Any]) -> None:
        if self.throttled or self.remaining_s() < 5:
            self.retry_later(record, None, None)
            return
        body = record.get("body", "")
        try:
            transition = transition_from_sqs_body(body)
        except ValueError as exc:
            logger.error(
                "unreadable message dead-lettered",
                extra={"messageId": record.get("messageId"), "error": str(exc)},
            )
            self.dead_letter(body, f"unreadable: {exc}")
            return
        tid = transition.transition_id
        fields = {"jobKey": transition.job_key, "jobId": transition.job_id, "transitionId": tid}
        if transition.job_key in self.held_jobs:
            logger.info("an earlier transition of this job is being retried; waiting", extra=fields)
            self.retry_later(record, None, None)
            return
        claim = self.deps.store.claim_delivery(CHANNEL, tid, CLAIM_LEASE_S)
        if claim == "done":
            self.report.duplicates += 1
            metrics.add_metric(name="SlackDuplicatesSkipped", unit=MetricUnit.Count, value=1)
            logger.info("already delivered; duplicate skipped", extra=fields)
            return
        if claim == "busy":
            self.retry_later(record, None, 30)
            return
        payload = self.channel.render(transition)
        problems = validate_payload(payload)
        if problems:
            logger.error("rendered payload breaks Slack limits", extra={**fields, "problems": problems})
            self.deps.store.finish_delivery(CHANNEL, tid, "FAILED_PERMANENT", "; ".join(problems))
            self.dead_letter(body, "invalid payload: " + "; ".join(problems))
            return
        try:
            webhook = self.webhook or self.deps.secrets.get(self.deps.settings.slack_webhook_secret)
        except SecretUnavailableError as exc:
            logger.error("Slack webhook secret unavailable", extra={**fields, "error": str(exc)})
            self.retry_later(record, tid, 60)
            self.throttled = True
            return
        self.webhook = webhook
        self.post(record, body, payload, fields)

    def post(
        self, record: dict[str, Any], body: str, payload: dict[str, Any], fields: dict[str, str]
    ) -> None:
        tid = fields["transitionId"]
        for attempt in range(2):
            self.pace()
            result = post_json(self.deps.http, self.webhook or "", payload)
            self.last_post_at = self.deps.monotonic()
            if result.status is not None and 200 <= result.status < 300:
                self.deps.store.finish_delivery(CHANNEL, tid, "DELIVERED")
                self.report.delivered += 1
                metrics.add_metric(name="SlackDelivered", unit=MetricUnit.Count, value=1)
                logger.info("posted to Slack", extra=fields)
                return
            if result.status == 429:
                wait = result.retry_after_s if result.retry_after_s is not None else 1.0
                can_wait = (
                    wait <= self.deps.settings.slack_max_retry_after_s and self.remaining_s() > wait + 10
                )
                if attempt == 0 and can_wait:
                    logger.info("Slack rate limit; waiting", extra={**fields, "retryAfterS": wait})
                    self.deps.sleep(wait)
                    continue
                logger.warning(
                    "Slack rate limit; retrying through the queue", extra={**fields, "retryAfterS": wait}
                )
                self.throttled = True
                self.retry_later(record, tid, wait)
                return
            if result.status in PERMANENT_STATUSES:
                reason = f"HTTP {result.status}: {result.body}"
                logger.error(
                    "Slack refused the message permanently; dead-lettered", extra={**fields, "reason": reason}
                )
                self.deps.store.finish_delivery(CHANNEL, tid, "FAILED_PERMANENT", reason)
                self.dead_letter(body, reason)
                return
            status = "no answer" if result.status is None else f"HTTP {result.status}"
            logger.warning(
                "Slack post failed; will retry", extra={**fields, "reason": f"{status}: {result.body}"}
            )
            self.retry_later(record, tid, None)
            return


def _in_job_order(records: list[dict[str, Any]], job_of: dict[str, str]) -> list[dict[str, Any]]:
    """A standard queue may hand a job's transitions over in any order: put them back in order.

    Records are sorted by (jobKey, transition version); unreadable ones keep their place at the end.
    """
    keyed: list[tuple[tuple[str, tuple[int, ...]], int, dict[str, Any]]] = []
    for position, record in enumerate(records):
        try:
            transition = transition_from_sqs_body(record.get("body", ""))
        except ValueError:
            keyed.append((("\uffff", ()), position, record))
            continue
        job_of[record.get("messageId", "")] = transition.job_key
        suffix = transition.transition_id.rsplit("#", 1)[-1]
        version = tuple(int(part) for part in suffix.split(".") if part.isdigit())
        keyed.append(((transition.job_key, version), position, record))
    keyed.sort(key=lambda item: (item[0], item[1]))
    return [record for _, _, record in keyed]


def deliver_batch(
    event: dict[str, Any],
    deps: DeliveryDeps,
    remaining_s: Callable[[], float] = lambda: math.inf,
    queue_url: str | None = None,
) -> BatchReport:
    """Process one SQS batch; `report.response()` is what the Lambda handler returns."""
    batch = _Batch(deps, remaining_s, queue_url)
    for record in _in_job_order(event.get("Records", []), batch.job_of):
        try:
            batch.handle(record)
        except Exception:  # one bad record must not fail the others
            logger.exception(
                "unexpected error delivering record", extra={"messageId": record.get("messageId")}
            )
            batch.report.failures.append(record["messageId"])
    return batch.report
