"""Slack delivery: drains the SQS queue fed by the transitions topic, one post per transition.

Delivery never touches the poll cycle. Each transition is claimed in DynamoDB before posting
(dedupe by transitionId), so an SQS redelivery or a duplicated publish never shows twice.
429 is honoured (short waits in process, longer ones by deferring); 5xx, timeouts and lost answers
are retried with exponential backoff up to `slack_max_attempts`, then dead-lettered with the reason;
400/403/404/410 are permanent: dead-lettered once with the reason, never retried in a storm.

Per-job order: a transition is posted only after the one it names as `previousTransitionId` has
been posted (or refused for good, or never left the outbox). Until then it is *deferred*: a copy
goes back on the queue with DelaySeconds and the original is acknowledged, so waiting spends none
of the receives the redrive policy counts. The wait is bounded (`slack_order_wait_s`, longer than a
predecessor can stay on the queue before redrive), so a predecessor lost in the dead-letter queue
holds its job back for that long at most.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from jobwatch.adapters.dynamodb.jobs import JobStore
from jobwatch.adapters.secrets import SecretUnavailableError
from jobwatch.channels.slack_webhook import SlackChannel
from jobwatch.delivery.envelope import transition_from_sqs_body
from jobwatch.delivery.records import BatchReport, send_to_dead_letter_queue
from jobwatch.domain.model import Transition
from jobwatch.observability import MetricUnit, logger, metrics
from jobwatch.ports import Secrets
from jobwatch.render.slack_blocks import validate_payload
from jobwatch.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

CHANNEL = "slack"
PERMANENT_STATUSES = frozenset({400, 403, 404, 410})
CLAIM_LEASE_S = 120.0
SETTLED_CLAIMS = frozenset({"DELIVERED", "FAILED_PERMANENT"})
DEFERRALS_ATTRIBUTE = "jobwatchDeferrals"
WAITING_SINCE_ATTRIBUTE = "jobwatchWaitingSince"
COPY_TOKEN_ATTRIBUTE = "jobwatchCopy"
ATTEMPTS_ATTRIBUTE = "jobwatchAttempts"
WAIT_LEASE_MARGIN_S = 300.0
"""How long after its delay a deferred copy still stands for its transition if it has not come back."""
MAX_DEFERRALS = 500
"""A message deferred this often is handed back to SQS instead, where maxReceiveCount bounds it."""
MAX_ORDER_HOLD_S = 60
SQS_MAX_DELAY_S = 900


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
    clock: Callable[[], float] = time.time
    """Wall-clock seconds; bounds how long a transition waits for its predecessor."""


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
        """Jobs with a transition in this batch that did not go out: their later ones wait."""
        self.settled: set[str] = set()
        """Transition ids delivered (or found already delivered) in this batch."""
        self.job_of: dict[str, str] = {}
        """messageId -> jobKey of the records in this batch."""
        self.throttle_delay_s = 1.0

    def dead_letter(self, body: str, reason: str) -> None:
        self.report.dead_lettered += 1
        metrics.add_metric(name="SlackPermanentFailures", unit=MetricUnit.Count, value=1)
        send_to_dead_letter_queue(self.deps.sqs, self.deps.settings.slack_dlq_url, body, reason)

    def retry_later(self, record: dict[str, Any], transition_id: str | None, delay_s: float | None) -> None:
        """Hand the record back to SQS (a batch-item failure): it spends one of its receives."""
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

    def defer(
        self,
        record: dict[str, Any],
        transition: Transition,
        delay_s: float,
        *,
        waiting_since: float | None = None,
        attempts: int | None = None,
    ) -> None:
        """Put a copy back on the queue for later and let the original be deleted.

        Unlike a batch-item failure this spends no receive, so waiting (for order, for Slack's rate
        limit, for another worker's claim) can never push a message into the dead-letter queue.
        One copy stands for the transition at a time (a lease in the store, written only after its
        copy was sent): a duplicate of the message, or a surplus copy, is dropped instead of being
        deferred again, so SQS's at-least-once delivery cannot multiply the waiting copies.
        """
        self.held_jobs.add(transition.job_key)
        tid = transition.transition_id
        deferrals = _number_attribute(record, DEFERRALS_ATTRIBUTE) or 0
        if not self.queue_url or deferrals >= MAX_DEFERRALS:
            self.retry_later(record, None, delay_s)
            return
        now = self.deps.clock()
        mine = _string_attribute(record, COPY_TOKEN_ATTRIBUTE)
        standing = self.deps.store.waiting_copy(CHANNEL, tid, now)
        if standing is not None and standing != mine:
            self.report.collapsed += 1
            logger.info(
                "another copy of this transition is waiting already; dropped", extra={"transitionId": tid}
            )
            return
        token = uuid.uuid4().hex
        delay = min(SQS_MAX_DELAY_S, max(1, math.ceil(delay_s)))
        attributes: dict[str, MessageAttributeValueTypeDef] = {
            DEFERRALS_ATTRIBUTE: {"DataType": "Number", "StringValue": str(int(deferrals) + 1)},
            COPY_TOKEN_ATTRIBUTE: {"DataType": "String", "StringValue": token},
        }
        attempts = int(_number_attribute(record, ATTEMPTS_ATTRIBUTE) or 0) if attempts is None else attempts
        if attempts:
            attributes[ATTEMPTS_ATTRIBUTE] = {"DataType": "Number", "StringValue": str(attempts)}
        if waiting_since is not None:
            attributes[WAITING_SINCE_ATTRIBUTE] = {
                "DataType": "Number",
                "StringValue": f"{waiting_since:.3f}",
            }
        try:
            self.deps.sqs.send_message(
                QueueUrl=self.queue_url,
                MessageBody=record.get("body", ""),
                DelaySeconds=delay,
                MessageAttributes=attributes,
            )
        except Exception as exc:  # SQS refused the copy: fall back to visibility, nothing is lost
            logger.warning("could not defer; retrying through visibility", extra={"error": str(exc)})
            self.retry_later(record, None, delay_s)
            return
        # Written only now that the copy exists: whoever sees this lease may drop its own copy.
        self.deps.store.hand_wait_to(CHANNEL, tid, token, mine, now, delay + WAIT_LEASE_MARGIN_S)
        self.report.deferred += 1
        metrics.add_metric(name="SlackDeferred", unit=MetricUnit.Count, value=1)

    def waits_for_predecessor(self, record: dict[str, Any], transition: Transition) -> bool:
        """True when the job's previous transition may still reach Slack: this one is deferred.

        The wait is unbounded while the predecessor is visibly in hand (a live claim, a standing
        deferred copy, or still owed by the outbox), however long its own retries or waits take;
        `slack_order_wait_s` bounds only the time it has been out of sight (an original not yet
        received, or retried by SQS after a crash), so a predecessor lost there cannot hold its
        job forever.
        """
        previous = transition.previous_transition_id
        settings = self.deps.settings
        if previous is None or previous in self.settled or settings.slack_order_wait_s <= 0:
            return False
        fields = {
            "jobKey": transition.job_key,
            "transitionId": transition.transition_id,
            "waitingFor": previous,
        }
        now = self.deps.clock()
        store = self.deps.store
        in_hand = transition.job_key in self.held_jobs  # deferred a moment ago in this very batch
        if not in_hand:
            claim = store.delivery_state(CHANNEL, previous, now)
            if claim in SETTLED_CLAIMS:
                return False
            standing = None
            if claim is None:
                standing = store.transition_standing(previous)
                if standing in (None, "DEAD_LETTERED"):
                    return False  # it never went to SNS (dead-lettered at the outbox) or is unknown
            in_hand = (
                claim == "IN_PROGRESS"
                or standing == "OWED"
                or store.waiting_copy(CHANNEL, previous, now) is not None
            )
        since = now if in_hand else (_number_attribute(record, WAITING_SINCE_ATTRIBUTE) or now)
        if now - since >= settings.slack_order_wait_s:
            self.report.order_waits_expired += 1
            metrics.add_metric(name="SlackOrderWaitExpired", unit=MetricUnit.Count, value=1)
            logger.warning("predecessor out of sight too long; posting out of order", extra=fields)
            return False
        holds = int(_number_attribute(record, DEFERRALS_ATTRIBUTE) or 0)
        delay = min(MAX_ORDER_HOLD_S, settings.slack_order_retry_s * 2 ** min(holds, 10))
        logger.info("waiting for the job's previous transition", extra={**fields, "delayS": delay})
        self.defer(record, transition, delay, waiting_since=since)
        return True

    def pace(self) -> None:
        interval = self.deps.settings.slack_min_interval_s
        if self.last_post_at is not None and interval > 0:
            wait = self.last_post_at + interval - self.deps.monotonic()
            if wait > 0:
                self.deps.sleep(wait)

    def handle(self, record: dict[str, Any]) -> None:
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
        if self.throttled:
            self.defer(record, transition, self.throttle_delay_s)
            return
        if self.remaining_s() < 5:
            self.defer(record, transition, 1)
            return
        tid = transition.transition_id
        fields = {"jobKey": transition.job_key, "jobId": transition.job_id, "transitionId": tid}
        if self.waits_for_predecessor(record, transition):
            return
        claim = self.deps.store.claim_delivery(CHANNEL, tid, CLAIM_LEASE_S)
        if claim == "done":
            self.settled.add(tid)
            self.report.duplicates += 1
            metrics.add_metric(name="SlackDuplicatesSkipped", unit=MetricUnit.Count, value=1)
            logger.info("already delivered; duplicate skipped", extra=fields)
            return
        if claim == "busy":
            self.defer(record, transition, 30)  # another worker is posting it: look again later
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
            self.throttled = True
            self.throttle_delay_s = 60.0
            self.failed_attempt(record, transition, f"webhook secret unavailable: {exc}")
            return
        self.webhook = webhook
        self.post(record, transition, payload, fields)

    def post(
        self, record: dict[str, Any], transition: Transition, payload: dict[str, Any], fields: dict[str, str]
    ) -> None:
        body = record.get("body", "")
        tid = fields["transitionId"]
        for attempt in range(2):
            self.pace()
            result = post_json(self.deps.http, self.webhook or "", payload)
            self.last_post_at = self.deps.monotonic()
            if result.status is not None and 200 <= result.status < 300:
                self.deps.store.finish_delivery(CHANNEL, tid, "DELIVERED")
                self.settled.add(tid)
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
                    "Slack rate limit; deferring the rest of the batch", extra={**fields, "retryAfterS": wait}
                )
                self.throttled = True
                self.throttle_delay_s = max(1.0, wait)
                self.deps.store.release_delivery(CHANNEL, tid)
                self.defer(record, transition, self.throttle_delay_s)
                return
            if result.status in PERMANENT_STATUSES:
                reason = f"HTTP {result.status}: {result.body}"
                logger.error(
                    "Slack refused the message permanently; dead-lettered", extra={**fields, "reason": reason}
                )
                self.deps.store.finish_delivery(CHANNEL, tid, "FAILED_PERMANENT", reason)
                self.settled.add(tid)
                self.dead_letter(body, reason)
                return
            status = "no answer" if result.status is None else f"HTTP {result.status}"
            self.failed_attempt(record, transition, f"{status}: {result.body}")
            return

    def failed_attempt(self, record: dict[str, Any], transition: Transition, reason: str) -> None:
        """A post that may succeed later: try again after a growing delay, up to the attempt cap.

        Retries are deferred copies rather than batch-item failures, so they are counted here
        (`jobwatchAttempts`) and not by the queue's maxReceiveCount, which stays a backstop for
        invocations that crash.
        """
        tid = transition.transition_id
        fields = {"jobKey": transition.job_key, "transitionId": tid, "reason": reason}
        settings = self.deps.settings
        attempts = int(_number_attribute(record, ATTEMPTS_ATTRIBUTE) or 0) + 1
        if attempts >= settings.slack_max_attempts:
            reason = f"gave up after {attempts} attempts; last: {reason}"
            logger.error("Slack post failed for good; dead-lettered", extra={**fields, "reason": reason})
            self.deps.store.finish_delivery(CHANNEL, tid, "FAILED_PERMANENT", reason)
            self.settled.add(tid)
            self.dead_letter(record.get("body", ""), reason)
            return
        delay = retry_delay_s(attempts, settings.slack_retry_base_s)
        logger.warning(
            "Slack post failed; will retry", extra={**fields, "attempt": attempts, "delayS": delay}
        )
        self.report.retried += 1
        self.deps.store.release_delivery(CHANNEL, tid)
        self.defer(record, transition, delay, attempts=attempts)


def retry_delay_s(attempt: int, base_s: float) -> float:
    """Delay after the `attempt`-th failed post: base, doubling, capped at SQS's 900 s."""
    return float(min(SQS_MAX_DELAY_S, base_s * 2 ** min(attempt - 1, 20)))


def retry_window_s(settings: Settings) -> float:
    """How long a message can keep being retried before it is dead-lettered."""
    return sum(retry_delay_s(a, settings.slack_retry_base_s) for a in range(1, settings.slack_max_attempts))


def _number_attribute(record: dict[str, Any], name: str) -> float | None:
    """A numeric SQS message attribute as the Lambda event carries it; None when absent or garbled."""
    attribute = (record.get("messageAttributes") or {}).get(name) or {}
    try:
        value = float(str(attribute.get("stringValue")))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _string_attribute(record: dict[str, Any], name: str) -> str | None:
    value = ((record.get("messageAttributes") or {}).get(name) or {}).get("stringValue")
    return value if isinstance(value, str) and value else None


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
