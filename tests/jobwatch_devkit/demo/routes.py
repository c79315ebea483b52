"""The routes the demo configures through the API, and, written out separately, where each transition
must therefore arrive (the self-check compares the two; it does not ask jobwatch's router).

- `search-threads`: jobs labelled team=search -> the team's Slack channel, one living thread per job
  (Slack app: bot token in a secret under jobwatch/notify/);
- `on-call`: FAILED and LOST of any job -> the on-call channel, mentioning the on-call group;
- `everything`: every transition -> a signed webhook (verified by the devkit receiver), the stack's
  EventBridge bus, and the deployment's own Slack webhook (what every transition did before routes);
- `alert-email`: FAILED and CANCELED -> the alert e-mail topic's subscribers (the default before routes).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from jobwatch.domain.model import Transition
from jobwatch.domain.routing import DEFAULT_WEBHOOK_MARKER

from .scenario import TEAM

TEAM_CHANNEL = "C0SEARCH01"
ONCALL_CHANNEL = "C0ONCALL01"
CHANNEL_NAMES = {TEAM_CHANNEL: "#search", ONCALL_CHANNEL: "#oncall"}
ONCALL_GROUP = "<!subteam^S0ONCALL>"
GROUP_HANDLES = {ONCALL_GROUP: "@oncall"}
BOT_TOKEN_SECRET = "jobwatch/notify/demo-slack-bot"
WEBHOOK_KEY_SECRET = "jobwatch/notify/demo-webhook-key"
ONCALL_EVENTS = ("FAILED", "LOST")
EMAIL_EVENTS = ("FAILED", "CANCELED")
BROADCAST_EVENTS = frozenset({"FAILED", "LOST", "STALLED"})
"""Thread replies Slack also shows in the channel (docs/decisions.md, D35)."""


class Dest(StrEnum):
    """Where the demo looks for deliveries, named as the timeline shows them."""

    TEAM = CHANNEL_NAMES[TEAM_CHANNEL]
    ONCALL = CHANNEL_NAMES[ONCALL_CHANNEL]
    SLACK_WEBHOOK = "Slack webhook"
    EMAIL = "e-mail"
    WEBHOOK = "signed webhook"
    BUS = "EventBridge"


def routes_document(webhook_url: str, bus: str) -> dict[str, Any]:
    """The body of `PUT /routes` (what `jobwatch routes apply routes.yaml` sends)."""
    slack_app = {"type": "slack-app", "tokenSecret": BOT_TOKEN_SECRET}
    return {
        "routes": [
            {
                "name": "search-threads",
                "match": {"labels": [{"key": "team", "value": TEAM}]},
                "destinations": [{**slack_app, "channel": TEAM_CHANNEL}],
            },
            {
                "name": "on-call",
                "match": {"events": list(ONCALL_EVENTS)},
                "destinations": [{**slack_app, "channel": ONCALL_CHANNEL}],
                "mentions": {event: [ONCALL_GROUP] for event in ONCALL_EVENTS},
            },
            {
                "name": "everything",
                "destinations": [
                    {"type": "webhook", "url": webhook_url, "signingSecret": WEBHOOK_KEY_SECRET},
                    {"type": "eventbridge", "bus": bus},
                    {"type": "slack-webhook", "webhookSecret": DEFAULT_WEBHOOK_MARKER},
                ],
            },
            {
                "name": "alert-email",
                "match": {"events": list(EMAIL_EVENTS)},
                "destinations": [{"type": "email"}],
            },
        ]
    }


def expected_destinations(t: Transition) -> set[Dest]:
    """Where the routes above must deliver this transition, each exactly once."""
    wanted = {Dest.WEBHOOK, Dest.BUS, Dest.SLACK_WEBHOOK}
    if t.job.labels.get("team") == TEAM:
        wanted.add(Dest.TEAM)
    if t.event in ONCALL_EVENTS:
        wanted.add(Dest.ONCALL)
    if t.event in EMAIL_EVENTS:
        wanted.add(Dest.EMAIL)
    return wanted


# -- describing stored routes (GET /routes) -----------------------------------------------------------


def describe_match(match: dict[str, Any]) -> str:
    parts = []
    for label in match.get("labels") or []:
        symbol = {"equals": "=", "not-equals": "!=", "matches": "=~"}.get(label.get("op", "equals"), " ")
        parts.append(f"label {label['key']}{symbol}{label.get('value') or ''}".rstrip())
    if match.get("events"):
        parts.append("events " + ", ".join(match["events"]))
    if match.get("sources"):
        parts.append("sources " + ", ".join(match["sources"]))
    return "; ".join(parts) or "every transition"


def describe_destination(destination: dict[str, Any]) -> str:
    kind = destination.get("type")
    if kind == "slack-app":
        return f"{CHANNEL_NAMES.get(destination['channel'], destination['channel'])} (Slack app, threads)"
    if kind == "slack-webhook":
        default = destination.get("webhookSecret") == DEFAULT_WEBHOOK_MARKER
        return "Slack webhook (deployment default)" if default else "Slack webhook"
    if kind == "email":
        return "e-mail (alert topic)"
    if kind == "webhook":
        return "signed webhook"
    if kind == "eventbridge":
        return f"EventBridge {destination.get('bus', 'default')}"
    return str(kind)


def describe_route(route: dict[str, Any]) -> tuple[str, str, str]:
    """(name, match, destinations and mentions) of a route document, for the routes table."""
    targets = ", ".join(describe_destination(d) for d in route.get("destinations", []))
    mentioned = sorted({as_seen(m) for who in (route.get("mentions") or {}).values() for m in who})
    if mentioned:
        targets += " mentioning " + ", ".join(mentioned)
    return route["name"], describe_match(route.get("match") or {}), targets


_MENTION = re.compile(r"<(@[UW][A-Z0-9]+|!subteam\^[A-Z0-9]+|!here|!channel|!everyone)(?:\|[^>]*)?>")


def as_seen(text: str) -> str:
    """Slack text as a person reads it: mentions as handles, `&lt;` and friends decoded."""

    def handle(match: re.Match[str]) -> str:
        return GROUP_HANDLES.get(match.group(0), "@" + match.group(1).lstrip("@!"))

    plain = _MENTION.sub(handle, text)
    return plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
