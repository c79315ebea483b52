"""DynamoDB store for watches (auto-discovery), in the jobs table.

Two item kinds, neither of which carries `pollShard` or `outboxShard`, so the poller's sparse indexes
never see them, and neither has `sk = JOB`, so job listings never see them either:
- watch   pk=WATCHES          sk=<watch id>      doc (JSON), primedAt once the first listing succeeded
- seen    pk=WATCH#<watch id> sk=SEEN#<hash>     jobId: one per upstream job the watch has handed to
                                                 the job store; read in one Query per watch and cycle
                                                 (hashed: a job id may exceed the sort-key size limit)
One fixed partition for watches makes listing them a single Query (there are few). The seen markers
are what keep a discovered job from being discovered again after the user untracked it or TTL removed
it, which would otherwise re-alert an old result; they go when the watch goes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from jobwatch.domain.model import Watch

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

WATCHES_PK = "WATCHES"
_SEEN_PREFIX = "SEEN#"


def _seen_pk(watch_id: str) -> str:
    return f"WATCH#{watch_id}"


def _seen_sk(job_id: str) -> str:
    return _SEEN_PREFIX + hashlib.sha256(job_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class DynamoWatchStore:
    """`ports.WatchStore` on DynamoDB."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._db = client
        self._table = table

    @staticmethod
    def _from_item(item: dict[str, Any]) -> Watch:
        doc = json.loads(item["doc"]["S"])
        if "primedAt" in item:
            doc["primedAt"] = item["primedAt"]["S"]
        return Watch.model_validate(doc)

    def add(self, watch: Watch) -> tuple[Watch, bool]:
        """Store a watch; returns (watch, created). The same watch twice keeps the first item."""
        doc = watch.to_wire()
        doc.pop("primedAt", None)
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": WATCHES_PK},
                    "sk": {"S": watch.id},
                    "doc": {"S": json.dumps(doc, separators=(",", ":"), sort_keys=True)},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            existing = self.get(watch.id)
            return (existing or watch), False
        return watch, True

    def get(self, watch_id: str) -> Watch | None:
        item = self._db.get_item(
            TableName=self._table,
            Key={"pk": {"S": WATCHES_PK}, "sk": {"S": watch_id}},
            ConsistentRead=True,
        ).get("Item")
        return None if item is None else self._from_item(item)

    def list(self) -> list[Watch]:
        watches: list[Watch] = []
        paginator = self._db.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": WATCHES_PK}},
            ConsistentRead=True,
        ):
            watches.extend(self._from_item(item) for item in page.get("Items", []))
        watches.sort(key=lambda watch: (watch.created_at, watch.id))
        return watches

    def delete(self, watch_id: str) -> bool:
        """Remove a watch and its seen markers; jobs it discovered stay tracked."""
        response = self._db.delete_item(
            TableName=self._table,
            Key={"pk": {"S": WATCHES_PK}, "sk": {"S": watch_id}},
            ReturnValues="ALL_OLD",
        )
        for sort_key, _job_id in self._seen(watch_id):
            self._db.delete_item(
                TableName=self._table, Key={"pk": {"S": _seen_pk(watch_id)}, "sk": {"S": sort_key}}
            )
        return "Attributes" in response

    def mark_primed(self, watch_id: str, now_iso: str) -> None:
        """Record the first successful listing (later listings notify finished jobs as new)."""
        with contextlib.suppress(self._db.exceptions.ConditionalCheckFailedException):
            self._db.update_item(
                TableName=self._table,
                Key={"pk": {"S": WATCHES_PK}, "sk": {"S": watch_id}},
                UpdateExpression="SET primedAt = :now",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(primedAt)",
                ExpressionAttributeValues={":now": {"S": now_iso}},
            )

    def _seen(self, watch_id: str) -> Iterator[tuple[str, str]]:
        paginator = self._db.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :seen)",
            ExpressionAttributeValues={":pk": {"S": _seen_pk(watch_id)}, ":seen": {"S": _SEEN_PREFIX}},
            ProjectionExpression="sk, jobId",
            ConsistentRead=True,
        ):
            for item in page.get("Items", []):
                yield item["sk"]["S"], item["jobId"]["S"]

    def seen_job_ids(self, watch_id: str) -> set[str]:
        """Upstream ids of the jobs this watch has already handed to the job store."""
        return {job_id for _sort_key, job_id in self._seen(watch_id)}

    def mark_seen(self, watch_id: str, job_id: str, job_key: str, now_iso: str) -> None:
        self._db.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": _seen_pk(watch_id)},
                "sk": {"S": _seen_sk(job_id)},
                "jobId": {"S": job_id},
                "jobKey": {"S": job_key},
                "seenAt": {"S": now_iso},
            },
        )
