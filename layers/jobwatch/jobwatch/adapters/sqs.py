"""SQS adapters: `ports.DeliveryQueue` (delayed copies on a sender's own queue, and its dead-letter
queue) and `ports.ShardOrders` (the poll workers' orders)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

SQS_MAX_DELAY_S = 900
SQS_MAX_VISIBILITY_S = 43_200


def _attribute(value: str) -> MessageAttributeValueTypeDef:
    """Numbers travel as SQS `Number` attributes, anything else as `String`."""
    try:
        number = float(value)
    except ValueError:
        return {"DataType": "String", "StringValue": value}
    return {"DataType": "Number" if math.isfinite(number) else "String", "StringValue": value}


class SqsDeliveryQueue:
    def __init__(self, client: SQSClient, queue_url: str, dead_letter_url: str) -> None:
        self._sqs = client
        self._queue_url = queue_url
        self._dead_letter_url = dead_letter_url

    def send_later(self, body: str, delay_s: int, attributes: dict[str, str]) -> None:
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=body,
            DelaySeconds=min(SQS_MAX_DELAY_S, max(0, delay_s)),
            MessageAttributes={name: _attribute(value) for name, value in attributes.items()},
        )

    def retry_later(self, receipt_handle: str, delay_s: int) -> None:
        self._sqs.change_message_visibility(
            QueueUrl=self._queue_url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=min(SQS_MAX_VISIBILITY_S, max(1, delay_s)),
        )

    def dead_letter(self, body: str, reason: str, attributes: Mapping[str, str] | None = None) -> None:
        self._sqs.send_message(
            QueueUrl=self._dead_letter_url,
            MessageBody=body,
            MessageAttributes={
                **{name: _attribute(value) for name, value in (attributes or {}).items()},
                "reason": {"DataType": "String", "StringValue": reason[:256]},
            },
        )


SQS_BATCH_MAX = 10
"""SendMessageBatch takes at most ten messages."""


class SqsShardOrders:
    """`ports.ShardOrders` on SQS: one message per shard order, ten per request."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._sqs = client
        self._queue_url = queue_url

    def send(self, bodies: Sequence[str]) -> int:
        sent = 0
        for start in range(0, len(bodies), SQS_BATCH_MAX):
            batch = bodies[start : start + SQS_BATCH_MAX]
            response = self._sqs.send_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(index), "MessageBody": body} for index, body in enumerate(batch)],
            )
            sent += len(response.get("Successful", []))
        return sent
