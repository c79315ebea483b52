"""DynamoDB store: tracked jobs, their transitions (the outbox) and per-channel delivery claims.

One table, three item kinds sharing `pk`/`sk`:
- job         pk=JOB#<key>          sk=JOB        version, doc (JSON), pollShard (only while non-terminal)
- transition  pk=JOB#<key>          sk=TR#<ver>   doc (event JSON), outboxShard (only until published)
- claim       pk=DELIVERY#<channel>#<transitionId>  sk=CLAIM  state, leaseUntil

The job's document is one JSON string attribute: the poller reads thousands of jobs per cycle and
botocore's per-attribute parsing would otherwise dominate its CPU time.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobwatch.model import JobSpec, Snapshot, TrackedJob, Transition

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

POLLABLE_INDEX = "pollable"
OUTBOX_INDEX = "outbox"
ACTIVE_SHARD = "ACTIVE"
PENDING_SHARD = "PENDING"
_JOB_SK = "JOB"


def _job_pk(key: str) -> str:
    return f"JOB#{key}"


def _transition_sk(version: int) -> str:
    return f"TR#{version:010d}"


def _compact(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class ConflictError(Exception):
    """Another writer advanced the job first (an overlapping poller run): this run must not notify."""


@dataclass(frozen=True, slots=True)
class PendingTransition:
    transition: Transition
    recorded_at: float
    attempts: int


class JobStore:
    def __init__(self, client: DynamoDBClient, table: str, *, retention_days: int = 30) -> None:
        self._db = client
        self._table = table
        self._retention_s = retention_days * 86400

    # -- jobs -----------------------------------------------------------------------------------

    def _job_item(self, job: TrackedJob) -> dict[str, Any]:
        doc = job.to_wire()
        doc.pop("version", None)
        item: dict[str, Any] = {
            "pk": {"S": _job_pk(job.key)},
            "sk": {"S": _JOB_SK},
            "version": {"N": str(job.version)},
            "doc": {"S": _compact(doc)},
            "source": {"S": job.spec.source},
        }
        if job.terminal:
            item["expiresAt"] = {"N": str(int(time.time()) + self._retention_s)}
        else:
            item["pollShard"] = {"S": ACTIVE_SHARD}
        return item

    @staticmethod
    def _job_from_item(item: dict[str, Any]) -> TrackedJob:
        doc = json.loads(item["doc"]["S"])
        doc["version"] = int(item["version"]["N"])
        return TrackedJob.model_validate(doc)

    def add_job(self, spec: JobSpec, now_iso: str) -> tuple[TrackedJob, bool]:
        """Track a job; returns (job, created). Tracking the same job twice keeps the first item."""
        job = TrackedJob(spec=spec, created_at=now_iso, updated_at=now_iso)
        try:
            self._db.put_item(
                TableName=self._table,
                Item=self._job_item(job),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            existing = self.get_job(spec.key)
            if existing is None:  # deleted between the two calls; report the attempt as not created
                return job, False
            return existing, False
        return job, True

    def get_job(self, key: str) -> TrackedJob | None:
        response = self._db.get_item(
            TableName=self._table,
            Key={"pk": {"S": _job_pk(key)}, "sk": {"S": _JOB_SK}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return None if item is None else self._job_from_item(item)

    def delete_job(self, key: str) -> bool:
        response = self._db.delete_item(
            TableName=self._table,
            Key={"pk": {"S": _job_pk(key)}, "sk": {"S": _JOB_SK}},
            ReturnValues="ALL_OLD",
        )
        return "Attributes" in response

    def pollable_jobs(self) -> list[TrackedJob]:
        """Non-terminal jobs, from the sparse index: no Scan, cost proportional to active jobs only."""
        return [
            self._job_from_item(item) for item in self._query_index(POLLABLE_INDEX, "pollShard", ACTIVE_SHARD)
        ]

    def all_jobs(self) -> list[TrackedJob]:
        """Every tracked job including terminal ones (an operator listing, not on the polling path)."""
        jobs: list[TrackedJob] = []
        paginator = self._db.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self._table,
            FilterExpression="sk = :job",
            ExpressionAttributeValues={":job": {"S": _JOB_SK}},
        ):
            jobs.extend(self._job_from_item(item) for item in page.get("Items", []))
        jobs.sort(key=lambda job: job.created_at)
        return jobs

    def _query_index(self, index: str, attribute: str, value: str) -> Iterator[dict[str, Any]]:
        paginator = self._db.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            IndexName=index,
            KeyConditionExpression="#s = :v",
            ExpressionAttributeNames={"#s": attribute},
            ExpressionAttributeValues={":v": {"S": value}},
        ):
            yield from page.get("Items", [])

    # -- state changes --------------------------------------------------------------------------

    def save_snapshot(
        self, job: TrackedJob, seen: Snapshot, now_iso: str, transition: Transition | None
    ) -> TrackedJob:
        """Advance the job to `seen`, conditional on the version that was read.

        With a transition, the transition item (the outbox entry) is written in the same
        transaction, so a crash after this call loses nothing: the outbox is republished later.
        Raises ConflictError when another run got there first.
        """
        updated = job.model_copy(
            update={
                "snapshot": seen,
                "version": job.version + 1,
                "updated_at": now_iso,
                "changed_at": now_iso,
            }
        )
        condition: dict[str, Any] = {
            "ConditionExpression": "#v = :read",
            "ExpressionAttributeNames": {"#v": "version"},
            "ExpressionAttributeValues": {":read": {"N": str(job.version)}},
        }
        try:
            if transition is None:
                self._db.put_item(TableName=self._table, Item=self._job_item(updated), **condition)
            else:
                self._db.transact_write_items(
                    TransactItems=[
                        {"Put": {"TableName": self._table, "Item": self._job_item(updated), **condition}},  # type: ignore[typeddict-item]
                        {
                            "Put": {
                                "TableName": self._table,
                                "Item": self._transition_item(transition, updated.version),
                                "ConditionExpression": "attribute_not_exists(pk)",
                            }
                        },
                    ]
                )
        except (
            self._db.exceptions.ConditionalCheckFailedException,
            self._db.exceptions.TransactionCanceledException,
        ) as exc:
            raise ConflictError(str(exc)) from exc
        return updated

    # -- outbox ---------------------------------------------------------------------------------

    def _transition_item(self, transition: Transition, version: int) -> dict[str, Any]:
        return {
            "pk": {"S": _job_pk(transition.job_key)},
            "sk": {"S": _transition_sk(version)},
            "doc": {"S": _compact(transition.to_wire())},
            "outboxShard": {"S": PENDING_SHARD},
            "recordedAt": {"N": f"{time.time():.3f}"},
            "attempts": {"N": "0"},
            "expiresAt": {"N": str(int(time.time()) + self._retention_s)},
        }

    def mark_published(self, transition: Transition, message_id: str) -> None:
        version = int(transition.transition_id.rsplit("#", 1)[1])
        self._db.update_item(
            TableName=self._table,
            Key={"pk": {"S": _job_pk(transition.job_key)}, "sk": {"S": _transition_sk(version)}},
            UpdateExpression="REMOVE outboxShard SET publishedAt = :t, messageId = :m",
            ExpressionAttributeValues={":t": {"N": f"{time.time():.3f}"}, ":m": {"S": message_id}},
        )

    def note_publish_failure(self, transition: Transition) -> None:
        version = int(transition.transition_id.rsplit("#", 1)[1])
        self._db.update_item(
            TableName=self._table,
            Key={"pk": {"S": _job_pk(transition.job_key)}, "sk": {"S": _transition_sk(version)}},
            UpdateExpression="ADD attempts :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )

    def pending_transitions(self) -> list[PendingTransition]:
        """Recorded but not yet published transitions, oldest first."""
        pending = [
            PendingTransition(
                transition=Transition.model_validate_json(item["doc"]["S"]),
                recorded_at=float(item["recordedAt"]["N"]),
                attempts=int(item.get("attempts", {"N": "0"})["N"]),
            )
            for item in self._query_index(OUTBOX_INDEX, "outboxShard", PENDING_SHARD)
        ]
        pending.sort(key=lambda p: p.recorded_at)
        return pending

    def recent_transitions(self, key: str, limit: int = 20) -> list[Transition]:
        response = self._db.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :tr)",
            ExpressionAttributeValues={":pk": {"S": _job_pk(key)}, ":tr": {"S": "TR#"}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [Transition.model_validate_json(item["doc"]["S"]) for item in response.get("Items", [])]

    # -- delivery claims (dedupe at the channel edge) --------------------------------------------

    def claim_delivery(self, channel: str, transition_id: str, lease_s: float) -> str:
        """Claim the right to deliver one transition to one channel.

        Returns "claimed", "done" (already delivered or permanently failed: skip) or "busy"
        (another worker holds a live lease: retry later).
        """
        now = time.time()
        key = {"pk": {"S": f"DELIVERY#{channel}#{transition_id}"}, "sk": {"S": "CLAIM"}}
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    **key,
                    "state": {"S": "IN_PROGRESS"},
                    "leaseUntil": {"N": f"{now + lease_s:.3f}"},
                    "expiresAt": {"N": str(int(now) + self._retention_s)},
                },
                ConditionExpression="attribute_not_exists(pk) OR (#st = :inprog AND leaseUntil < :now)",
                ExpressionAttributeNames={"#st": "state"},
                ExpressionAttributeValues={":inprog": {"S": "IN_PROGRESS"}, ":now": {"N": f"{now:.3f}"}},
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            existing = self._db.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
            if existing is None:
                return "busy"
            return "busy" if existing["state"]["S"] == "IN_PROGRESS" else "done"
        return "claimed"

    def finish_delivery(self, channel: str, transition_id: str, state: str, detail: str = "") -> None:
        """Record DELIVERED or FAILED_PERMANENT; either way the transition is never posted again."""
        self._db.update_item(
            TableName=self._table,
            Key={"pk": {"S": f"DELIVERY#{channel}#{transition_id}"}, "sk": {"S": "CLAIM"}},
            UpdateExpression="SET #st = :s, detail = :d, finishedAt = :t",
            ExpressionAttributeNames={"#st": "state"},
            ExpressionAttributeValues={
                ":s": {"S": state},
                ":d": {"S": detail[:500]},
                ":t": {"N": f"{time.time():.3f}"},
            },
        )

    def release_delivery(self, channel: str, transition_id: str) -> None:
        """Give the claim back after a retryable failure so the redelivered message can post."""
        # Already finished or released: nothing to give back.
        with contextlib.suppress(self._db.exceptions.ConditionalCheckFailedException):
            self._db.delete_item(
                TableName=self._table,
                Key={"pk": {"S": f"DELIVERY#{channel}#{transition_id}"}, "sk": {"S": "CLAIM"}},
                ConditionExpression="#st = :inprog",
                ExpressionAttributeNames={"#st": "state"},
                ExpressionAttributeValues={":inprog": {"S": "IN_PROGRESS"}},
            )
