"""One round's routed destinations (`RouteRig`): the routes and destination secrets stored, a tap on
the EventBridge bus, the channels the notifier gets (`LabChannelBook`), the faults scripted before
batches, and what the Slack app channels, the bus and the webhook received (`routed.Seen`)."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import TYPE_CHECKING, Any

import httpx

from jobwatch.adapters.dynamodb.routes import DynamoRouteStore
from jobwatch.adapters.http.webhook_client import WebhookPoster
from jobwatch.domain.routing import Route, SlackAppDestination
from jobwatch.settings import NotifierSettings

from ..slack_sink import SlackSink
from ..webhook_receiver import WebhookReceiver
from .config import LabConfig
from .destinations import (
    BOT_TOKEN_SECRET,
    HOOK_DEADLINE_S,
    SIGNING_SECRET,
    FlakyBus,
    LabChannelBook,
    WatchedPoster,
    lab_routes,
    script_app,
    script_hook,
)
from .injectors import CLIENT_CONFIG, Container, EmailTopic
from .invariants import TID_IN_SLACK
from .routed import Seen, mark_ambiguous

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_dynamodb.client import DynamoDBClient

__all__ = ["RouteRig"]

TAP_RULE = "faultlab-tap"


class RouteRig:
    """See the module docstring; `install()` before the round's first cycle."""

    def __init__(
        self,
        *,
        number: int,
        config: LabConfig,
        session: boto3.session.Session,
        settings: NotifierSettings,
        dynamodb: DynamoDBClient,
        app_sink: SlackSink,
        receiver: WebhookReceiver,
    ) -> None:
        self.number = number
        self.config = config
        self.session = session
        self.settings = settings
        self.dynamodb = dynamodb
        self.app_sink = app_sink
        self.receiver = receiver
        self.sqs = session.client("sqs", config=CLIENT_CONFIG)
        self.events = session.client("events", config=CLIENT_CONFIG)
        self.bus = FlakyBus(self.events, random.Random(f"{config.seed}:bus:{number}"), config.bus_error_p)
        self.poster = WatchedPoster(WebhookPoster(settings, deadline_s=HOOK_DEADLINE_S))
        self.routes: list[Route] = []
        self.tap_url = ""
        self.bus_events: list[dict[str, Any]] = []

    def install(self) -> None:
        """Destination secrets, the tap on the stack's bus, then the routes (through the route store)."""
        self.app_sink.reset()
        self.receiver.reset()
        secrets = self.session.client("secretsmanager", config=CLIENT_CONFIG)
        secrets.create_secret(Name=BOT_TOKEN_SECRET, SecretString=self.app_sink.bot_token)
        secrets.create_secret(Name=SIGNING_SECRET, SecretString=self.receiver.secret)
        bus = self._stack_bus()
        self._tap(bus)
        self.routes = lab_routes(self.receiver.url, bus)
        store = DynamoRouteStore(self.dynamodb, self.settings.table)
        for r in self.routes:
            store.put(r)
        if store.list() != self.routes:
            raise RuntimeError("the stored routes differ from the lab's")

    def _stack_bus(self) -> str:
        buses = [b["Name"] for b in self.events.list_event_buses()["EventBuses"] if b["Name"] != "default"]
        if len(buses) == 1:
            return str(buses[0])
        name = f"faultlab-bus-{self.number}"
        self.events.create_event_bus(Name=name)
        return name

    def _tap(self, bus: str) -> None:
        """A rule matching every jobwatch event on the bus, with an SQS queue as its target."""
        self.tap_url = self.sqs.create_queue(QueueName=f"faultlab-bus-tap-{self.number}")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.tap_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        pattern = json.dumps({"source": ["jobwatch"]})
        self.events.put_rule(Name=TAP_RULE, EventBusName=bus, EventPattern=pattern, State="ENABLED")
        self.events.put_targets(Rule=TAP_RULE, EventBusName=bus, Targets=[{"Id": "tap", "Arn": arn}])

    # -- the notifier's side ------------------------------------------------------------------------------

    def book(self, container: Container, http: httpx.Client, email_topic: EmailTopic) -> LabChannelBook:
        return LabChannelBook(
            self.settings,
            container.secrets,
            self.app_sink.api_url,
            email_publisher=email_topic,
            http=http,
            bus=self.bus,
            poster=self.poster,
            dynamodb=container.dynamodb,
        )

    def before_batch(self, rng: random.Random, injected: Counter[str]) -> None:
        """Script the Slack Web API and the webhook receiver, each only when nothing is pending."""
        if rng.random() < self.config.p_app_script and not self.app_sink.pending_script():
            script_app(rng, self.app_sink, injected)
        if rng.random() < self.config.p_hook_script and not self.receiver.pending_script():
            script_hook(rng, self.receiver, injected)

    # -- what arrived -----------------------------------------------------------------------------------

    def seen(self, problems: list[str]) -> dict[str, list[Seen]]:
        """Per destination id: the Slack app channels' thread replies, the bus's events, the webhook's
        verified 2xx requests (each as the sender saw it)."""
        out: dict[str, list[Seen]] = {}
        for r in self.routes:
            for d in r.destinations:
                if isinstance(d, SlackAppDestination):
                    out[d.id] = self._replies(d.channel, problems)
                elif d.type == "eventbridge":
                    out[d.id] = mark_ambiguous(self._bus_tids(), self.bus.ambiguous)
                elif d.type == "webhook":
                    out[d.id] = self._hook_seen()
        return out

    def _replies(self, channel: str, problems: list[str]) -> list[Seen]:
        out = []
        for call in self.app_sink.api_calls("chat.postMessage"):
            if not call.accepted or call.args.get("channel") != channel or not call.args.get("thread_ts"):
                continue
            found = TID_IN_SLACK.search(json.dumps(call.args))
            if found is None:
                problems.append(f"slack-app:{channel}: a reply without a transition id")
                continue
            out.append(Seen(found.group(1), clean=call.ok and call.status == 200))
        return out

    def _bus_tids(self) -> list[str]:
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.tap_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not batch:
                break
            for message in batch:
                self.bus_events.append(json.loads(message["Body"]))
            self.sqs.delete_message_batch(
                QueueUrl=self.tap_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )
        return [str((e.get("detail") or {}).get("transitionId", "")) for e in self.bus_events]

    def _hook_seen(self) -> list[Seen]:
        delivered = [r.transition_id for r in self.receiver.deliveries()]
        total = Counter(delivered)
        unanswered = {tid: n - self.poster.answered[tid] for tid, n in total.items()}
        return mark_ambiguous(delivered, unanswered)

    def refused(self) -> dict[str, int]:
        """Per destination id: sends it refused as malformed or unauthentic (never expected; a
        scripted `fatal_error` is a fault, not a refusal)."""
        out: dict[str, int] = {}
        calls = self.app_sink.api_calls()
        for r in self.routes:
            for d in r.destinations:
                if isinstance(d, SlackAppDestination):
                    out[d.id] = sum(1 for c in calls if c.args.get("channel") == d.channel and _refused(c))
                elif d.type == "webhook":
                    out[d.id] = len(self.receiver.rejected())
        return out


def _refused(call: Any) -> bool:
    return bool(call.status == 200 and call.error not in (None, "fatal_error"))
