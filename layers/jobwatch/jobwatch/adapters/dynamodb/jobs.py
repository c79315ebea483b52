"""DynamoDB store: tracked jobs, their transitions (the outbox) and per-channel delivery claims.

One table; the job store owns two item kinds (the delivery ledger and the watch store own others):
- job         pk=JOB#<key>   sk=JOB       version, doc (JSON), health (JSON), pollShard (while
                                          non-terminal: one of K values, `domain.shards`, D44),
                                          outbox {transitionId: entry}, outboxShard,
                                          createdKey (`<createdAt>#<key>`, for listing)
- history     pk=JOB#<key>   sk=TR#<ver>  doc (event JSON), delivery (PUBLISHED / DEAD_LETTERED)

The job's document is one JSON string attribute: the poller reads thousands of jobs per cycle and
botocore's per-attribute parsing would otherwise dominate its CPU time.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from jobwatch.domain.model import Health, JobSpec, Quiet, Snapshot, TrackedJob, Transition, WireModel
from jobwatch.domain.shards import ONE_SHARD, ShardLayout, shard_value
from jobwatch.domain.transitions import new_life, parse_transition_id
from jobwatch.ports import ConflictError, PendingTransition

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

POLLABLE_INDEX = "pollable"
OUTBOX_INDEX = "outbox"
CREATED_INDEX = "created"
"""Every job item by `createdKey` under its `sk` (`JOB`): `GET /jobs` pages through it, no Scan.
Keys only, so a job's state writes never touch it: one index write per job created or deleted."""
BATCH_GET_MAX = 100
"""BatchGetItem takes at most 100 keys."""
PENDING_SHARD = "PENDING"
_JOB_SK = "JOB"


KEY_LIMIT_BYTES = 1024
"""DynamoDB refuses sort keys over 1,024 bytes and partition keys over 2,048 (ValidationException);
keys built from user input are checked against the smaller before any request."""


def fits_a_key(value: str) -> bool:
    return len(value.encode("utf-8", "surrogatepass")) + 16 <= KEY_LIMIT_BYTES


def _job_pk(key: str) -> str:
    return f"JOB#{key}"


def _history_sk(transition_id: str) -> str:
    """`key#7` -> TR#0000000007, `key#7.2` -> TR#0000000007.2, `key#<life>-7` -> TR#<life>#0000000007:
    sorts in publication order, older lives first (digits sort before a life's letters)."""
    ref = parse_transition_id(transition_id)
    if ref is None:
        raise ValueError(f"not a numbered transition id: {transition_id!r}")
    position = f".{ref.position}" if ref.position > 1 else ""
    life = f"{ref.life}#" if ref.life else ""
    return f"TR#{life}{ref.version:010d}{position}"


def created_key(created_at: str, key: str) -> str:
    """The listing order as one string: creation time, then key. ISO times sort as text, and `#`
    sorts below every character of one, so the string order is the (createdAt, key) order."""
    return f"{created_at}#{key}"


def _stored(model: WireModel) -> dict[str, Any]:
    """A model as the job item keeps it: fields at their defaults left out (reading fills them in
    again), which takes a fifth off a running job's item and so off every poll's index read."""
    return model.model_dump(mode="json", by_alias=True, exclude_defaults=True)


def _compact(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class DynamoJobStore:
    """`ports.JobStore` on DynamoDB: one item per job (with its outbox), one per settled transition."""

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        *,
        retention_days: int = 30,
        layout: ShardLayout = ONE_SHARD,
    ) -> None:
        self._db = client
        self._table = table
        self._retention_s = retention_days * 86400
        self.layout = layout

    # -- jobs -----------------------------------------------------------------------------------

    def _job_item(self, job: TrackedJob) -> dict[str, Any]:
        doc = _stored(job)
        doc.pop("version", None)
        health = doc.pop("health", {})
        item: dict[str, Any] = {
            "pk": {"S": _job_pk(job.key)},
            "sk": {"S": _JOB_SK},
            "version": {"N": str(job.version)},
            "doc": {"S": _compact(doc)},
            "health": {"S": _compact(health)},
            "source": {"S": job.spec.source},
            "outbox": {"M": {}},
            "createdKey": {"S": created_key(job.created_at, job.key)},
        }
        if job.terminal:
            item["expiresAt"] = {"N": str(int(time.time()) + self._retention_s)}
        else:
            item["pollShard"] = {"S": self.layout.value_of(job.spec.endpoint, job.key)}
        return item

    @staticmethod
    def _job_from_item(item: dict[str, Any]) -> TrackedJob:
        doc = json.loads(item["doc"]["S"])
        doc["version"] = int(item["version"]["N"])
        if "health" in item:
            doc["health"] = json.loads(item["health"]["S"])
        doc["owes_transitions"] = "outboxShard" in item
        return TrackedJob.model_validate(doc)

    def add_job(
        self, spec: JobSpec, now_iso: str, *, initial_snapshot: Snapshot | None = None
    ) -> tuple[TrackedJob, bool]:
        """Track a job; returns (job, created). Tracking the same job twice keeps the first item.

        `initial_snapshot` records a job first seen already over (auto-discovery): it is written
        terminal and non-pollable in the same conditional put, so nothing ever notifies it.
        """
        job = TrackedJob(
            spec=spec,
            snapshot=initial_snapshot,
            created_at=now_iso,
            updated_at=now_iso,
            changed_at=now_iso if initial_snapshot else None,
            life=new_life(time.time()),
        )
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
        if not fits_a_key(key):
            return None  # no key this store hands out is that long: asking DynamoDB would only fail
        response = self._db.get_item(
            TableName=self._table,
            Key={"pk": {"S": _job_pk(key)}, "sk": {"S": _JOB_SK}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return None if item is None else self._job_from_item(item)

    def delete_job(self, key: str) -> bool:
        if not fits_a_key(key):
            return False
        response = self._db.delete_item(
            TableName=self._table,
            Key={"pk": {"S": _job_pk(key)}, "sk": {"S": _JOB_SK}},
            ReturnValues="ALL_OLD",
        )
        return "Attributes" in response

    def pollable_pages(self, shards: Sequence[int] | None = None) -> Iterator[list[TrackedJob]]:
        """Non-terminal jobs of these shards (None: all K) page by page, so polling can start before
        the last page arrives. One Query per shard: each is its own index partition."""
        paginator = self._db.get_paginator("query")
        for shard in range(self.layout.shards) if shards is None else shards:
            for page in paginator.paginate(
                TableName=self._table,
                IndexName=POLLABLE_INDEX,
                KeyConditionExpression="pollShard = :v",
                ExpressionAttributeValues={":v": {"S": shard_value(shard)}},
            ):
                yield [self._job_from_item(item) for item in page.get("Items", [])]

    def pollable_jobs(self) -> list[TrackedJob]:
        """Non-terminal jobs, from the sparse index: no Scan, cost proportional to active jobs only."""
        return [job for page in self.pollable_pages() for job in page]

    def rebalance_poll_shards(self) -> int:
        """Move every active job to its shard under the current layout (after K or the spread
        changed; `jobwatch upgrade` runs it). One Scan; returns how many jobs moved. A job that became
        terminal meanwhile keeps no `pollShard` (the condition), so nothing finished is polled again."""

        def wanted(item: dict[str, Any], job: TrackedJob) -> str | None:
            shard = self.layout.value_of(job.spec.endpoint, job.key)
            return None if item["pollShard"]["S"] == shard else shard

        return self._set_on_jobs(
            "attribute_exists(pollShard)", "pollShard", wanted, "attribute_exists(pollShard)"
        )

    def jobs_by_creation(
        self, after: tuple[str, str] | None, limit: int
    ) -> tuple[list[TrackedJob], tuple[str, str] | None]:
        """Up to `limit` (<= 100) jobs created after `after` (createdAt, key), oldest first, and
        where to go on from: one Query of the keys-only creation index, one BatchGetItem.

        A job deleted between the two reads is left out; the index is eventually consistent, so a
        job tracked a moment ago may show on the next call only."""
        values: dict[str, Any] = {":job": {"S": _JOB_SK}}
        condition = "sk = :job"
        if after is not None:  # DynamoDB refuses an empty string as a key value, even to compare
            condition += " AND createdKey > :after"
            values[":after"] = {"S": created_key(*after)}
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": CREATED_INDEX,
            "Limit": max(1, min(limit, BATCH_GET_MAX)),
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        response = self._db.query(**request)
        items = response.get("Items", [])
        keys = [item["pk"]["S"] for item in items]
        found = self._get_jobs(keys)
        jobs = [found[pk] for pk in keys if pk in found]
        if "LastEvaluatedKey" not in response or not items:
            return jobs, None
        created_at, _, key = items[-1]["createdKey"]["S"].partition("#")
        return jobs, (created_at, key)

    def _get_jobs(self, pks: Sequence[str]) -> dict[str, TrackedJob]:
        """Job items by partition key (BatchGetItem, unprocessed keys asked again with a short backoff)."""
        found: dict[str, TrackedJob] = {}
        wanted: list[dict[str, Any]] = [{"pk": {"S": pk}, "sk": {"S": _JOB_SK}} for pk in pks]
        for attempt in range(8):
            if not wanted:
                break
            if attempt:
                time.sleep(min(0.05 * 2**attempt, 1.0))
            response = self._db.batch_get_item(RequestItems={self._table: {"Keys": wanted}})
            for item in response.get("Responses", {}).get(self._table, []):
                found[item["pk"]["S"]] = self._job_from_item(item)
            unprocessed: dict[str, Any] = dict(response.get("UnprocessedKeys") or {})
            wanted = list(unprocessed.get(self._table, {}).get("Keys", []))
        if wanted:
            raise RuntimeError(f"DynamoDB left {len(wanted)} job reads unprocessed; try again")
        return found

    def backfill_created_keys(self) -> int:
        """Give `createdKey` to job items written before the creation index existed (one Scan;
        `jobwatch upgrade` runs it). Returns how many were updated; running it twice changes nothing."""
        return self._set_on_jobs(
            "attribute_not_exists(createdKey)",
            "createdKey",
            lambda _, job: created_key(job.created_at, job.key),
            "attribute_exists(pk) AND attribute_not_exists(createdKey)",
        )

    def _set_on_jobs(
        self,
        selection: str,
        attribute: str,
        value_of: Callable[[dict[str, Any], TrackedJob], str | None],
        condition: str,
    ) -> int:
        """One Scan of the job items matching `selection`; each gets `attribute` set to `value_of` its
        item and job (None: left alone), on `condition` (a job changed meanwhile is skipped).
        Returns how many were set: what `jobwatch upgrade` reports."""
        changed = 0
        paginator = self._db.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self._table,
            FilterExpression=f"sk = :job AND {selection}",
            ExpressionAttributeValues={":job": {"S": _JOB_SK}},
        ):
            for item in page.get("Items", []):
                value = value_of(item, self._job_from_item(item))
                if value is None:
                    continue
                with contextlib.suppress(self._db.exceptions.ConditionalCheckFailedException):
                    self._db.update_item(
                        TableName=self._table,
                        Key={"pk": item["pk"], "sk": item["sk"]},
                        UpdateExpression="SET #a = :v",
                        ConditionExpression=condition,
                        ExpressionAttributeNames={"#a": attribute},
                        ExpressionAttributeValues={":v": {"S": value}},
                    )
                    changed += 1
        return changed

    def all_jobs(self) -> list[TrackedJob]:
        """Every tracked job including terminal ones (a Scan: tests and local tools, not the API)."""
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

    def save_state(
        self,
        job: TrackedJob,
        snapshot: Snapshot | None,
        health: Health,
        snapshot_changed: bool,
        transitions: Sequence[Transition],
        now_iso: str,
        now_s: float,
    ) -> TrackedJob:
        """Advance the job in one conditional write on the version that was read.

        Transitions go into the job item's own `outbox` map in that same write, so recording the
        state and owing the notifications are one atomic step (no multi-item transaction needed):
        a crash after this call loses nothing, a later cycle publishes what is still in the outbox.
        Raises ConflictError when another run got there first.
        """
        updated = job.model_copy(
            update={
                "snapshot": snapshot,
                "health": health,
                "version": job.version + 1,
                "updated_at": now_iso,
                "changed_at": now_iso if snapshot_changed else job.changed_at,
                "last_transition_id": transitions[-1].transition_id
                if transitions
                else job.last_transition_id,
            }
        )
        doc = _stored(updated)
        doc.pop("version", None)
        health_doc = doc.pop("health", {})
        names: dict[str, str] = {"#v": "version"}
        values: dict[str, Any] = {
            ":read": {"N": str(job.version)},
            ":new": {"N": str(updated.version)},
            ":doc": {"S": _compact(doc)},
            ":health": {"S": _compact(health_doc)},
        }
        sets = ["#v = :new", "doc = :doc", "health = :health"]
        removes: list[str] = []
        if updated.terminal:
            sets.append("expiresAt = :exp")
            values[":exp"] = {"N": str(int(now_s) + self._retention_s)}
            removes.append("pollShard")
        for index, transition in enumerate(transitions):
            names[f"#t{index}"] = transition.transition_id
            sets.append(f"outbox.#t{index} = :e{index}")
            values[f":e{index}"] = {
                "M": {
                    "doc": {"S": _compact(transition.to_wire())},
                    "recordedAt": {"N": f"{now_s:.3f}"},
                    "attempts": {"N": "0"},
                }
            }
        if transitions:
            sets.append("outboxShard = :pending")
            values[":pending"] = {"S": PENDING_SHARD}
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"pk": {"S": _job_pk(job.key)}, "sk": {"S": _JOB_SK}},
                UpdateExpression=expression,
                ConditionExpression="#v = :read",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except self._db.exceptions.ConditionalCheckFailedException as exc:
            raise ConflictError(str(exc)) from exc
        return updated

    def save_health(self, job: TrackedJob, health: Health) -> TrackedJob:
        """Record poll-error bookkeeping only: the job's version and snapshot stay as they are.

        Conditional on the version read, so it never overwrites a newer state; two overlapping runs
        may both count the same failing poll, which only brings an alert one poll earlier.
        """
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"pk": {"S": _job_pk(job.key)}, "sk": {"S": _JOB_SK}},
                UpdateExpression="SET health = :h",
                ConditionExpression="#v = :read",
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues={
                    ":h": {"S": _compact(_stored(health))},
                    ":read": {"N": str(job.version)},
                },
            )
        except self._db.exceptions.ConditionalCheckFailedException as exc:
            raise ConflictError(str(exc)) from exc
        return job.model_copy(update={"health": health})

    def save_quiet(self, job: TrackedJob, quiet: Quiet, health: Health) -> TrackedJob:
        """Snooze or mute changed (the API's write): the document and health with the next version,
        so a poller run that read the job before fails its own conditional write and polls it again."""
        updated = job.model_copy(update={"quiet": quiet, "health": health, "version": job.version + 1})
        doc = _stored(updated)
        doc.pop("version", None)
        health_doc = doc.pop("health", {})
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"pk": {"S": _job_pk(job.key)}, "sk": {"S": _JOB_SK}},
                UpdateExpression="SET #v = :new, doc = :doc, health = :h",
                ConditionExpression="#v = :read",
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues={
                    ":new": {"N": str(updated.version)},
                    ":doc": {"S": _compact(doc)},
                    ":h": {"S": _compact(health_doc)},
                    ":read": {"N": str(job.version)},
                },
            )
        except self._db.exceptions.ConditionalCheckFailedException as exc:
            raise ConflictError(str(exc)) from exc
        return updated

    def save_snapshot(
        self, job: TrackedJob, seen: Snapshot, now_iso: str, transition: Transition | None, now_s: float
    ) -> TrackedJob:
        """Store a new snapshot (health unchanged) with at most one owed transition."""
        return self.save_state(
            job, seen, job.health, True, [transition] if transition else [], now_iso, now_s
        )

    # -- outbox ---------------------------------------------------------------------------------

    def pending_transitions(self) -> list[PendingTransition]:
        """Recorded but not yet published transitions, oldest first (sparse index, no Scan)."""
        pending: list[PendingTransition] = []
        for item in self._query_index(OUTBOX_INDEX, "outboxShard", PENDING_SHARD):
            for entry in item.get("outbox", {}).get("M", {}).values():
                fields = entry["M"]
                pending.append(
                    PendingTransition(
                        transition=Transition.model_validate_json(fields["doc"]["S"]),
                        recorded_at=float(fields["recordedAt"]["N"]),
                        attempts=int(fields["attempts"]["N"]),
                    )
                )
        pending.sort(key=lambda p: (p.recorded_at, _history_sk(p.transition.transition_id)))
        return pending

    def _settle(self, transition: Transition, state: str, now_s: float, detail: str) -> None:
        """Keep a transition in the job's history, then take it out of the outbox.

        History first: a transition is always findable in one of the two (the Slack sender asks
        `transition_standing` whether to wait for it). The first settle's history entry stands; a
        crash between the two writes only means the outbox entry is published once more.
        """
        with contextlib.suppress(self._db.exceptions.ConditionalCheckFailedException):
            self._db.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": _job_pk(transition.job_key)},
                    "sk": {"S": _history_sk(transition.transition_id)},
                    "doc": {"S": _compact(transition.to_wire())},
                    "delivery": {"S": state},
                    "detail": {"S": detail[:500]},
                    "settledAt": {"N": f"{now_s:.3f}"},
                    "expiresAt": {"N": str(int(now_s) + self._retention_s)},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        key = {"pk": {"S": _job_pk(transition.job_key)}, "sk": {"S": _JOB_SK}}
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression="REMOVE outbox.#t",
                ConditionExpression="attribute_exists(outbox.#t)",
                ExpressionAttributeNames={"#t": transition.transition_id},
                ReturnValues="ALL_NEW",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return  # another run settled it first
        if not response.get("Attributes", {}).get("outbox", {}).get("M"):
            with contextlib.suppress(self._db.exceptions.ConditionalCheckFailedException):
                self._db.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression="REMOVE outboxShard",
                    ConditionExpression="size(outbox) = :zero",
                    ExpressionAttributeValues={":zero": {"N": "0"}},
                )

    def mark_published(self, transition: Transition, message_id: str, now_s: float) -> None:
        self._settle(transition, "PUBLISHED", now_s, message_id)

    def mark_dead_lettered(self, transition: Transition, reason: str, now_s: float) -> None:
        """Give up on a transition after the retry cap; the operator alarm watches this metric."""
        self._settle(transition, "DEAD_LETTERED", now_s, reason)

    def transition_standing(self, transition_id: str) -> str | None:
        """PUBLISHED or DEAD_LETTERED once settled, OWED while still in the outbox, None when unknown
        (the job was untracked or its history expired)."""
        ref = parse_transition_id(transition_id)
        if ref is None:
            return None  # not a numbered transition (a TEST notification): never in the outbox
        job_key, history_sk = ref.job_key, _history_sk(transition_id)
        settled = self._db.get_item(
            TableName=self._table,
            Key={"pk": {"S": _job_pk(job_key)}, "sk": {"S": history_sk}},
            ConsistentRead=True,
            ProjectionExpression="delivery",
        ).get("Item")
        if settled is not None:
            return str(settled["delivery"]["S"])
        job = self._db.get_item(
            TableName=self._table,
            Key={"pk": {"S": _job_pk(job_key)}, "sk": {"S": _JOB_SK}},
            ConsistentRead=True,
            ProjectionExpression="outbox.#t",
            ExpressionAttributeNames={"#t": transition_id},
        ).get("Item")
        return "OWED" if job is not None and job.get("outbox", {}).get("M") else None

    def note_publish_failure(self, transition: Transition) -> None:
        with contextlib.suppress(self._db.exceptions.ConditionalCheckFailedException):
            self._db.update_item(
                TableName=self._table,
                Key={"pk": {"S": _job_pk(transition.job_key)}, "sk": {"S": _JOB_SK}},
                UpdateExpression="ADD outbox.#t.attempts :one",
                ConditionExpression="attribute_exists(outbox.#t)",
                ExpressionAttributeNames={"#t": transition.transition_id},
                ExpressionAttributeValues={":one": {"N": "1"}},
            )

    def recent_transitions(self, key: str, limit: int = 20) -> list[Transition]:
        """Settled transitions of a job, newest first (pending ones are in `pending_transitions`)."""
        if not fits_a_key(key):
            return []
        response = self._db.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :tr)",
            ExpressionAttributeValues={":pk": {"S": _job_pk(key)}, ":tr": {"S": "TR#"}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [Transition.model_validate_json(item["doc"]["S"]) for item in response.get("Items", [])]
