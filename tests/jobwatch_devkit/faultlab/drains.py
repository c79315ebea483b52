"""The notifier's side of a round: the notify queue fed through the real notifier (routes, then one
delivery engine per destination) between poll cycles, with SQS, Slack and SNS faults, in fake time;
what SNS delivered to an ordinary subscriber; the queue's depth and dead letters for the invariants.

Time is the round's fake clock: each batch takes a second, a record the notifier failed comes back
when the visibility it asked for (or the queue's default) has passed, and a copy it sent with
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
from jobwatch.adapters.dynamodb.routes import DynamoRouteStore
from jobwatch.adapters.sns import SnsEmailPublisher
from jobwatch.adapters.sqs import SqsDeliveryQueue
from jobwatch.app.routing import Router, RoutingRecord
from jobwatch.delivery.engine import DeliveryDeps
from jobwatch.delivery.envelope import transition_from_sqs_body
from jobwatch.delivery.notifier import DESTINATION_ATTRIBUTE, Notifier
from jobwatch.delivery.records import BatchReport, record_from_message
from jobwatch.domain.model import Transition
from jobwatch.entrypoints.notifier import ChannelBook, defaults_of
from jobwatch.observability import metrics

from ..fakes import FakeClock
from ..harness import LocalDeployment
from ..slack_sink import SlackSink
from .config import LabConfig
from .injectors import CLIENT_CONFIG, SINK_FAULTS, Container, EmailTopic, VisibilitySpy
from .invariants import LeakScanner, RoundResult
from .rig import RouteRig

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_sqs.client import SQSClient

__all__ = ["Drains"]

Mode = Literal["once", "twice", "concurrent"]
"""How a received batch is processed: once, twice before deletion, or by two notifiers at once."""
Turn = Literal["idle", "waited", "batch"]
"""One turn of the drain: nothing left before `until`, the clock moved to a release, a batch."""
DeadLetter = tuple[str, str, str]
"""(transition id, why, destination id or "" when the message named none) of one dead letter."""


class Drains:
    """Feeds the notify queue of one round through the notifier's code (see the module docstring);
    owns the round's HTTP clients for Slack, the e-mail topic and the lab's SQS bookkeeping."""

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
        scanner: LeakScanner | None = None,
        rig: RouteRig | None = None,
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
        self.rig = rig
        """The round's routed destinations (None: no stored routes, the defaults apply)."""
        self.scanner = scanner or LeakScanner()
        """Every queue body and SNS message the drains read is searched for API keys."""
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
                QueueUrl=self.settings.notify_queue_url, AttributeNames=["VisibilityTimeout"]
            )["Attributes"]["VisibilityTimeout"]
        )

    def close(self) -> None:
        self.http.close()
        self.http2.close()

    # -- queues -----------------------------------------------------------------------------------------

    def queue_depth(self) -> int:
        """Messages on the notify queue: visible, in flight, delayed (by SQS or by the lab)."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.settings.notify_queue_url,
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
                self.scanner.scan("an SNS message", message["Body"])
                envelope = json.loads(message["Body"])
                self.sns_seen.append(Transition.model_validate_json(envelope["Message"]))
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )

    def read_dlq(self, url: str) -> list[DeadLetter]:
        """Each message on the notify dead-letter queue (drains it)."""
        out: list[DeadLetter] = []
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
                self.scanner.scan("a dead letter", m["Body"])
                tid = transition_from_sqs_body(m["Body"]).transition_id
                attributes: dict[str, Any] = dict(m.get("MessageAttributes", {}))
                reason = attributes.get("reason", {}).get("StringValue")
                destination = str(attributes.get(DESTINATION_ATTRIBUTE, {}).get("StringValue", ""))
                receives = m.get("Attributes", {}).get("ApproximateReceiveCount")
                out.append((tid, f"{reason or 'redrive'}, received {receives} times", destination))
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

    # -- the notifier -----------------------------------------------------------------------------------

    def _notifier(self, http: httpx.Client, spy: VisibilitySpy, container: Container) -> Notifier:
        """The notifier as one container builds it, over the lab's SQS spy, HTTP client, faulty e-mail
        topic and fake clock (routes: the stored ones, or the defaults)."""
        settings = self.settings
        dynamodb: DynamoDBClient = container.dynamodb
        ledger = DynamoDeliveryLedger(dynamodb, settings.table)
        router = Router(DynamoRouteStore(dynamodb, settings.table), defaults_of(settings), self.clock, 0.0)
        deps = DeliveryDeps(
            ledger=ledger,
            queue=SqsDeliveryQueue(
                cast("SQSClient", spy), settings.notify_queue_url, settings.notify_dlq_url
            ),
            clock=self.clock,  # waits for a predecessor and their leases are in fake time too
            standing=DynamoJobStore(dynamodb, settings.table).transition_standing,
            sleep=self.sleeps.append,  # in-process Retry-After waits cost no wall time
        )
        book = (
            ChannelBook(
                settings,
                container.secrets,
                settings.slack_api_url,
                email_publisher=self.email_topic,
                http=http,
            )
            if self.rig is None
            else self.rig.book(container, http, self.email_topic)
        )
        return Notifier(RoutingRecord(ledger, router, self.clock), book, deps)

    def _release_due(self) -> None:
        """Records whose (fake) visibility timeout or delay has passed become visible."""
        due = [receipt for receipt, at in self.hidden.items() if at <= self.clock.at]
        for receipt in due:
            del self.hidden[receipt]
            self.sqs.change_message_visibility(
                QueueUrl=self.settings.notify_queue_url, ReceiptHandle=receipt, VisibilityTimeout=0
            )
        ready = [entry for entry in self.delayed if entry[0] <= self.clock.at]
        for entry in ready:
            self.delayed.remove(entry)
            self.sqs.send_message(**entry[1])

    def _next_release(self) -> float | None:
        times = list(self.hidden.values()) + [at for at, _ in self.delayed]
        return min(times) if times else None

    def drain(self, *, until: float | None, faults: bool, max_batches: int | None = None) -> None:
        """Feed the notify queue through the notifier's code, with SQS, Slack and SNS faults; then read
        what SNS delivered.

        Time is the fake clock: each batch takes a second, a record the notifier failed comes back
        when the visibility it asked for (or the queue's default) has passed, and the drain runs until
        `until` (the next poll cycle) or, with None, until the queue is empty.
        """
        queue = self.settings.notify_queue_url
        spy = VisibilitySpy(self.sqs, self.clock.now, self.delayed)
        self.email_topic.faults = faults
        if self.rig is not None:
            self.rig.bus.faults = faults
        notifier = self._notifier(self.http, spy, self.containers[0])
        batches = 0
        for _ in range(20_000):
            turn = self._step(queue, until, faults, spy, notifier)
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
            self.result.problems.append(f"round {self.number}: notify drain did not end")
        self.capture()

    def _step(
        self, queue: str, until: float | None, faults: bool, spy: VisibilitySpy, notifier: Notifier
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
        self._offer(queue, messages, faults, spy, notifier)
        return "batch"

    def _offer(
        self,
        queue: str,
        messages: list[dict[str, Any]],
        faults: bool,
        spy: VisibilitySpy,
        notifier: Notifier,
    ) -> None:
        """One received batch through the notifier (as `mode` says); delete what it settled, hide the rest."""
        records = [record_from_message(dict(m)) for m in messages]
        mode: Mode = self._batch_faults(queue) if faults else "once"
        self.bodies.extend(m["Body"] for m in messages)
        for m in messages:
            self.scanner.scan("a notify queue message", m["Body"])
        event = {"Records": records}
        reports = self._deliver(event, mode, notifier, spy)
        self.result.slack_deferred += sum(r.deferred for r in reports)
        self.result.slack_collapsed += sum(r.collapsed for r in reports)
        self.result.order_waits_expired += sum(r.order_waits_expired for r in reports)
        failed = set.intersection(*(set(r.failures) for r in reports))
        done = [m for m in messages if m["MessageId"] not in failed]
        self._delete(queue, done)
        self._hide_failed(queue, messages, failed, spy)
        metrics.clear_metrics()  # Powertools would flush EMF lines to stdout after 100 values
        self.clock.at += 1.0

    def _batch_faults(self, queue: str) -> Mode:
        """Slack sink scripts and a resent SNS envelope before a batch; how the batch is processed."""
        rng, config = self.rng, self.config
        # Scripted answers wait for the next posts; while a job's later transitions only wait
        # for an earlier one (no post), new scripts would pile up and fail every retry of that
        # earlier one in a row, which no real Slack does. Script only when none is pending.
        if rng.random() < config.p_sink_script and not self.sink.pending_script():
            names = rng.choices(list(SINK_FAULTS), weights=list(SINK_FAULTS.values()), k=rng.randint(1, 3))
            self.sink.script(names)
            self.result.faults_injected.update(f"slack:{n}" for n in names)
        if self.rig is not None:
            self.rig.before_batch(rng, self.result.faults_injected)
        if self.bodies and rng.random() < config.p_resend:
            self.sqs.send_message(QueueUrl=queue, MessageBody=rng.choice(list(self.bodies)))
            self.result.faults_injected["sqs:resent-envelope"] += 1
        roll = rng.random()
        if roll < config.p_twice:
            return "twice"
        if roll < config.p_twice + config.p_concurrent:
            return "concurrent"
        return "once"

    def _deliver(
        self, event: dict[str, Any], mode: Mode, notifier: Notifier, spy: VisibilitySpy
    ) -> list[BatchReport]:
        """The batch processed once, twice (the second answer decides deletion), or by two notifiers."""
        if mode == "once":
            return [notifier.deliver(event)]
        if mode == "twice":
            self.result.faults_injected["sqs:batch-processed-twice"] += 1
            notifier.deliver(event)
            return [notifier.deliver(event)]  # its answer decides deletion
        self.result.faults_injected["sqs:batch-processed-concurrently"] += 1
        other = self._notifier(self.http2, spy, self.containers[1])
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [pool.submit(notifier.deliver, event), pool.submit(other.deliver, event)]
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
