"""DynamoDB memory of the Slack requests already acted on (`ports.ReplayGuard`).

One item kind in the jobs table, not indexed (no `pollShard`, `outboxShard` or `sk = JOB`, so the
poller and job listings never see it):
- seen  pk=SLACKREQ#<signature>  sk=SEEN  expiresAt (TTL)
Written with `attribute_not_exists(pk)`, so of two deliveries of one signed request (a replay, or
both at once) exactly one passes. A signature covers the request's timestamp and body, and a request
is refused as stale `MAX_SKEW_S` after its timestamp, so an item is needed only until then (plus a
margin); TTL removes it some time after, and until it does it refuses nothing that would not be
refused anyway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

SEEN_SK = "SEEN"


class DynamoReplayGuard:
    """`ports.ReplayGuard` on DynamoDB: one conditional put per request."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._db = client
        self._table = table

    def first_use(self, key: str, expires_at_s: float) -> bool:
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": f"SLACKREQ#{key}"},
                    "sk": {"S": SEEN_SK},
                    "expiresAt": {"N": str(int(expires_at_s))},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True
