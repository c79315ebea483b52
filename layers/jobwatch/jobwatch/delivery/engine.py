"""The one delivery engine: every channel's SQS batches go through here.

For each record: read the transition; wait (a delayed copy) while the channel is rate limited or
the job's previous transition may still reach it (ordered channels); claim (channel, transitionId)
in the ledger, so a redelivered or republished transition is never sent twice; render, check the
payload against the channel's limits, pace, send; then settle the claim, retry with backoff, or
dead-letter with the reason. The channel only renders and sends (`jobwatch.channels.base`).

Waiting and retrying never spend SQS receives: the record is acknowledged and a copy goes back on
the queue with DelaySeconds, carrying its own counters as message attributes; one copy *stands* for
a transition at a time (a lease in the ledger), so SQS's at-least-once delivery cannot multiply
waiting copies. The queue's redrive policy stays the backstop for invocations that crash
(docs/decisions.md, D18, D22).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobwatch.channels.base import Channel, Notice, SendOutcome, SendResult
from jobwatch.delivery.envelope import transition_from_sqs_body
from jobwatch.delivery.records import (
    ATTEMPTS_ATTRIBUTE,
    COPY_TOKEN_ATTRIBUTE,
    DEFERRALS_ATTRIBUTE,
    WAITING_SINCE_ATTRIBUTE,
    BatchReport,
    number_attribute,
    string_attribute,
)
from jobwatch.domain.model import Transition
from jobwatch.domain.transitions import parse_transition_id
from jobwatch.observability import ChannelMetric, MetricUnit, channel_metric, logger, metrics
from jobwatch.ports import Claim, Clock, DeliveryLedger, DeliveryQueue

DELIVERED = "DELIVERED"
FAILED_PERMANENT = "FAILED_PERMANENT"
SETTLED_CLAIMS = frozenset({DELIVERED, FAILED_PERMANENT})
WAIT_LEASE_MARGIN_S = 300.0
"""How long after its delay a deferred copy still stands for its transition if it has not come back."""
MAX_DEFERRALS = 500
"""A message deferred this often is handed back to SQS instead, where maxReceiveCount bounds it."""
MAX_ORDER_HOLD_S = 60
SQS_MAX_DELAY_S = 900
BUSY_RECHECK_S = 30.0
"""Another worker holds the claim: look again after this long."""
LOW_TIME_S = 5.0
"""Less Lambda time left than this: defer the rest of the batch rather than start a send."""
SECRET_PAUSE_S = 60.0


@dataclass
class DeliveryDeps:
    ledger: DeliveryLedger
    queue: DeliveryQueue
    clock: Clock
    standing: Callable[[str], str | None] = lambda _tid: None
    """The job store's `transition_standing`: ordered channels ask it whether a predecessor is owed."""
    predecessor_here: Callable[[str, str], str | None] = lambda previous, _channel: previous
    """The transition this channel must have before one whose job's previous is the first argument:
    that one, or with routes the nearest earlier one they sent here (None: nothing to wait for; the
    notifier answers from its routing records)."""
    copy_attributes: Callable[[str], dict[str, str]] = lambda _channel: {}
    """Extra attributes of the delayed copies of this channel (the notifier names the destination, so
    a copy is retried for that destination only)."""
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic


def retry_delay_s(attempt: int, base_s: float) -> float:
    """Delay after the `attempt`-th failed send: base, doubling, capped at SQS's 900 s."""
    return float(min(SQS_MAX_DELAY_S, base_s * 2 ** min(attempt - 1, 20)))


def retry_window_s(max_attempts: int, base_s: float) -> float:
    """How long a message can keep being retried before it is dead-lettered."""
    return sum(retry_delay_s(a, base_s) for a in range(1, max_attempts))


class _Batch:
    def __init__(self, channel: Channel, deps: DeliveryDeps, remaining_s: Callable[[], float]) -> None:
        self.channel = channel
        self.limits = channel.limits
        self.deps = deps
        self.remaining_s = remaining_s
        self.report = BatchReport()
        self.last_send_at: float | None = None
        self.paused_for: float | None = None
        """Set once the channel is rate limited or blocked: the rest of the batch waits this long."""
        self.held_jobs: set[str] = set()
        """Jobs with a transition in this batch that did not go out: their later ones wait."""
        self.settled: set[str] = set()
        """Transition ids delivered (or found already delivered) in this batch."""
        self.job_of: dict[str, str] = {}
        """messageId -> jobKey of the records in this batch."""

    # -- bookkeeping ---------------------------------------------------------------------------------

    def count(self, what: ChannelMetric) -> None:
        metrics.add_metric(
            name=channel_metric(self.limits.metric_prefix, what), unit=MetricUnit.Count, value=1
        )

    def dead_letter(self, body: str, reason: str) -> None:
        self.report.dead_lettered += 1
        self.count(ChannelMetric.PERMANENT_FAILURES)
        self.deps.queue.dead_letter(body, reason, self.deps.copy_attributes(self.limits.name))

    def settle(self, transition: Transition, state: str, detail: str = "") -> None:
        self.deps.ledger.finish(
            self.limits.name, transition.transition_id, state, detail, self.deps.clock.now()
        )
        self.settled.add(transition.transition_id)

    def refuse(self, record: dict[str, Any], transition: Transition, reason: str, message: str) -> None:
        """Refused for good: never sent again, parked with the reason (alarm)."""
        logger.error(message, extra={**_fields(transition), "reason": reason})
        self.settle(transition, FAILED_PERMANENT, reason)
        self.dead_letter(record.get("body", ""), reason)

    # -- waiting -------------------------------------------------------------------------------------

    def retry_later(self, record: dict[str, Any], delay_s: float) -> None:
        """Hand the record back to SQS (a batch-item failure): it spends one of its receives."""
        self.report.failures.append(record["messageId"])
        job_key = self.job_of.get(record.get("messageId", ""))
        if job_key is not None:
            self.held_jobs.add(job_key)  # its later transitions wait too: the channel shows them in order
        if record.get("receiptHandle"):
            try:
                self.deps.queue.retry_later(record["receiptHandle"], math.ceil(delay_s))
            except Exception as exc:  # the queue's own visibility timeout applies instead
                logger.warning("could not stretch the visibility", extra={"error": str(exc)})

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

        Unlike a batch-item failure this spends no receive, so waiting (for order, for a rate limit,
        for another worker's claim) can never push a message into the dead-letter queue. One copy
        stands for the transition at a time (a lease in the ledger, written only after its copy was
        sent): a duplicate of the message, or a surplus copy, is dropped instead of deferred again.
        """
        self.held_jobs.add(transition.job_key)
        tid = transition.transition_id
        deferrals = int(number_attribute(record, DEFERRALS_ATTRIBUTE) or 0)
        if deferrals >= MAX_DEFERRALS:
            self.retry_later(record, delay_s)
            return
        now = self.deps.clock.now()
        mine = string_attribute(record, COPY_TOKEN_ATTRIBUTE)
        standing = self.deps.ledger.waiting_copy(self.limits.name, tid, now)
        if standing is not None and standing != mine:
            self.report.collapsed += 1
            logger.info(
                "another copy of this transition is waiting already; dropped", extra=_fields(transition)
            )
            return
        token = uuid.uuid4().hex
        delay = min(SQS_MAX_DELAY_S, max(1, math.ceil(delay_s)))
        attributes = {
            DEFERRALS_ATTRIBUTE: str(deferrals + 1),
            COPY_TOKEN_ATTRIBUTE: token,
            **self.deps.copy_attributes(self.limits.name),
        }
        attempts = int(number_attribute(record, ATTEMPTS_ATTRIBUTE) or 0) if attempts is None else attempts
        if attempts:
            attributes[ATTEMPTS_ATTRIBUTE] = str(attempts)
        if waiting_since is not None:
            attributes[WAITING_SINCE_ATTRIBUTE] = f"{waiting_since:.3f}"
        try:
            self.deps.queue.send_later(record.get("body", ""), delay, attributes)
        except Exception as exc:  # the queue refused the copy: fall back to visibility, nothing is lost
            logger.warning("could not defer; retrying through visibility", extra={"error": str(exc)})
            self.retry_later(record, delay_s)
            return
        # Written only now that the copy exists: whoever sees this lease may drop its own copy.
        self.deps.ledger.hand_wait_to(self.limits.name, tid, token, mine, now, delay + WAIT_LEASE_MARGIN_S)
        self.report.deferred += 1
        self.count(ChannelMetric.DEFERRED)

    def predecessor_in_hand(self, transition: Transition, previous: str, now: float) -> bool | None:
        """True while the job's previous transition is visibly being handled, False when it is out of
        sight, None when it is settled, never went out, or is unknown (nothing to wait for)."""
        if transition.job_key in self.held_jobs:  # deferred a moment ago in this very batch
            return True
        ledger, channel = self.deps.ledger, self.limits.name
        claim = ledger.state(channel, previous, now)
        if claim in SETTLED_CLAIMS:
            return None
        standing = None
        if claim is None:
            standing = self.deps.standing(previous)
            if standing in (None, "DEAD_LETTERED"):
                return None  # it never went out (dead-lettered at the outbox) or is unknown
        return (
            claim == "IN_PROGRESS"
            or standing == "OWED"
            or ledger.waiting_copy(channel, previous, now) is not None
        )

    def waits_for_predecessor(self, record: dict[str, Any], transition: Transition) -> bool:
        """True when the job's previous transition may still reach the channel: this one is deferred.

        The wait is unbounded while the predecessor is visibly in hand (a live claim, a standing
        deferred copy, or still owed by the outbox), however long its own retries or waits take;
        `order_wait_s` bounds only the time it has been out of sight (an original not yet received,
        or retried by SQS after a crash), so a predecessor lost there cannot hold its job forever.
        """
        previous = transition.previous_transition_id
        limits = self.limits
        if not limits.ordered or previous is None or limits.order_wait_s <= 0:
            return False
        # The one this destination must have first: the job's previous transition, or the nearest
        # earlier one routed here when the previous went elsewhere (None: nothing to wait for).
        previous = self.deps.predecessor_here(previous, limits.name)
        if previous is None or previous in self.settled:
            return False
        now = self.deps.clock.now()
        in_hand = self.predecessor_in_hand(transition, previous, now)
        if in_hand is None:
            return False
        fields = {**_fields(transition), "waitingFor": previous}
        since = now if in_hand else (number_attribute(record, WAITING_SINCE_ATTRIBUTE) or now)
        if now - since >= limits.order_wait_s:
            self.report.order_waits_expired += 1
            self.count(ChannelMetric.ORDER_WAIT_EXPIRED)
            logger.warning("predecessor out of sight too long; sending out of order", extra=fields)
            return False
        holds = int(number_attribute(record, DEFERRALS_ATTRIBUTE) or 0)
        delay = min(MAX_ORDER_HOLD_S, limits.order_retry_s * 2 ** min(holds, 10))
        logger.info("waiting for the job's previous transition", extra={**fields, "delayS": delay})
        self.defer(record, transition, delay, waiting_since=since)
        return True

    # -- sending -------------------------------------------------------------------------------------

    def pace(self) -> None:
        interval = self.limits.min_interval_s
        if self.last_send_at is not None and interval > 0:
            wait = self.last_send_at + interval - self.deps.monotonic()
            if wait > 0:
                self.deps.sleep(wait)

    def read(self, record: dict[str, Any]) -> Transition | None:
        body = record.get("body", "")
        try:
            return transition_from_sqs_body(body)
        except ValueError as exc:
            logger.error(
                "unreadable message dead-lettered",
                extra={"channel": self.limits.name, "messageId": record.get("messageId"), "error": str(exc)},
            )
            self.dead_letter(body, f"unreadable: {exc}")
            return None

    def must_wait(self, record: dict[str, Any], transition: Transition) -> bool:
        """Deferred because the channel is paused, time runs out, or order asks for it."""
        if self.paused_for is not None:
            self.defer(record, transition, self.paused_for)
            return True
        if self.remaining_s() < LOW_TIME_S:
            self.defer(record, transition, 1)
            return True
        return self.waits_for_predecessor(record, transition)

    def claimed(self, record: dict[str, Any], transition: Transition) -> bool:
        tid = transition.transition_id
        claim = self.deps.ledger.claim(
            self.limits.name, tid, self.limits.claim_lease_s, self.deps.clock.now()
        )
        if claim is Claim.DONE:
            self.settled.add(tid)
            self.report.duplicates += 1
            self.count(ChannelMetric.DUPLICATES_SKIPPED)
            logger.info("already delivered; duplicate skipped", extra=_fields(transition, self.limits.name))
            return False
        if claim is Claim.BUSY:
            self.defer(record, transition, BUSY_RECHECK_S)  # another worker is sending it: look later
            return False
        return True

    def handle(self, record: dict[str, Any]) -> None:
        transition = self.read(record)
        if transition is not None:
            self.handle_notice(record, Notice(transition))

    def handle_notice(self, record: dict[str, Any], notice: Notice) -> None:
        """One transition for this channel (the notifier reads and routes records itself)."""
        transition = notice.transition
        if self.must_wait(record, transition) or not self.claimed(record, transition):
            return
        payload = self.channel.render(notice)
        problems = self.channel.problems(payload)
        if problems:
            reason = "invalid payload: " + "; ".join(problems)
            self.refuse(record, transition, reason, "rendered payload breaks the channel's limits")
            return
        self.send(record, transition, payload)

    def send(self, record: dict[str, Any], transition: Transition, payload: Any) -> None:
        for attempt in range(2):
            self.pace()
            result = self.channel.send(payload)
            self.last_send_at = self.deps.monotonic()
            if result.outcome is SendOutcome.RATE_LIMITED and attempt == 0 and self.can_sleep(result):
                logger.info(
                    "rate limited; waiting",
                    extra={**_fields(transition), "retryAfterS": result.retry_after_s},
                )
                self.deps.sleep(result.retry_after_s or 1.0)
                continue
            self.settle_send(record, transition, result)
            return

    def can_sleep(self, result: SendResult) -> bool:
        wait = result.retry_after_s if result.retry_after_s is not None else 1.0
        return wait <= self.limits.max_retry_after_s and self.remaining_s() > wait + 10

    def settle_send(self, record: dict[str, Any], transition: Transition, result: SendResult) -> None:
        fields = _fields(transition, self.limits.name)
        outcome = result.outcome
        if outcome is SendOutcome.DELIVERED:
            self.settle(transition, DELIVERED)
            self.report.delivered += 1
            self.count(ChannelMetric.DELIVERED)
            logger.info("delivered", extra=fields)
        elif outcome is SendOutcome.RATE_LIMITED:
            self.paused_for = max(1.0, result.retry_after_s if result.retry_after_s is not None else 1.0)
            logger.warning(
                "rate limited; deferring the rest of the batch",
                extra={**fields, "retryAfterS": self.paused_for},
            )
            self.deps.ledger.release(self.limits.name, transition.transition_id)
            self.defer(record, transition, self.paused_for)
        elif outcome is SendOutcome.PERMANENT:
            self.refuse(record, transition, result.detail, "refused permanently; dead-lettered")
        else:
            if outcome is SendOutcome.BLOCKED:
                self.paused_for = result.retry_after_s or SECRET_PAUSE_S
            self.failed_attempt(record, transition, result.detail)

    def failed_attempt(self, record: dict[str, Any], transition: Transition, reason: str) -> None:
        """A send that may succeed later: try again after a growing delay, up to the attempt cap.

        Retries are deferred copies rather than batch-item failures, so they are counted here
        (`jobwatchAttempts`) and not by the queue's maxReceiveCount, which stays a backstop for
        invocations that crash.
        """
        limits = self.limits
        fields = {**_fields(transition, limits.name), "reason": reason}
        attempts = int(number_attribute(record, ATTEMPTS_ATTRIBUTE) or 0) + 1
        if attempts >= limits.max_attempts:
            self.refuse(
                record,
                transition,
                f"gave up after {attempts} attempts; last: {reason}",
                "failed for good; dead-lettered",
            )
            return
        delay = retry_delay_s(attempts, limits.retry_base_s)
        logger.warning("send failed; will retry", extra={**fields, "attempt": attempts, "delayS": delay})
        self.report.retried += 1
        self.deps.ledger.release(limits.name, transition.transition_id)
        self.defer(record, transition, delay, attempts=attempts)


def _fields(transition: Transition, channel: str | None = None) -> dict[str, str]:
    fields = {
        "jobKey": transition.job_key,
        "jobId": transition.job_id,
        "transitionId": transition.transition_id,
    }
    if channel is not None:
        fields["channel"] = channel
    return fields


def _order(transition_id: str) -> tuple[str, int, int]:
    ref = parse_transition_id(transition_id)
    return ref.order if ref is not None else ("", 0, 0)


def in_job_order(records: list[dict[str, Any]], job_of: dict[str, str]) -> list[dict[str, Any]]:
    """A standard queue may hand a job's transitions over in any order: put them back in order.

    Records are sorted by (jobKey, transition version); unreadable ones keep their place at the end.
    """
    keyed: list[tuple[tuple[str, tuple[str, int, int]], int, dict[str, Any]]] = []
    for position, record in enumerate(records):
        try:
            transition = transition_from_sqs_body(record.get("body", ""))
        except ValueError:
            keyed.append((("\uffff", ("", 0, 0)), position, record))
            continue
        job_of[record.get("messageId", "")] = transition.job_key
        keyed.append(((transition.job_key, _order(transition.transition_id)), position, record))
    keyed.sort(key=lambda item: (item[0], item[1]))
    return [record for _, _, record in keyed]


def deliver_batch(
    event: dict[str, Any],
    channel: Channel,
    deps: DeliveryDeps,
    remaining_s: Callable[[], float] = lambda: math.inf,
) -> BatchReport:
    """Process one SQS batch for one channel; `report.response()` is what the Lambda handler returns."""
    batch = _Batch(channel, deps, remaining_s)
    records = list(event.get("Records", []))
    if channel.limits.ordered:
        records = in_job_order(records, batch.job_of)
    for record in records:
        try:
            batch.handle(record)
        except Exception:  # one bad record must not fail the others
            logger.exception(
                "unexpected error delivering record",
                extra={"channel": channel.limits.name, "messageId": record.get("messageId")},
            )
            batch.report.failures.append(record["messageId"])
    return batch.report


@dataclass
class Sender:
    """A channel and what its engine needs: what a sender function builds once per process."""

    channel: Channel
    deps: DeliveryDeps

    def deliver(
        self, event: dict[str, Any], remaining_s: Callable[[], float] = lambda: math.inf
    ) -> BatchReport:
        return deliver_batch(event, self.channel, self.deps, remaining_s)
