"""Routes: which transitions go where. Pure: no I/O, no rendering.

A route is a name, a match and destinations. Routes are evaluated in order; a transition goes to
every route that matches, and a route with `continue: false` stops the routes after it (as in
Alertmanager's route tree). A destination reached through several routes gets the transition once,
with the mentions of all of them. With no routes stored, the deployment's defaults apply, which are
exactly what jobwatch did before routes: everything to the default Slack webhook, the alert e-mail
events to the alert e-mail topic (`default_routes`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from jobwatch.domain.model import Event, JobSpec, Transition, WireModel
from jobwatch.domain.safe_regex import regex_problem
from jobwatch.domain.severity import SEVERITIES, severity_for
from jobwatch.domain.text import unsafe_character

ROUTE_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
NOTIFY_SECRET_PREFIX = "jobwatch/notify/"
"""Secrets of destinations (bot tokens, webhook URLs, signing secrets) live under this prefix: only
the notifier may read them, the poller is denied them (docs/decisions.md, D29)."""
SLACK_CHANNEL_PATTERN = r"^[CGD][A-Z0-9]{6,20}$"
MENTION_PATTERN = r"^(<@[UW][A-Z0-9]{2,20}>|<!subteam\^S[A-Z0-9]{2,20}>|<!here>|<!channel>)$"
EMAIL_PATTERN = r"^[^@\s<>,;]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$"
MAX_REGEX_CHARS = 200
MAX_DESTINATIONS = 10
MAX_ROUTES = 100
EVENT_NAMES = tuple(event.value for event in Event)

DEFAULT_SLACK = "slack"
"""Destination id of the deployment's default Slack webhook (the claims of jobwatch before routes)."""
DEFAULT_EMAIL = "email"
"""Destination id of the alert e-mail topic's standing subscribers."""


STRICT = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid")
"""Route documents refuse unknown fields: a typo in routes.yaml must not silently match everything."""


def _short_hash(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


class LabelOp(StrEnum):
    EQUALS = "equals"
    NOT_EQUALS = "not-equals"
    EXISTS = "exists"
    MATCHES = "matches"
    """A regular expression that must match the whole label value."""


class LabelMatch(WireModel):
    model_config = STRICT

    key: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    op: LabelOp = LabelOp.EQUALS
    value: str | None = Field(default=None, max_length=MAX_REGEX_CHARS)

    @model_validator(mode="after")
    def _value_fits_the_op(self) -> LabelMatch:
        if self.op is LabelOp.EXISTS:
            if self.value is not None:
                raise ValueError("`exists` takes no value")
            return self
        if self.value is None:
            raise ValueError(f"`{self.op.value}` needs a value")
        if self.op is LabelOp.MATCHES:
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {self.value!r}: {exc}") from None
            if (problem := regex_problem(self.value)) is not None:
                raise ValueError(f"regular expression {self.value!r} refused: {problem} (D38)")
        return self

    def test(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        if self.op is LabelOp.EXISTS:
            return present
        if self.op is LabelOp.NOT_EQUALS:
            return labels.get(self.key) != self.value
        if not present:
            return False
        if self.op is LabelOp.EQUALS:
            return labels[self.key] == self.value
        return _compiled(self.value or "").fullmatch(labels[self.key]) is not None

    def describe(self) -> str:
        if self.op is LabelOp.EXISTS:
            return f"label {self.key} exists"
        symbol = {"equals": "=", "not-equals": "!=", "matches": "=~"}[self.op.value]
        return f"label {self.key}{symbol}{self.value}"


_REGEX_CACHE: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    compiled = _REGEX_CACHE.get(pattern)
    if compiled is None:
        compiled = _REGEX_CACHE[pattern] = re.compile(pattern)
    return compiled


def _known_events(events: list[str] | None) -> list[str] | None:
    if events is None:
        return None
    unknown = [e for e in events if e not in EVENT_NAMES]
    if unknown:
        raise ValueError(f"unknown event {unknown[0]!r}; valid events: {', '.join(EVENT_NAMES)}")
    return list(dict.fromkeys(events))


class RouteMatch(WireModel):
    """What a transition must have for the route to take it; an absent field matches anything."""

    model_config = STRICT

    sources: list[str] | None = Field(default=None, max_length=20)
    labels: list[LabelMatch] = Field(default_factory=list, max_length=20)
    events: list[str] | None = Field(default=None, max_length=len(EVENT_NAMES))
    severities: list[str] | None = Field(default=None, max_length=len(SEVERITIES))

    _events = field_validator("events")(_known_events)

    @field_validator("severities")
    @classmethod
    def _known_severities(cls, severities: list[str] | None) -> list[str] | None:
        if severities is not None and (unknown := [s for s in severities if s not in SEVERITIES]):
            raise ValueError(f"unknown severity {unknown[0]!r}; valid: {', '.join(SEVERITIES)}")
        return severities

    def misses(self, source: str, labels: dict[str, str], event: str, severity: str) -> list[str]:
        """Why a transition does not match (empty: it matches)."""
        reasons = []
        if self.sources is not None and source not in self.sources:
            reasons.append(f"source {source} is not one of {', '.join(self.sources)}")
        if self.events is not None and event not in self.events:
            reasons.append(f"event {event} is not one of {', '.join(self.events)}")
        if self.severities is not None and severity not in self.severities:
            reasons.append(f"severity {severity} is not one of {', '.join(self.severities)}")
        reasons += [f"not: {m.describe()}" for m in self.labels if not m.test(labels)]
        return reasons


def _notify_secret(name: str) -> str:
    if not name.startswith(NOTIFY_SECRET_PREFIX) or len(name) > 512:
        raise ValueError(
            f"destination secrets live under {NOTIFY_SECRET_PREFIX!r} (only the notifier may read them)"
        )
    if (problem := unsafe_character(name)) is not None:
        raise ValueError(f"secret name contains {problem}")
    return name


class _Destination(WireModel):
    model_config = STRICT

    @property
    def id(self) -> str:
        raise NotImplementedError

    @property
    def secret_names(self) -> tuple[str, ...]:
        return ()


class SlackAppDestination(_Destination):
    """A Slack channel through a bot token (`chat:write`): one living thread per job."""

    type: Literal["slack-app"] = "slack-app"
    channel: str = Field(pattern=SLACK_CHANNEL_PATTERN, description="Channel id (C…, G…, D…).")
    token_secret: str = Field(
        description=f"Secret holding the bot token (xoxb-…), under {NOTIFY_SECRET_PREFIX}."
    )

    _secret = field_validator("token_secret")(_notify_secret)

    @property
    def id(self) -> str:
        return f"slack-app.{self.channel}"

    @property
    def secret_names(self) -> tuple[str, ...]:
        return (self.token_secret,)


class SlackWebhookDestination(_Destination):
    """A Slack incoming webhook: posts only (no threads, no edits)."""

    type: Literal["slack-webhook"] = "slack-webhook"
    webhook_secret: str = Field(description=f"Secret holding the webhook URL, under {NOTIFY_SECRET_PREFIX}.")

    @field_validator("webhook_secret")
    @classmethod
    def _secret(cls, name: str) -> str:
        return name if name == DEFAULT_WEBHOOK_MARKER else _notify_secret(name)

    @property
    def id(self) -> str:
        if self.webhook_secret == DEFAULT_WEBHOOK_MARKER:
            return DEFAULT_SLACK
        return f"slack-webhook.{_short_hash(self.webhook_secret)}"

    @property
    def secret_names(self) -> tuple[str, ...]:
        return () if self.webhook_secret == DEFAULT_WEBHOOK_MARKER else (self.webhook_secret,)


DEFAULT_WEBHOOK_MARKER = "(deployment default)"
"""`webhook_secret` of the deployment's own webhook (its secret is configured on the notifier)."""


class EmailDestination(_Destination):
    """E-mail through the alert e-mail topic. With addresses, each address is subscribed to the
    topic for this route only (it confirms once); without, the topic's standing subscribers."""

    type: Literal["email"] = "email"
    addresses: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, addresses: list[str]) -> list[str]:
        for address in addresses:
            if not re.match(EMAIL_PATTERN, address):
                raise ValueError(f"{address!r} is not an e-mail address")
        return sorted(set(addresses))

    @property
    def id(self) -> str:
        return f"email.{_short_hash(*self.addresses)}" if self.addresses else DEFAULT_EMAIL


class EventBridgeDestination(_Destination):
    """An EventBridge bus: normalized vector-database job events (docs/eventbridge.md)."""

    type: Literal["eventbridge"] = "eventbridge"
    bus: str = Field(default="default", max_length=1600, pattern=r"^[A-Za-z0-9/:._-]{1,1600}$")

    @property
    def id(self) -> str:
        return f"eventbridge.{_short_hash(self.bus)}"


class WebhookDestination(_Destination):
    """A signed HTTPS webhook: the transition event, with a timestamp and an HMAC-SHA256 signature."""

    type: Literal["webhook"] = "webhook"
    url: str = Field(min_length=1, max_length=2048, description="https URL; the endpoint rules apply.")
    signing_secret: str = Field(description=f"Secret holding the signing key, under {NOTIFY_SECRET_PREFIX}.")

    _secret = field_validator("signing_secret")(_notify_secret)

    @property
    def id(self) -> str:
        return f"webhook.{_short_hash(self.url)}"

    @property
    def secret_names(self) -> tuple[str, ...]:
        return (self.signing_secret,)


AnyDestination = (
    SlackAppDestination
    | SlackWebhookDestination
    | EmailDestination
    | EventBridgeDestination
    | WebhookDestination
)
Destination = Annotated[AnyDestination, Field(discriminator="type")]


class Route(WireModel):
    model_config = STRICT

    name: str = Field(pattern=ROUTE_NAME_PATTERN, description="Unique route name.")
    match: RouteMatch = Field(default_factory=RouteMatch)
    destinations: list[Destination] = Field(min_length=1, max_length=MAX_DESTINATIONS)
    continue_: bool = Field(default=True, alias="continue", description="false: later routes are not tried.")
    mentions: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Per event, who to mention in Slack (`<!subteam^S…>`, `<@U…>`, `<!here>`).",
    )
    position: int = Field(default=0, ge=0, description="Evaluation order (lower first; ties by name).")

    @field_validator("mentions")
    @classmethod
    def _mentions(cls, mentions: dict[str, list[str]]) -> dict[str, list[str]]:
        _known_events(list(mentions))
        for event, who in mentions.items():
            for mention in who:
                if not re.match(MENTION_PATTERN, mention):
                    raise ValueError(
                        f"{event}: {mention!r} is not a Slack mention (<@U…>, <!subteam^S…>, <!here>)"
                    )
        return mentions

    @model_validator(mode="after")
    def _one_destination_each(self) -> Route:
        ids = [d.id for d in self.destinations]
        if len(ids) != len(set(ids)):
            raise ValueError("a destination is listed twice")
        return self


@dataclass
class Delivery:
    """One destination a transition goes to, and why."""

    destination: Destination
    routes: list[str] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)

    @property
    def destination_id(self) -> str:
        return self.destination.id


def ordered(routes: Iterable[Route]) -> list[Route]:
    return sorted(routes, key=lambda r: (r.position, r.name))


@dataclass(frozen=True)
class Verdict:
    """What one route made of a transition (for `jobwatch routes explain`)."""

    route: str
    matched: bool
    reasons: tuple[str, ...]
    stopped_here: bool = False
    skipped: bool = False
    """An earlier route with `continue: false` matched: this one was not tried."""


def evaluate(
    routes: Sequence[Route], spec: JobSpec, event: str, severity: str | None = None
) -> tuple[list[Delivery], list[Verdict]]:
    """The deliveries of a transition of this job and event, and each route's verdict."""
    severity = severity or severity_for(event)
    deliveries: dict[str, Delivery] = {}
    verdicts: list[Verdict] = []
    stopped = False
    for route in ordered(routes):
        if stopped:
            verdicts.append(
                Verdict(route.name, False, ("an earlier route has continue: false",), skipped=True)
            )
            continue
        misses = route.match.misses(spec.source, spec.labels, event, severity)
        if misses:
            verdicts.append(Verdict(route.name, False, tuple(misses)))
            continue
        for destination in route.destinations:
            delivery = deliveries.setdefault(destination.id, Delivery(destination))
            delivery.routes.append(route.name)
            for mention in route.mentions.get(event, []):
                if mention not in delivery.mentions:
                    delivery.mentions.append(mention)
        stopped = not route.continue_
        verdicts.append(Verdict(route.name, True, ("matches",), stopped_here=stopped))
    return list(deliveries.values()), verdicts


def route(routes: Sequence[Route], transition: Transition) -> list[Delivery]:
    """Where one transition goes."""
    deliveries, _ = evaluate(routes, transition.job, str(transition.event), transition.severity)
    return deliveries


def default_routes(email_events: Iterable[str]) -> list[Route]:
    """The deployment's behaviour when no route is stored: every transition to the default Slack
    webhook, the alert e-mail events (and TEST) to the alert e-mail topic."""
    events = list(dict.fromkeys([*email_events, "TEST"]))
    return [
        Route(
            name="default-slack",
            destinations=[SlackWebhookDestination(webhook_secret=DEFAULT_WEBHOOK_MARKER)],
        ),
        Route(
            name="default-email",
            match=RouteMatch(events=events),
            destinations=[EmailDestination()],
            position=1,
        ),
    ]
