"""DynamoDB store of Slack thread roots: where each (Slack destination, job) keeps its root message.

One item kind in the jobs table, not indexed (no `pollShard`, `outboxShard` or `sk = JOB`, so the
poller and job listings never see it):
- root  pk=THREAD#<destination id>#<job key>  sk=ROOT  channel, ts, savedAt, expiresAt (TTL)
A root is written when a job's first message is posted (or re-posted after someone deleted it) and
read before every later message of the job, which edits it and replies in its thread. It expires
`retention_days` after it was written, like the delivery claims; since DynamoDB deletes expired
items lazily, a read ignores one whose `expiresAt` has passed, so the job simply starts a new thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from jobwatch.ports import ThreadRoot

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

ROOT_SK = "ROOT"


def thread_key(destination_id: str, job_key: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": f"THREAD#{destination_id}#{job_key}"}, "sk": {"S": ROOT_SK}}


class DynamoThreadStore:
    """`ports.ThreadStore` on DynamoDB."""

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        retention_days: int = 30,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._db = client
        self._table = table
        self._retention_s = retention_days * 86400
        self._now = now

    def root(self, destination_id: str, job_key: str) -> ThreadRoot | None:
        item = self._db.get_item(
            TableName=self._table, Key=thread_key(destination_id, job_key), ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        expires = item.get("expiresAt", {}).get("N")
        if expires is not None and float(expires) < self._now():
            return None  # expired; DynamoDB's TTL has not removed it yet
        return ThreadRoot(channel=str(item["channel"]["S"]), ts=str(item["ts"]["S"]))

    def save_root(self, destination_id: str, job_key: str, root: ThreadRoot) -> None:
        """Remember (or replace) the job's root in this destination."""
        now = self._now()
        self._db.put_item(
            TableName=self._table,
            Item={
                **thread_key(destination_id, job_key),
                "channel": {"S": root.channel},
                "ts": {"S": root.ts},
                "savedAt": {"N": f"{now:.3f}"},
                "expiresAt": {"N": str(int(now) + self._retention_s)},
            },
        )
