"""What each destination received, read where a person or a consumer would see it.

Slack channels: the sink's Web API calls (a reply in a job's thread is the message; the root is
edited alongside). The deployment's Slack webhook: the sink's webhook posts. E-mail: what the alert
e-mail topic sent its subscribers. The signed webhook: the devkit receiver, which verifies every
signature itself. EventBridge: a rule on the stack's bus whose target is an SQS queue, read like
any consumer's queue. Every delivery is attributed to its transition by the transition id it carries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobwatch.adapters import aws

from .routes import CHANNEL_NAMES, Dest, as_seen

if TYPE_CHECKING:
    from jobwatch_devkit.harness import LocalDeployment
    from jobwatch_devkit.slack_sink import ApiCall, SinkMessage, SlackSink
    from jobwatch_devkit.webhook_receiver import Received, WebhookReceiver

TAP_RULE = "demo-everything"
TAP_QUEUE = "jobwatch-demo-bus-tap"


@dataclass(frozen=True, slots=True)
class Seen:
    """One delivery as its destination received it."""

    dest: Dest
    transition_id: str
    """'' when no transition id could be found in it (always a problem)."""
    first_line: str = ""
    """What a person sees first (Slack: the notification text; e-mail: the subject); '' for machines."""
    note: str = ""
    """`new thread`, `also in channel`, `verified`, the EventBridge detail-type, a rejection reason..."""
    ok: bool = True
    """False for a webhook request the receiver could not verify."""


def carries(text: str, transition_id: str) -> bool:
    """Whether a text names this transition (`...#life-1` must not match inside `...#life-12`)."""
    return re.search(re.escape(transition_id) + r"(?![0-9A-Za-z.-])", text) is not None


def transition_in(text: str, transition_ids: Iterable[str]) -> str:
    return next((tid for tid in transition_ids if carries(text, tid)), "")


class BusTap:
    """A rule on the stack's EventBridge bus matching every jobwatch event, with an SQS queue target."""

    def __init__(self, bus: str) -> None:
        self.bus = bus
        self.events: list[dict[str, Any]] = []
        sqs = aws.sqs()
        self.queue_url = sqs.create_queue(QueueName=TAP_QUEUE)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        rules = aws.events()
        pattern = json.dumps({"source": ["jobwatch"]})
        rules.put_rule(Name=TAP_RULE, EventBusName=bus, EventPattern=pattern, State="ENABLED")
        rules.put_targets(Rule=TAP_RULE, EventBusName=bus, Targets=[{"Id": "demo-tap", "Arn": arn}])

    @staticmethod
    def stack_bus() -> str:
        """The stack's bus (the template's JobwatchEventBus): on the demo's own moto, the only one but
        `default`. (`LocalDeployment` keeps only the stack's environment, not its resources.)"""
        buses = [b["Name"] for b in aws.events().list_event_buses()["EventBuses"] if b["Name"] != "default"]
        if len(buses) != 1:
            raise SystemExit(f"demo: expected the stack's one event bus on moto, found {buses}")
        return str(buses[0])

    def drain(self) -> list[dict[str, Any]]:
        """Events that arrived since the last drain (deleted from the queue as they are read)."""
        sqs, new = aws.sqs(), []
        while True:
            batch = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                break
            for message in batch:
                new.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        self.events += new
        return new


@dataclass
class Observer:
    """Reads every destination and returns what is new since the last look, attributed to transitions."""

    deployment: LocalDeployment
    sink: SlackSink
    receiver: WebhookReceiver
    tap: BusTap
    _calls: int = 0
    _posts: int = 0
    _requests: int = 0
    _emails: int = 0

    def collect(self, transition_ids: list[str]) -> list[Seen]:
        calls = self.sink.api_calls()
        posts = self.sink.messages()
        requests = self.receiver.received()
        emails = self.deployment.emails()
        new_calls, self._calls = calls[self._calls :], len(calls)
        new_posts, self._posts = posts[self._posts :], len(posts)
        new_requests, self._requests = requests[self._requests :], len(requests)
        new_emails, self._emails = emails[self._emails :], len(emails)
        seen = slack_app_deliveries(new_calls, transition_ids)
        seen += [webhook_post(post, transition_ids) for post in new_posts]
        seen += [Seen(Dest.EMAIL, e.transition_id, e.subject) for e in new_emails]
        seen += [signed_request(request) for request in new_requests]
        seen += [bus_event(event) for event in self.tap.drain()]
        return seen


def slack_app_deliveries(calls: list[ApiCall], transition_ids: list[str]) -> list[Seen]:
    """One `Seen` per thread reply that took effect; `new thread` when its root was posted with it."""
    seen: list[Seen] = []
    new_roots: set[tuple[str, str]] = set()
    for call in calls:
        if not call.accepted or call.method != "chat.postMessage":
            continue
        channel = str(call.args.get("channel", ""))
        tid = transition_in(json.dumps(call.args, ensure_ascii=False), transition_ids)
        if not call.args.get("thread_ts"):
            new_roots.add((channel, tid))
            continue
        notes = ["new thread"] if (channel, tid) in new_roots else []
        if call.args.get("reply_broadcast") in (True, "true", "1", 1):
            notes.append("also in channel")
        dest = Dest(CHANNEL_NAMES[channel]) if channel in CHANNEL_NAMES else None
        if dest is None:
            raise SystemExit(f"demo: a Slack message went to channel {channel!r}, which no route names")
        seen.append(Seen(dest, tid, as_seen(str(call.args.get("text", ""))), ", ".join(notes)))
    return seen


def webhook_post(post: SinkMessage, transition_ids: list[str]) -> Seen:
    return Seen(Dest.SLACK_WEBHOOK, transition_in(post.raw, transition_ids), as_seen(post.text or ""))


def signed_request(request: Received) -> Seen:
    note = "verified" if request.verified else f"rejected: {request.reason}"
    return Seen(Dest.WEBHOOK, request.transition_id, note=note, ok=request.delivered)


def bus_event(event: dict[str, Any]) -> Seen:
    detail = event.get("detail") or {}
    return Seen(Dest.BUS, str(detail.get("transitionId", "")), note=str(event.get("detail-type", "")))
