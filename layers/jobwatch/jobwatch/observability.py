"""The one place that sets up logging, tracing and metrics (Powertools).

Structured JSON logs; every line about a job carries `jobKey`, `jobId` and `source` through
`job_fields()`, passed per call because polls run concurrently and must not share appended keys.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from jobwatch.domain.model import JobSpec

SERVICE = "jobwatch"
NAMESPACE = "Jobwatch"

# stderr: in Lambda both streams reach CloudWatch; locally stdout stays free for command output.
# ASCII-only JSON: upstream text in a log line (an error, a job id) can carry bidi overrides or other
# invisible characters; escaped as \uXXXX they can neither reorder nor hide what a reader sees.
logger = Logger(
    service=SERVICE,
    logger_handler=logging.StreamHandler(sys.stderr),
    json_serializer=functools.partial(json.dumps, default=str, separators=(",", ":"), ensure_ascii=True),
)


class _OffTracer:
    """Stands in for Powertools' Tracer when X-Ray subsegments are off.

    Creating a real Tracer imports and patches the X-Ray SDK (about 180 ms of cold start here, and
    per-request overhead on every patched botocore/httpx call) even when tracing is disabled. Lambda
    still records the invocation segment with `Tracing: Active`; subsegments are opt-in: set
    `POWERTOOLS_TRACE_DISABLED=false` in a function's environment (docs/decisions.md, D17).
    """

    def capture_lambda_handler(self, lambda_handler: Any = None, **_: Any) -> Any:
        if lambda_handler is None:
            return lambda fn: fn
        return lambda_handler

    def capture_method(self, method: Any = None, **_: Any) -> Any:
        if method is None:
            return lambda fn: fn
        return method


def _subsegments_enabled() -> bool:
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").strip().lower()
    return disabled in ("false", "0", "no") and "AWS_LAMBDA_FUNCTION_NAME" in os.environ


tracer: Tracer | _OffTracer = Tracer(service=SERVICE) if _subsegments_enabled() else _OffTracer()
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

__all__ = [
    "ChannelMetric",
    "Metric",
    "MetricUnit",
    "channel_metric",
    "job_fields",
    "logger",
    "metrics",
    "tracer",
]


class Metric(StrEnum):
    """Every metric name jobwatch emits (namespace `Jobwatch`, dimension service=jobwatch), in one place.

    Alarms in template.yaml refer to some of these by name; a template test checks they exist here.
    """

    JOBS_POLLED = "JobsPolled"
    POLL_ERRORS = "PollErrors"
    TRANSITIONS = "Transitions"
    PUBLISHED = "Published"
    PUBLISH_FAILURES = "PublishFailures"
    OUTBOX_DEAD_LETTERED = "OutboxDeadLettered"
    JOB_CRASHES = "JobCrashes"
    WRITE_CONFLICTS = "WriteConflicts"
    DEFERRED = "Deferred"
    NOT_DUE = "NotDue"
    THROTTLED_POLLS = "ThrottledPolls"
    IGNORED_RESULTS = "IgnoredResults"
    CYCLE_COMPLETED = "CycleCompleted"
    SHARDS_POLLED = "ShardsPolled"
    SHARDS_SKIPPED = "ShardsSkipped"
    SHARD_ORDERS_SENT = "ShardOrdersSent"
    BAD_SHARD_ORDERS = "BadShardOrders"
    UNREADABLE_NOTICES = "UnreadableNotices"
    API_REQUESTS = "ApiRequests"
    API_CLIENT_ERRORS = "ApiClientErrors"
    API_SERVER_ERRORS = "ApiServerErrors"
    SLACK_INTERACTIONS = "SlackInteractions"
    """Requests to the Slack interactivity endpoint, whatever became of them."""
    SLACK_INTERACTIONS_APPLIED = "SlackInteractionsApplied"
    SLACK_INTERACTIONS_REFUSED = "SlackInteractionsRefused"
    """Refused with nothing changed: unsigned, forged, stale, replayed, oversized or malformed."""
    SLACK_MESSAGE_UPDATE_FAILURES = "SlackMessageUpdateFailures"
    """Applied, but the root message could not be updated through the response URL."""


class ChannelMetric(StrEnum):
    """What the delivery engine counts per channel; the name is the channel's prefix plus this."""

    DELIVERED = "Delivered"
    DUPLICATES_SKIPPED = "DuplicatesSkipped"
    PERMANENT_FAILURES = "PermanentFailures"
    DEFERRED = "Deferred"
    ORDER_WAIT_EXPIRED = "OrderWaitExpired"


def channel_metric(prefix: str, what: ChannelMetric) -> str:
    """`SlackDelivered`, `EmailPermanentFailures`, ...: one name per channel and outcome."""
    return f"{prefix}{what.value}"


def job_fields(spec: JobSpec, **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"jobKey": spec.key, "jobId": spec.job_id, "source": spec.source}
    fields.update(extra)
    return fields
