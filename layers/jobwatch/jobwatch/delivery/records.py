"""What both channel senders share: the SQS batch report, the record shape, and dead-lettering.

Kept apart from the Slack sender so the e-mail sender depends on neither Slack nor httpx.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient


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


def send_to_dead_letter_queue(sqs: SQSClient, dlq_url: str, body: str, reason: str) -> None:
    """Park a message for an operator, with the reason as a message attribute (no-op without a DLQ)."""
    if dlq_url:
        sqs.send_message(
            QueueUrl=dlq_url,
            MessageBody=body,
            MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:256]}},
        )
