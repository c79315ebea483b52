"""The senders' side of a round: the Slack and e-mail queues fed through the real delivery engine
between poll cycles, with SQS and Slack faults, in fake time; what SNS delivered to an ordinary
subscriber; the queues' depth and dead letters for the invariants.

Time is the round's fake clock: each Slack batch takes a second, a record the sender failed comes
back when the visibility it asked for (or the queue's default) has passed, and a copy it sent with
DelaySeconds is sent when that delay has passed (`VisibilitySpy`). Every offer is a real SQS receive,
so the redrive policy applies as in AWS.
"""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal, cast

import boto3
import httpx

from jobwatch.adapters.dynamodb.jobs import DynamoJobStore
from jobwatch.adapters.dynamodb.ledger import DynamoDeliveryLedger
from jobwatch.adapters.sns import SnsEmailPublisher
from jobwatch.adapters.sqs import SqsDeliveryQueue
from jobwatch.channels.email import EmailChannel
from jobwatch.channels.slack_webhook import SlackWebhookChannel
from jobwatch.delivery.engine import DeliveryDeps, deliver_batch
from jobwatch.delivery.envelope import transition_from_sqs_body
from jobwatch.delivery.records import BatchReport, record_from_message
from jobwatch.domain.model import Transition
from jobwatch.observability import metrics

from ..fakes import FakeClock
from ..harness import LocalDeployment
from ..slack_sink import SlackSink
from .config import LabConfig
from .injectors import CLIENT_CONFIG, SINK_FAULTS, Container, EmailTopic, InstantRetry, VisibilitySpy
from .invariants import RoundResult

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_sqs.client import SQSClient

__all__ = ["Drains"]

Mode = Literal["once", "twice", "concurrent"]
"""How a received batch is processed: once, twice before deletion, or by two senders at once."""
Turn = Literal["idle", "waited", "batch"]
"""One turn of the Slack drain: nothing left before `until`, the clock moved to a release, a batch."""


class Drains:
    """Feeds the Slack and e-mail queues of one round through the senders' code (see the module
    docstring); owns the round's HTTP clients for Slack, the e-mail topic and the lab's SQS bookkeeping."""

    def __init__(
        self,
        *,
        config: LabConfig,
        number: int,
        rng: random.Random,
        email_rng: random.Random,
        clock: FakeClock,
        result: RoundResult,
        sink: SlackSink,
        deployment: LocalDeployment,
        containers: tuple[Container, Container],
        session: boto3.session.Session,
        sqs: SQSClient,
    ) -> None:
        self.config = config
        self.number = number
        self.rng = rng
        """The round's stream for schedules and delivery faults (shared with the round driver)."""
        self.email_rng = email_rng
        self.clock = clock
        self.result = result
        self.sink = sink
        self.deployment = deployment
        self.settings = deployment.settings
        self.containers = containers
        self.sqs = sqs
        self.bodies: deque[str] = deque(maxlen=500)
        self.sns_seen: list[Transition] = []
        self.sleeps: list[float] = []
        self.hidden: dict[str, float] = {}
        """Receipt handle -> fake time a failed Slack record becomes visible again."""
        self.delayed: list[tuple[float, dict[str, Any]]] = []
        """(fake time due, SendMessage arguments) of messages the sender sent with DelaySeconds."""
        self.email_topic = EmailTopic(
            SnsEmailPublisher(session.client("sns", config=CLIENT_CONFIG), self.settings.email_topic_arn),
            email_rng,
        )
        self.http = httpx.Client(timeout=httpx.Timeout(5.0, connect=3.0), follow_redirects=False)
        self.http2 = httpx.Client(timeout=httpx.Timeout(5.0, connect=3.0), follow_redirects=False)
        self.queue_visibility_s = float(
            self.sqs.get_queue_attributes(
                QueueUrl=self.settings.slack_queue_url, AttributeNames=["VisibilityTimeout"]
            )["Attributes"]["VisibilityTimeout"]
        )

    def close(self) -> None:
        self.http.close()
        self.http2.close()

    # -- queues -----------------------------------------------------------------------------------------

    def queue_depth(self) -> int:
        """Messages on the Slack queue: visible, in flight, delayed (by SQS or by the lab)."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.settings.slack_queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        counts = [
            attributes.get("ApproximateNumberOfMessages", "0"),
            attributes.get("ApproximateNumberOfMessagesNotVisible", "0"),
            attributes.get("ApproximateNumberOfMessagesDelayed", "0"),
        ]
        return sum(int(n) for n in counts) + len(self.delayed)

    def capture(self) -> None:
        """What SNS delivered to an ordinary subscriber (the capture queue), in arrival order."""
        url = self.deployment.capture_queue_url
        while True:
            messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if not messages:
                return
            for message in messages:
                envelope = json.loads(message["Body"])
                self.sns_seen.append(Transition.model_validate_json(envelope["Message"]))
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )

    def read_dlq(self, url: str) -> list[tuple[str, str]]:
        """(transition id, why) of each message on the Slack dead-letter queue (drains it)."""
        out: list[tuple[str, str]] = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                return out
            for m in messages:
                tid = transition_from_sqs_body(m["Body"]).transition_id
                attribute = m.get("MessageAttributes", {}).get("reason")
                reason = None if attribute is None else attribute.get("StringValue")
                receives = m.get("Attributes", {}).get("ApproximateReceiveCount")
                out.append((tid, f"{reason or 'redrive'}, received {receives} times"))
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )

    def _receive(self, queue: str) -> list[dict[str, Any]]:
        return [
            dict(m)
            for m in self.sqs.receive_message(
                QueueUrl=queue,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
        ]

    def _delete(self, queue: str, messages: list[dict[str, Any]]) -> None:
        if messages:
            self.sqs.delete_message_batch(
                QueueUrl=queue,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )

    # -- Slack ------------------------------------------------------------------------------------------

    def _slack_sender(
        self, http: httpx.Client, spy: VisibilitySpy, dynamodb: DynamoDBClient
    ) -> tuple[SlackWebhookChannel, DeliveryDeps]:
        """The Slack sender as one container builds it, over the lab's SQS spy and fake clock."""
        settings = self.settings
        channel = SlackWebhookChannel(settings, self.containers[0].secrets, http)
        deps = DeliveryDeps(
            ledger=DynamoDeliveryLedger(dynamodb, settings.table),
            queue=SqsDeliveryQueue(cast("SQSClient", spy), settings.slack_queue_url, settings.slack_dlq_url),
            clock=self.clock,  # waits for a predecessor and their leases are in fake time too
            standing=DynamoJobStore(dynamodb, settings.table).transition_standing,
            sleep=self.sleeps.append,  # in-process Retry-After waits cost no wall time
        )
        return channel, deps

    def _release_due(self) -> None:
        """Records whose (fake) visibility timeout or delay has passed become visible."""
        due = [receipt for receipt, at in self.hidden.items() if at <= self.clock.at]
        for receipt in due:
            del self.hidden[receipt]
            self.sqs.change_message_visibility(
                QueueUrl=self.settings.slack_queue_url, ReceiptHandle=receipt, VisibilityTimeout=0
            )
        ready = [entry for entry in self.delayed if entry[0] <= self.clock.at]
        for entry in ready:
            self.delayed.remove(entry)
            self.sqs.send_message(**entry[1])

    def _next_release(self) -> float | None:
        times = list(self.hidden.values()) + [at for at, _ in self.delayed]
        return min(times) if times else None

    def drain_slack(self, *, until: float | None, faults: bool, max_batches: int | None = None) -> None:
        """Feed the Slack queue through the sender's code, with SQS and Slack faults; then the e-mail
        queue; then read SNS.

        Time is the fake clock: each batch takes a second, a record the sender failed comes back when
        the visibility it asked for (or the queue's default) has passed, and the drain runs until
        `until` (the next poll cycle) or, with None, until the queue is empty.
        """
        queue = self.settings.slack_queue_url
        spy = VisibilitySpy(self.sqs, self.clock.now, self.delayed)
        channel, deps = self._slack_sender(self.http, spy, self.containers[0].dynamodb)
        batches = 0
        for _ in range(20_000):
            turn = self._slack_step(queue, until, faults, spy, channel, deps)
            if turn == "idle":
                break
            if turn == "waited":
                continue
            batches += 1
            if until is not None and self.clock.at >= until:
                break
            if max_batches is not None and batches >= max_batches:
                break
        else:
            self.result.problems.append(f"round {self.number}: Slack drain did not end")
        self.drain_email(faults)
        self.capture()

    def _slack_step(
        self,
        queue: str,
        until: float | None,
        faults: bool,
        spy: VisibilitySpy,
        channel: SlackWebhookChannel,
        deps: DeliveryDeps,
    ) -> Turn:
        """Release what is due, then offer one batch; with none, move the clock to the next release."""
        self._release_due()
        messages = self._receive(queue)
        if not messages:
            next_at = self._next_release()
            if next_at is None or (until is not None and next_at > until):
                return "idle"
            self.clock.at = max(self.clock.at, next_at)
            return "waited"
        self._offer_slack(queue, messages, faults, spy, channel, deps)
        return "batch"

    def _offer_slack(
        self,
        queue: str,
        messages: list[dict[str, Any]],
        faults: bool,
        spy: VisibilitySpy,
        channel: SlackWebhookChannel,
        deps: DeliveryDeps,
    ) -> None:
        """One received batch through the sender (as `mode` says); delete what it settled, hide the rest."""
        records = [record_from_message(dict(m)) for m in messages]
        mode: Mode = self._slack_faults(queue) if faults else "once"
        self.bodies.extend(m["Body"] for m in messages)
        event = {"Records": records}
        reports = self._deliver_slack(event, mode, channel, deps, spy)
        self.result.slack_deferred += sum(r.deferred for r in reports)
        self.result.slack_collapsed += sum(r.collapsed for r in reports)
        self.result.order_waits_expired += sum(r.order_waits_expired for r in reports)
        failed = set.intersection(*(set(r.failures) for r in reports))
        done = [m for m in messages if m["MessageId"] not in failed]
        self._delete(queue, done)
        self._hide_failed(queue, messages, failed, spy)
        metrics.clear_metrics()  # Powertools would flush EMF lines to stdout after 100 values
        self.clock.at += 1.0

    def _slack_faults(self, queue: str) -> Mode:
        """Slack sink scripts and a resent SNS envelope before a batch; how the batch is processed."""
        rng, config = self.rng, self.config
        # Scripted answers wait for the next posts; while a job's later transitions only wait
        # for an earlier one (no post), new scripts would pile up and fail every retry of that
        # earlier one in a row, which no real Slack does. Script only when none is pending.
        if rng.random() < config.p_sink_script and not self.sink.pending_script():
            names = rng.choices(list(SINK_FAULTS), weights=list(SINK_FAULTS.values()), k=rng.randint(1, 3))
            self.sink.script(names)
            self.result.faults_injected.update(f"slack:{n}" for n in names)
        if self.bodies and rng.random() < config.p_resend:
            self.sqs.send_message(QueueUrl=queue, MessageBody=rng.choice(list(self.bodies)))
            self.result.faults_injected["sqs:resent-envelope"] += 1
        roll = rng.random()
        if roll < config.p_twice:
            return "twice"
        if roll < config.p_twice + config.p_concurrent:
            return "concurrent"
        return "once"

    def _deliver_slack(
        self,
        event: dict[str, Any],
        mode: Mode,
        channel: SlackWebhookChannel,
        deps: DeliveryDeps,
        spy: VisibilitySpy,
    ) -> list[BatchReport]:
        """The batch processed once, twice (the second answer decides deletion), or by two senders."""
        if mode == "once":
            return [deliver_batch(event, channel, deps)]
        if mode == "twice":
            self.result.faults_injected["sqs:batch-processed-twice"] += 1
            deliver_batch(event, channel, deps)
            return [deliver_batch(event, channel, deps)]  # its answer decides deletion
        self.result.faults_injected["sqs:batch-processed-concurrently"] += 1
        other_channel, other = self._slack_sender(self.http2, spy, self.containers[1].dynamodb)
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [
                pool.submit(deliver_batch, event, channel, deps),
                pool.submit(deliver_batch, event, other_channel, other),
            ]
            return [f.result(timeout=120) for f in futures]

    def _hide_failed(
        self, queue: str, messages: Sequence[dict[str, Any]], failed: set[str], spy: VisibilitySpy
    ) -> None:
        """A failed record is hidden until its visibility timeout passes (fake time)."""
        for m in messages:
            if m["MessageId"] in failed:
                receipt = m["ReceiptHandle"]
                delay = spy.requested.get(receipt, self.queue_visibility_s)
                self.hidden[receipt] = self.clock.at + delay
                self.sqs.change_message_visibility(
                    QueueUrl=queue, ReceiptHandle=receipt, VisibilityTimeout=3600
                )

    # -- e-mail -----------------------------------------------------------------------------------------

    def drain_email(self, faults: bool) -> None:
        """Feed the e-mail queue through the e-mail sender until it is empty: publishes that fail
        before or after SNS took them, batches processed twice or by two senders at once."""
        queue = self.settings.email_queue_url
        self.email_topic.faults = faults
        settings = self.settings
        channel = EmailChannel(settings, self.email_topic)
        deps = DeliveryDeps(
            ledger=DynamoDeliveryLedger(self.containers[0].dynamodb, settings.table),
            queue=SqsDeliveryQueue(cast("SQSClient", InstantRetry(self.sqs)), queue, settings.email_dlq_url),
            clock=self.clock,
        )
        for _ in range(5_000):
            messages = self._receive(queue)
            if not messages:
                break
            event = {"Records": [record_from_message(dict(m)) for m in messages]}
            reports = self._deliver_email(event, channel, deps, faults)
            failed = set.intersection(*(set(r.failures) for r in reports))
            done = [m for m in messages if m["MessageId"] not in failed]
            self._delete(queue, done)
            for m in messages:
                if m["MessageId"] in failed:
                    self.sqs.change_message_visibility(
                        QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                    )
            metrics.clear_metrics()
        else:
            self.result.problems.append(f"round {self.number}: e-mail drain did not end")

    def _deliver_email(
        self, event: dict[str, Any], channel: EmailChannel, deps: DeliveryDeps, faults: bool
    ) -> list[BatchReport]:
        """The batch processed once, twice, or by two senders at once (drawn only with faults on)."""
        roll = self.email_rng.random() if faults else 1.0
        if roll < self.config.p_twice:
            self.result.faults_injected["email:batch-processed-twice"] += 1
            deliver_batch(event, channel, deps)
            return [deliver_batch(event, channel, deps)]
        if roll < self.config.p_twice + self.config.p_concurrent:
            self.result.faults_injected["email:batch-processed-concurrently"] += 1
            with ThreadPoolExecutor(max_workers=2, thread_name_prefix="faultlab-email") as pool:
                futures = [pool.submit(deliver_batch, event, channel, deps) for _ in range(2)]
                return [f.result(timeout=120) for f in futures]
        return [deliver_batch(event, channel, deps)]
