"""All runtime settings in one model, read from the environment once per process.

Business logic receives a `Settings` instance; nothing else in the package reads `os.environ`.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ENV_PREFIX = "JOBWATCH_"
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    table: str = "jobwatch"
    """DynamoDB table holding jobs, transitions and delivery claims."""
    topic_arn: str = ""
    """SNS topic every transition is published to."""
    slack_webhook_secret: str = ""
    """Name of the Secrets Manager secret whose value is the Slack incoming-webhook URL."""
    slack_queue_url: str = ""
    """Queue the Slack sender consumes (used to delay redelivery after a 429, and by `jobwatch deliver`)."""
    slack_dlq_url: str = ""
    """Queue that receives Slack messages that failed permanently (400/403/404/410)."""
    email_topic_arn: str = ""
    """Topic of the alert e-mails: the e-mail sender publishes each routed transition to it once."""
    email_queue_url: str = ""
    """Queue the e-mail sender consumes (the transitions topic's e-mail events)."""
    email_dlq_url: str = ""
    """Queue that receives e-mail events that cannot be read."""
    poll_concurrency: int = Field(default=64, ge=1, le=1024)
    connect_timeout_s: float = Field(default=3.0, gt=0)
    read_timeout_s: float = Field(default=10.0, gt=0)
    deadline_margin_s: float = Field(default=15.0, ge=0)
    """Stop starting polls when less than this is left before the Lambda deadline."""
    retention_days: int = Field(default=30, ge=1)
    """How long terminal jobs stay readable before DynamoDB TTL removes them."""
    allow_http_loopback: bool = False
    """Accept plain-http endpoints on loopback addresses (local simulators, tests, demo)."""
    slack_min_interval_s: float = Field(default=1.0, ge=0)
    """Slack allows about one message per second per webhook."""
    slack_max_retry_after_s: float = Field(default=5.0, ge=0)
    """A 429 asking to wait longer than this is deferred through the queue, not slept through."""
    slack_max_attempts: int = Field(default=30, ge=1)
    """Posts tried (5xx, timeouts, no answer) before a message is dead-lettered as failed for good:
    30 tries spread over about 6 h 15 min ride out a Slack incident instead of paging an operator."""
    slack_retry_base_s: float = Field(default=30.0, ge=1)
    """Delay before the second attempt; it doubles per attempt up to 900 s (SQS's longest delay)."""
    slack_order_wait_s: float = Field(default=3600.0, ge=0)
    """Longest a transition waits for its job's previous one while that one is out of sight (no live
    claim, no standing deferred copy, not owed by the outbox); 0: never wait. Must exceed the queue's
    VisibilityTimeout x maxReceiveCount (365 s x 5): a predecessor the sender is still retrying
    stands as a deferred copy, so the successor waits for it however long its retries take."""
    slack_order_retry_s: float = Field(default=5.0, ge=1)
    """First re-check of a waiting transition; it doubles up to 60 s."""
    secret_cache_s: float = Field(default=300.0, ge=0)
    endpoint_concurrency: int = Field(default=16, ge=1, le=256)
    """Polls in flight against one endpoint (scheme://host:port), whatever the fleet size."""
    endpoint_max_rps: float | None = Field(default=None, gt=0)
    """Requests per second per endpoint; a source's documented limit (Zilliz: 20/s) applies anyway."""
    upstream_retry_after_max_s: float = Field(default=3600.0, ge=0)
    """Longest upstream `Retry-After` honoured: a misconfigured server cannot silence a job for days."""
    upstream_retry_wait_s: float = Field(default=5.0, ge=0)
    """A rate-limited endpoint's pause up to this long is waited out within the cycle; polls that
    would have to wait longer are skipped until a later cycle (nothing written, nothing counted)."""
    poll_period_s: float = Field(default=60.0, ge=0)
    """The schedule's period; adaptive polling spaces slow jobs by multiples of it. The template sets
    it as `JOBWATCH_POLL_PERIOD_MINUTES` from the same parameter as the schedule expression."""
    adaptive_polling: bool = True
    unreachable_after: int = Field(default=3, ge=1)
    """Consecutive poll errors before one UNREACHABLE (or AUTH_FAILED) notification."""
    lost_after: int = Field(default=3, ge=1)
    """Consecutive "no such job" answers before the job is LOST."""
    stall_after_s: float = Field(default=1800.0, gt=0)
    """A running job whose snapshot has not moved for this long is STALLED (per-job override)."""
    max_duration_s: float = Field(default=86400.0, gt=0)
    """A job running longer than this is OVERDUE (per-job override)."""
    endpoint_allowlist: tuple[str, ...] = ()
    """CIDRs and hostnames an endpoint may resolve into despite being private, loopback or reserved
    (comma-separated in `JOBWATCH_ENDPOINT_ALLOWLIST`); see `jobwatch.registration`."""

    @field_validator("endpoint_allowlist", mode="before")
    @classmethod
    def _split_allowlist(cls, value: object) -> object:
        """The environment carries one comma-separated string; entries are checked at registration."""
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

    @model_validator(mode="before")
    @classmethod
    def _period_in_minutes(cls, values: Any) -> Any:
        """The schedule is set in whole minutes; the code counts seconds (an explicit
        `JOBWATCH_POLL_PERIOD_S` wins, so a test or demo can compress time)."""
        if isinstance(values, dict) and values.get("poll_period_minutes") not in (None, ""):
            minutes = values.pop("poll_period_minutes")
            if values.get("poll_period_s") not in (None, ""):
                return values
            try:
                values["poll_period_s"] = float(minutes) * 60
            except (TypeError, ValueError):
                raise ValueError(f"poll period {minutes!r} is not a number of minutes") from None
        return values

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values = {
            name[len(ENV_PREFIX) :].lower(): value
            for name, value in env.items()
            if name.startswith(ENV_PREFIX)
        }
        return cls.model_validate(values)


@cache
def get_settings() -> Settings:
    """The process-wide settings (Lambda containers and CLI runs read them once)."""
    return Settings.from_env()
