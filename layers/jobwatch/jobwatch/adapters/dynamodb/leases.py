"""`ports.ShardLeases` on DynamoDB: one item per shard, taken per tick with one conditional write.

Item kind in the jobs table: pk=`POLL-LEASE#<shard>`, sk=`LEASE`, tick (N), holder, takenAt, expiresAt.
No `pollShard`, `outboxShard` or `sk = JOB`, so none of the table's indexes sees it. One write per
shard per tick, whatever the shard holds: a quiet cycle writes no job item.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

LEASE_TTL_S = 86_400
"""A lease item outlives any tick it could still guard; DynamoDB's TTL removes it a day later."""


class DynamoShardLeases:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._db = client
        self._table = table

    def take(self, shard: int, tick_s: float, holder: str) -> bool:
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": f"POLL-LEASE#{shard}"},
                    "sk": {"S": "LEASE"},
                    "tick": {"N": f"{tick_s:.3f}"},
                    "holder": {"S": holder[:200]},
                    "takenAt": {"N": f"{time.time():.3f}"},
                    "expiresAt": {"N": str(int(tick_s) + LEASE_TTL_S)},
                },
                ConditionExpression="attribute_not_exists(pk) OR tick < :tick",
                ExpressionAttributeValues={":tick": {"N": f"{tick_s:.3f}"}},
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True
