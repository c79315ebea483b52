"""Every destination type behind stored routes, with faults of its own, and what each one received.

With `LabConfig.routes` on, each round stores `lab_routes` through the route store (`DynamoRouteStore`)
before its first cycle, so the notifier routes every transition by them instead of the defaults:

- `search-threads`: jobs labelled team=search -> a Slack app channel (bot token in Secrets Manager,
  the Web API of a second Slack sink: one living thread per job);
- `on-call`: FAILED, LOST, UNREACHABLE, AUTH_FAILED of any job -> another Slack app channel (with
  mentions) and the signed webhook;
- `ml-quiet` (`continue: false`): QUEUED and STARTED of team=ml jobs -> the EventBridge bus only;
  the routes after it (webhook, Slack webhook, e-mail) never see those;
- `machines`: team=ingest -> the signed webhook and the EventBridge bus (the webhook is reached through
  `on-call` too for alerts: it must get such a transition once);
- `everything`: every transition (but `ml-quiet`'s) -> the deployment's Slack webhook;
- `alert-email`: FAILED and CANCELED -> the alert e-mail topic.

Where each transition must arrive is computed from the same routes by the pure
`jobwatch.domain.routing` functions on the ground truth (`expected_destinations`).

Faults per destination: Slack Web API errors (`ok: false` words, HTTP 5xx, 429 `ratelimited`,
dropped connections, calls that took effect although the client saw a failure), EventBridge
PutEvents answers with `FailedEntryCount` (an internal failure or throttling of the entry), call
errors before the put and after it (the event is on the bus, the caller saw an error), and webhook
5xx, 429, dropped connections, answers slower than the poster's deadline (a timeout after the
receiver took the event) and slow answers within it. The Slack webhook and e-mail keep theirs
(`injectors.SINK_FAULTS`, `injectors.EmailTopic`).
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx
from botocore.exceptions import ClientError

from jobwatch.adapters.dynamodb.threads import DynamoThreadStore
from jobwatch.adapters.http.webhook_client import WebhookPoster
from jobwatch.channels.base import Channel, ChannelTuning
from jobwatch.channels.eventbridge import EventBridgeChannel
from jobwatch.channels.slack_app import SlackAppChannel
from jobwatch.channels.webhook import TRANSITION_ID_HEADER, WebhookChannel
from jobwatch.domain.model import JobSpec
from jobwatch.domain.routing import (
    DEFAULT_WEBHOOK_MARKER,
    AnyDestination,
    EmailDestination,
    EventBridgeDestination,
    Route,
    SlackAppDestination,
    WebhookDestination,
    evaluate,
)
from jobwatch.entrypoints.notifier import ChannelBook

from ..slack_sink import SinkResponse
from ..webhook_receiver import Answer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

__all__ = [
    "APP_FAULTS",
    "BOT_TOKEN_SECRET",
    "BUS_FAULTS",
    "HOOK_DEADLINE_S",
    "HOOK_FAULTS",
    "SIGNING_SECRET",
    "FlakyBus",
    "LabChannelBook",
    "WatchedPoster",
    "destination_names",
    "expected_destinations",
    "lab_routes",
    "script_app",
    "script_hook",
]

SEARCH_CHANNEL = "C0FLSEARCH1"
ONCALL_CHANNEL = "C0FLONCALL1"
ONCALL_GROUP = "<!subteam^S0FLONCALL>"
BOT_TOKEN_SECRET = "jobwatch/notify/faultlab-slack-bot"
SIGNING_SECRET = "jobwatch/notify/faultlab-webhook-key"
ALERT_EVENTS = ["FAILED", "LOST", "UNREACHABLE", "AUTH_FAILED"]
HOOK_DEADLINE_S = 1.0
"""The webhook poster's total deadline in the lab (10 s deployed): a timeout costs one second."""


def lab_routes(webhook_url: str, bus: str) -> list[Route]:
    """The routes every round stores (see the module docstring)."""
    app = {"type": "slack-app", "tokenSecret": BOT_TOKEN_SECRET}
    hook = {"type": "webhook", "url": webhook_url, "signingSecret": SIGNING_SECRET}
    events = {"type": "eventbridge", "bus": bus}
    documents: list[dict[str, Any]] = [
        {
            "name": "search-threads",
            "match": {"labels": [{"key": "team", "value": "search"}]},
            "destinations": [{**app, "channel": SEARCH_CHANNEL}],
        },
        {
            "name": "on-call",
            "match": {"events": ALERT_EVENTS},
            "destinations": [{**app, "channel": ONCALL_CHANNEL}, hook],
            "mentions": {"FAILED": [ONCALL_GROUP], "LOST": [ONCALL_GROUP]},
        },
        {
            "name": "ml-quiet",
            "match": {"labels": [{"key": "team", "value": "ml"}], "events": ["QUEUED", "STARTED"]},
            "destinations": [events],
            "continue": False,
        },
        {
            "name": "machines",
            "match": {"labels": [{"key": "team", "op": "matches", "value": "ing.*"}]},
            "destinations": [hook, events],
        },
        {
            "name": "everything",
            "destinations": [{"type": "slack-webhook", "webhookSecret": DEFAULT_WEBHOOK_MARKER}],
        },
        {
            "name": "alert-email",
            "match": {"events": ["FAILED", "CANCELED"]},
            "destinations": [{"type": "email"}],
        },
    ]
    return [Route.model_validate({**doc, "position": i}) for i, doc in enumerate(documents)]


def destination_names(routes: Sequence[Route]) -> dict[str, str]:
    """Destination id -> the name the summary uses (`slack-webhook`, `slack-app:C…`, `email`, ...)."""
    names: dict[str, str] = {}
    for r in routes:
        for d in r.destinations:
            names[d.id] = _name(d)
    return names


def _name(destination: AnyDestination) -> str:
    if isinstance(destination, SlackAppDestination):
        return f"slack-app:{destination.channel}"
    if isinstance(destination, EmailDestination):
        return "email"
    return str(destination.type)


def expected_destinations(routes: Sequence[Route], spec: JobSpec, event: str) -> list[str]:
    """The destination ids a transition of this job and event must reach (the pure router)."""
    deliveries, _ = evaluate(routes, spec, event)
    return [d.destination_id for d in deliveries]


# -- the notifier's channels, with the lab's clients ------------------------------------------------------


class LabChannelBook(ChannelBook):
    """`ChannelBook` whose Slack app threads, EventBridge client and webhook poster are the lab's:
    the round's DynamoDB client, a `FlakyBus`, a `WatchedPoster` with a short deadline."""

    def __init__(self, *args: Any, bus: FlakyBus, poster: WatchedPoster, dynamodb: DynamoDBClient, **kw: Any):
        super().__init__(*args, **kw)
        self.lab_bus = bus
        self.lab_poster = poster
        self.lab_dynamodb = dynamodb

    def _build_lazily(self, destination: AnyDestination, tuning: ChannelTuning) -> Channel:
        if isinstance(destination, SlackAppDestination):
            threads = DynamoThreadStore(self.lab_dynamodb, self.settings.table)
            return SlackAppChannel(destination, self.secrets, threads, tuning, base_url=self.slack_base_url)
        if isinstance(destination, EventBridgeDestination):
            return EventBridgeChannel(destination, self.lab_bus, tuning)
        if isinstance(destination, WebhookDestination):
            return WebhookChannel(destination, self.secrets, self.lab_poster, tuning)
        return super()._build_lazily(destination, tuning)


# -- EventBridge --------------------------------------------------------------------------------------------

BUS_FAULTS: dict[str, float] = {
    "entry-failed": 3,
    "entry-throttled": 2,
    "call-error-before": 2,
    "call-error-after": 1.5,
}
"""PutEvents faults: an entry failed (`FailedEntryCount` 1, InternalFailure), an entry throttled,
the call failing before the put, or after it (the event is on the bus, the caller saw an error)."""


class FlakyBus:
    """The events client the EventBridge channel sees: with faults on, `p` of the puts fail as
    `BUS_FAULTS` says. `ambiguous` counts, per transition, puts that reached the bus unanswered."""

    def __init__(self, real: Any, rng: random.Random, p: float) -> None:
        self.real = real
        self.rng = rng
        self.p = p
        self.faults = False
        self.lock = threading.Lock()
        self.ambiguous: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()

    def _draw(self) -> str | None:
        with self.lock:
            if not self.faults or self.rng.random() >= self.p:
                return None
            return self.rng.choices(list(BUS_FAULTS), weights=list(BUS_FAULTS.values()))[0]

    def put_events(self, *, Entries: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
        fault = self._draw()
        if fault is not None:
            with self.lock:
                self.injected[f"eventbridge:{fault}"] += 1
        if fault in ("entry-failed", "entry-throttled"):
            code = "InternalFailure" if fault == "entry-failed" else "ThrottlingException"
            failed = [{"ErrorCode": code, "ErrorMessage": "injected"} for _ in Entries]
            return {"FailedEntryCount": len(Entries), "Entries": failed}
        if fault == "call-error-before":
            raise _client_error("InternalException")
        answer: Mapping[str, Any] = self.real.put_events(Entries=list(Entries))
        if fault == "call-error-after":
            with self.lock:
                for entry in Entries:
                    self.ambiguous[_detail_tid(entry)] += 1
            raise _client_error("InternalException")
        return answer


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "injected"}}, "PutEvents")


def _detail_tid(entry: Mapping[str, Any]) -> str:
    return str(json.loads(str(entry.get("Detail") or "{}")).get("transitionId", ""))


# -- the signed webhook --------------------------------------------------------------------------------------

HOOK_FAULTS: dict[str, float] = {
    "500": 2,
    "502": 1,
    "503": 1.5,
    "429": 1.5,
    "drop": 1,
    "timeout": 0.6,
    "slow": 1,
}
"""Receiver answers: 5xx, 429 (Retry-After 1), a dropped connection, an answer after the poster's
deadline (the receiver took the event: a timeout the sender cannot tell from a loss), a slow 200."""


def hook_answer(name: str) -> Answer:
    if name == "drop":
        return Answer(drop=True)
    if name == "timeout":
        return Answer(delay_s=HOOK_DEADLINE_S + 0.5)
    if name == "slow":
        return Answer(delay_s=HOOK_DEADLINE_S / 4)
    return Answer(status=int(name), retry_after="1" if name == "429" else None)


def script_hook(rng: random.Random, receiver: Any, injected: Counter[str]) -> None:
    names = rng.choices(list(HOOK_FAULTS), weights=list(HOOK_FAULTS.values()), k=rng.randint(1, 2))
    receiver.script([hook_answer(n) for n in names])
    injected.update(f"webhook:{n}" for n in names)


class WatchedPoster:
    """The webhook poster (short deadline), noting per transition the posts answered 2xx as the
    sender saw them (`answered`); a post the receiver took but the sender saw fail is ambiguous."""

    def __init__(self, real: WebhookPoster) -> None:
        self.real = real
        self.lock = threading.Lock()
        self.answered: Counter[str] = Counter()

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
        response = self.real.post(url, body, headers)
        if 200 <= response.status_code < 300:
            with self.lock:
                self.answered[headers.get(TRANSITION_ID_HEADER, "")] += 1
        return response


# -- the Slack app ------------------------------------------------------------------------------------------

APP_FAULTS: dict[str, float] = {
    "ratelimited": 3,
    "internal_error": 2,
    "fatal_error": 1,
    "service_unavailable": 1,
    "drop": 1.5,
    "accept_then_drop": 1,
    "accept_then_500": 1,
}
"""Web API answers: 429 `ratelimited` (Retry-After 1), HTTP 500 `internal_error`, `ok: false`
`fatal_error` with HTTP 200 (unknown: retried), 503, a dropped connection, and calls that took effect
although the client saw a failure. Each for the next `chat.postMessage` or `chat.update`."""


def app_answer(name: str, method: str) -> SinkResponse:
    if name == "drop":
        return SinkResponse(0, "", drop=True, method=method)
    if name == "accept_then_drop":
        return SinkResponse(0, "", drop=True, record=True, method=method)
    if name == "accept_then_500":
        return SinkResponse.api_error("internal_error", status=500, record=True, method=method)
    status = {"internal_error": 500, "service_unavailable": 503}.get(name)
    return SinkResponse.api_error(name, method=method, status=status)


def script_app(rng: random.Random, sink: Any, injected: Counter[str]) -> None:
    names = rng.choices(list(APP_FAULTS), weights=list(APP_FAULTS.values()), k=rng.randint(1, 2))
    for name in names:
        method = "chat.update" if rng.random() < 0.3 else "chat.postMessage"
        sink.script([app_answer(name, method)])
        injected[f"slack-app:{name}:{method}"] += 1
