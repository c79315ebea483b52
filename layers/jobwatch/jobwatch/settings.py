"""Settings per function, read from the environment once per process.

Each Lambda function reads only the model it needs (`PollerSettings`, `NotifierSettings`,
`ApiSettings`), and what it cannot work without is required: a function
deployed without its topic ARN or queue URL stops at cold start with one line naming the variable
(`SettingsError`), instead of starting and failing on the first message. Business logic receives a
settings instance; nothing else in the package reads `os.environ`.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from functools import cache
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ENV_PREFIX = "JOBWATCH_"
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)

SettingsT = TypeVar("SettingsT", bound="EnvSettings")


class SettingsError(Exception):
    """A setting is missing or invalid. `str()` is one line that names the environment variable."""


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


class EnvSettings(BaseModel):
    """Reading `JOBWATCH_*` variables into a frozen model, with one-line errors."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def from_env(cls: type[SettingsT], environ: Mapping[str, str] | None = None) -> SettingsT:
        """The settings from `JOBWATCH_*` variables, or SettingsError naming the first bad one."""
        env = os.environ if environ is None else environ
        values = {
            name[len(ENV_PREFIX) :].lower(): value
            for name, value in env.items()
            if name.startswith(ENV_PREFIX) and value != ""
        }
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise SettingsError(_describe(cls, exc)) from None


class StoreSettings(EnvSettings):
    """What every function with state reads: the table, and how long finished jobs and cached secrets
    live."""

    table: str = Field(
        min_length=1, description="DynamoDB table holding jobs, transitions, delivery claims and watches."
    )
    retention_days: int = Field(default=30, ge=1)
    """How long terminal jobs stay readable before DynamoDB TTL removes them."""
    secret_cache_s: float = Field(default=300.0, ge=0)
    """How long a secret's value is reused before Secrets Manager is asked again."""
    poll_shards: int = Field(default=1, ge=1, le=1000)
    """K: how many `pollShard` values (index partitions, and workers' shards) active jobs spread over
    (D44). After changing it, `jobwatch upgrade` moves the jobs already tracked."""
    endpoint_spread: int = Field(default=4, ge=1, le=64)
    """How many shards one endpoint's jobs spread over; each holds that share of the endpoint's limits
    (never below one poll in flight: with `endpoint_concurrency` below the spread, up to `spread` polls
    of one endpoint may be in flight at once)."""


def _describe(model: type[BaseModel], exc: ValidationError) -> str:
    """One line for the first problem: the variable, and why the function needs it."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else ""
    if not field:  # a model-level validator: its message names the variable itself
        return str(error["msg"]).removeprefix("Value error, ")
    why = (model.model_fields[field].description or "") if field in model.model_fields else ""
    if error["type"] == "missing":
        return f"{env_name(field)} is not set" + (f": {why}" if why else "")
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{env_name(field)} is invalid: {message}"


class EndpointSettings(EnvSettings):
    """The endpoint rules: registration and the poller must agree on them."""

    allow_http_loopback: bool = False
    """Accept plain-http endpoints on loopback addresses (local simulators, tests, demo)."""
    endpoint_allowlist: tuple[str, ...] = ()
    """CIDRs and hostnames an endpoint may resolve into despite being private, loopback or reserved
    (comma-separated in `JOBWATCH_ENDPOINT_ALLOWLIST`); see `jobwatch.domain.endpoints`."""

    @field_validator("endpoint_allowlist", mode="before")
    @classmethod
    def _split_allowlist(cls, value: object) -> object:
        """The environment carries one comma-separated string; entries are checked here."""
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list | tuple):
            return value
        entries = tuple(str(entry).strip().lower().rstrip(".") for entry in value)
        for entry in entries:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                if not _HOSTNAME.match(entry):
                    raise ValueError(f"allow-list entry {entry!r} is neither a CIDR nor a hostname") from None
        return entries


class UpstreamSettings(EndpointSettings):
    """How upstream status APIs are called (the poller, discovery and `jobwatch check`)."""

    connect_timeout_s: float = Field(default=3.0, gt=0)
    read_timeout_s: float = Field(default=10.0, gt=0)
    endpoint_concurrency: int = Field(default=16, ge=1, le=256)
    """Polls in flight against one endpoint (scheme://host:port), whatever the fleet size."""
    endpoint_max_rps: float | None = Field(default=None, gt=0)
    """Requests per second per endpoint; a source's documented limit (Zilliz: 20/s) applies anyway."""
    upstream_retry_after_max_s: float = Field(default=3600.0, ge=0)
    """Longest upstream `Retry-After` honoured: a misconfigured server cannot silence a job for days."""
    upstream_deadline_s: float = Field(default=15.0, gt=0)
    """Longest one upstream answer may take in all: connect, headers and the whole body (a server
    dripping one byte at a time is cut off here; the read timeout alone restarts on every byte)."""
    upstream_max_body_bytes: int = Field(default=1_048_576, ge=1024)
    """Largest decoded answer read (status bodies are a few KiB): a compression bomb stops here."""
    upstream_retry_wait_s: float = Field(default=5.0, ge=0)
    """A rate-limited endpoint's pause up to this long is waited out within the cycle; polls that
    would have to wait longer are skipped until a later cycle (nothing written, nothing counted)."""


class PollerSettings(StoreSettings, UpstreamSettings):
    """The scheduled poller."""

    topic_arn: str = Field(min_length=1, description="SNS topic every transition is published to.")
    poll_concurrency: int = Field(default=64, ge=1, le=1024)
    deadline_margin_s: float = Field(default=15.0, ge=0)
    """Stop starting polls when less than this is left before the Lambda deadline."""
    poll_period_s: float = Field(default=60.0, ge=0)
    """The schedule's period; adaptive polling spaces slow jobs by multiples of it. The template sets
    it as `JOBWATCH_POLL_PERIOD_MINUTES` from the same parameter as the schedule expression."""
    adaptive_polling: bool = True
    unreachable_after: int = Field(default=3, ge=1)
    """Consecutive poll errors before one UNREACHABLE (or AUTH_FAILED) notification."""
    lost_after: int = Field(default=3, ge=1)
    """Consecutive "no such job" answers before the job is LOST."""
    progress_write_interval_s: float = Field(default=300.0, ge=0)
    """A running job whose counters moved (nothing else) is written at most this often (D40)."""
    stall_after_s: float = Field(default=1800.0, gt=0)
    """A running job whose snapshot has not moved for this long is STALLED (per-job override)."""
    max_duration_s: float = Field(default=86400.0, gt=0)
    """A job running longer than this is OVERDUE (per-job override)."""
    shard_queue_url: str | None = None
    """Fan-out (D44): the queue the scheduled poller puts one order per shard on, for the poll workers.
    None: the scheduled poller polls every shard itself, in one invocation (small fleets)."""

    @model_validator(mode="before")
    @classmethod
    def _period_in_minutes(cls, values: Any) -> Any:
        """The schedule is set in whole minutes; the code counts seconds (an explicit
        `JOBWATCH_POLL_PERIOD_S` wins, so a test or demo can compress time)."""
        if isinstance(values, dict) and values.get("poll_period_minutes") not in (None, ""):
            values = dict(values)
            minutes = values.pop("poll_period_minutes")
            if values.get("poll_period_s") not in (None, ""):
                return values
            try:
                values["poll_period_s"] = float(minutes) * 60
            except (TypeError, ValueError):
                raise ValueError(
                    f"{env_name('poll_period_minutes')} is invalid: {minutes!r} is not a number of minutes"
                ) from None
        return values


def _comma_separated(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class NotifierSettings(StoreSettings, EndpointSettings):
    """The notifier: every transition, routed to its destinations (docs/decisions.md, D34)."""

    notify_queue_url: str = Field(
        min_length=1, description="Queue the notifier consumes; waiting and retried deliveries go back on it."
    )
    notify_dlq_url: str = Field(
        min_length=1, description="Queue that receives deliveries that failed for good, with the reason."
    )
    email_topic_arn: str = Field(
        min_length=1, description="Topic of the alert e-mails: each e-mail destination publishes to it once."
    )
    slack_webhook_secret: str | None = None
    """Secret (name or ARN) holding the deployment's own Slack incoming-webhook URL: the default route's
    destination. None: the default routes post to no Slack."""
    alert_email_events: tuple[str, ...] = ("FAILED", "CANCELED")
    """What the default routes e-mail (the template's AlertEmailEvents; TEST always)."""
    slack_api_url: str | None = None
    """Base URL of the Slack Web API for Slack app destinations (None: https://slack.com/api/); the
    sandbox and the demo point it at the local Slack stand-in."""
    routes_cache_s: float = Field(default=30.0, ge=0)
    """How long the notifier reuses the routes it read: an edited route applies within this."""
    slack_min_interval_s: float = Field(default=1.0, ge=0)
    """Slack allows about one message per second per webhook or channel."""
    delivery_max_retry_after_s: float = Field(default=5.0, ge=0)
    """A 429 asking to wait longer than this is deferred through the queue, not slept through."""
    delivery_max_attempts: int = Field(default=30, ge=1)
    """Sends tried (5xx, timeouts, no answer) before a delivery is dead-lettered as failed for good:
    30 tries spread over about 6 h 15 min ride out an incident instead of paging an operator."""
    delivery_retry_base_s: float = Field(default=30.0, ge=1)
    """Delay before the second attempt; it doubles per attempt up to 900 s (SQS's longest delay)."""
    delivery_order_wait_s: float = Field(default=3600.0, ge=0)
    """Longest a transition waits for its job's previous one while that one is out of sight (no live
    claim, no standing deferred copy, not owed by the outbox); 0: never wait. Must exceed the queue's
    VisibilityTimeout x maxReceiveCount (365 s x 5): a predecessor still being retried stands as a
    deferred copy, so the successor waits for it however long its retries take."""
    delivery_order_retry_s: float = Field(default=5.0, ge=1)
    """First re-check of a waiting transition; it doubles up to 60 s."""
    email_max_attempts: int = Field(default=10, ge=1)
    """Publishes tried before an e-mail is dead-lettered (30 s doubling to 900 s: about 1 h 15 min)."""
    email_retry_base_s: float = Field(default=30.0, ge=1)

    _notified_events = field_validator("alert_email_events", mode="before")(_comma_separated)

    @model_validator(mode="before")
    @classmethod
    def _former_names(cls, values: Any) -> Any:
        """Read the delivery settings under their first names too (`JOBWATCH_SLACK_MAX_ATTEMPTS`
        ...: they applied to every destination but e-mail all along); the new name wins."""
        if not isinstance(values, dict):
            return values
        values = dict(values)
        for former, current in FORMER_DELIVERY_NAMES.items():
            if former in values:
                values.setdefault(current, values.pop(former))
        return values


FORMER_DELIVERY_NAMES = {
    "slack_max_attempts": "delivery_max_attempts",
    "slack_retry_base_s": "delivery_retry_base_s",
    "slack_order_wait_s": "delivery_order_wait_s",
    "slack_order_retry_s": "delivery_order_retry_s",
    "slack_max_retry_after_s": "delivery_max_retry_after_s",
}
"""Settings renamed when the notifier took over every destination: old name -> new name."""


class ApiSettings(StoreSettings, EndpointSettings):
    """The registration API (and the CLI commands that share its operations)."""

    topic_arn: str = Field(min_length=1, description="SNS topic the API publishes TEST notifications to.")
    email_topic_arn: str | None = None
    """The alert e-mail topic: each address of a route's e-mail destination is subscribed to it with a
    filter on that destination. Optional: without it, e-mail destinations with addresses are refused."""
    alert_email_events: tuple[str, ...] = ("FAILED", "CANCELED")
    """The deployment's `AlertEmailEvents` (comma-separated in `JOBWATCH_ALERT_EMAIL_EVENTS`): what the
    default routes e-mail when no route is stored (`jobwatch routes explain` shows them)."""

    event_buses: tuple[str, ...] = ()
    """The EventBridge buses the notifier may put events on (comma-separated in
    `JOBWATCH_EVENT_BUSES`; the template gives the stack's bus and `default`, as the notifier's
    policy does): a route naming another bus is refused instead of dead-lettering every event on
    AccessDenied. Empty: not checked."""

    _emailed_events = field_validator("alert_email_events", mode="before")(_comma_separated)
    _buses = field_validator("event_buses", mode="before")(_comma_separated)


@cache
def load_settings(kind: type[SettingsT]) -> SettingsT:
    """The process-wide settings of one kind (Lambda containers and CLI runs read them once)."""
    return kind.from_env()


class SlackInteractionSettings(StoreSettings):
    """The Slack interactivity endpoint: the buttons of a job's Slack root message (docs/decisions.md,
    D46). It reads the jobs table and one secret, and calls nothing but Slack's response URLs."""

    slack_signing_secret: str = Field(
        min_length=1,
        description="Secret (name or ARN) holding the Slack app's signing secret: every request is "
        "verified with it before anything else.",
    )
    slack_response_url_prefix: str = "https://hooks.slack.com/"
    """An interaction's `response_url` is followed (to update the message) only under this prefix;
    https, or http on a loopback address for local runs."""
    slack_response_timeout_s: float = Field(default=1.5, gt=0, le=2.5)
    """Longest the message update may take: Slack wants the whole answer within 3 s."""

    @field_validator("slack_response_url_prefix")
    @classmethod
    def _https_or_loopback(cls, value: str) -> str:
        if not _https_or_loopback_prefix(value):
            raise ValueError(f"{value!r} is not an https:// (or loopback http://) URL prefix ending in /")
        return value


def _https_or_loopback_prefix(value: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    host = parts.hostname or ""
    if not host or not value.endswith("/"):
        return False
    if parts.scheme == "https":
        return True
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
    return parts.scheme == "http" and loopback
