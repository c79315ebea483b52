"""All runtime settings in one model, read from the environment once per process.

Business logic receives a `Settings` instance; nothing else in the package reads `os.environ`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache

from pydantic import BaseModel, ConfigDict, Field

ENV_PREFIX = "JOBWATCH_"


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
    """A 429 asking to wait longer than this is retried through SQS visibility, not by sleeping."""
    secret_cache_s: float = Field(default=300.0, ge=0)

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
