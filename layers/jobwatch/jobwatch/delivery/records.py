"""The SQS side of delivery: the batch report Lambda expects, record attributes, the record shape.

A delivery record is an SQS message carrying a transition event (in the SNS envelope, or raw). The
engine keeps its own bookkeeping in message attributes of the delayed copies it sends back: how
often a copy was deferred, how many sends failed, since when it waits, and which copy it is.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

DEFERRALS_ATTRIBUTE = "jobwatchDeferrals"
WAITING_SINCE_ATTRIBUTE = "jobwatchWaitingSince"
COPY_TOKEN_ATTRIBUTE = "jobwatchCopy"
ATTEMPTS_ATTRIBUTE = "jobwatchAttempts"


@dataclass
class BatchReport:
    delivered: int = 0
    duplicates: int = 0
    retried: int = 0
    """Failed sends that will be tried again (after a delay)."""
    dead_lettered: int = 0
    deferred: int = 0
    collapsed: int = 0
    """Duplicate waiting copies dropped because another copy stands for the transition."""
    order_waits_expired: int = 0
    failures: list[str] = field(default_factory=list)

    def add(self, other: BatchReport) -> None:
        """Fold another batch's counts into this one (local drains run several batches)."""
        for counter in dataclasses.fields(self):
            if counter.type in (int, "int"):
                setattr(self, counter.name, getattr(self, counter.name) + getattr(other, counter.name))
        self.failures.extend(other.failures)

    def response(self) -> dict[str, Any]:
        """The partial-batch-failure answer Lambda's SQS integration expects."""
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in self.failures]}


def record_from_message(message: dict[str, Any]) -> dict[str, Any]:
    """A message from boto3's ReceiveMessage in the shape of a Lambda SQS event record."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {"stringValue": value.get("StringValue"), "dataType": value.get("DataType")}
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "eventSource": "aws:sqs",
    }


def number_attribute(record: dict[str, Any], name: str) -> float | None:
    """A numeric message attribute as the Lambda event carries it; None when absent or garbled."""
    attribute = (record.get("messageAttributes") or {}).get(name) or {}
    try:
        value = float(str(attribute.get("stringValue")))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def string_attribute(record: dict[str, Any], name: str) -> str | None:
    value = ((record.get("messageAttributes") or {}).get(name) or {}).get("stringValue")
    return value if isinstance(value, str) and value else None
