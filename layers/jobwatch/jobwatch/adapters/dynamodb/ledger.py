"""DynamoDB delivery ledger: per (channel, transition) claims, and the lease of a waiting copy.

Two item kinds in the jobs table, neither indexed:
- claim  pk=DELIVERY#<channel>#<transitionId>  sk=CLAIM  state (IN_PROGRESS, DELIVERED, FAILED_PERMANENT),
                                                         leaseUntil, expiresAt
- wait   pk=DELIVERY#<channel>#<transitionId>  sk=WAIT   token, leaseUntil (the deferred copy that
                                                         currently stands for the transition)
- routed pk=ROUTED#<transitionId>               sk=ROUTED doc: the deliveries the notifier chose
A claim is a conditional put: the first sender of a (channel, transition) wins, and a live lease keeps
others away; a lease that ran out (its worker died) can be taken over. Both kinds expire with TTL.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

from jobwatch.ports import Claim

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


class DynamoDeliveryLedger:
    """`ports.DeliveryLedger` on DynamoDB."""

    def __init__(self, client: DynamoDBClient, table: str, *, retention_days: int = 30) -> None:
        self._db = client
        self._table = table
        self._retention_s = retention_days * 86400

    def claim(self, channel: str, transition_id: str, lease_s: float, now_s: float) -> Claim:
        """Claim the right to deliver one transition to one channel.

        CLAIMED, DONE (already delivered or permanently failed: skip) or BUSY (another worker holds a
        live lease: look again later).
        """
        now = now_s
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
                return Claim.BUSY
            return Claim.BUSY if existing["state"]["S"] == "IN_PROGRESS" else Claim.DONE
        return Claim.CLAIMED

    def finish(self, channel: str, transition_id: str, state: str, detail: str, now_s: float) -> None:
        """Record DELIVERED or FAILED_PERMANENT; either way the transition is never posted again."""
        self._db.update_item(
            TableName=self._table,
            Key={"pk": {"S": f"DELIVERY#{channel}#{transition_id}"}, "sk": {"S": "CLAIM"}},
            UpdateExpression="SET #st = :s, detail = :d, finishedAt = :t",
            ExpressionAttributeNames={"#st": "state"},
            ExpressionAttributeValues={
                ":s": {"S": state},
                ":d": {"S": detail[:500]},
                ":t": {"N": f"{now_s:.3f}"},
            },
        )

    def state(self, channel: str, transition_id: str, now_s: float | None = None) -> str | None:
        """IN_PROGRESS, DELIVERED or FAILED_PERMANENT; None when that transition never reached here.

        Given `now_s`, an IN_PROGRESS claim whose lease has run out (its worker died) is STALE.
        """
        item = self._db.get_item(
            TableName=self._table,
            Key={"pk": {"S": f"DELIVERY#{channel}#{transition_id}"}, "sk": {"S": "CLAIM"}},
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            return None
        state = str(item["state"]["S"])
        if state == "IN_PROGRESS" and now_s is not None and float(item["leaseUntil"]["N"]) < now_s:
            return "STALE"
        return state

    def waiting_copy(self, channel: str, transition_id: str, now_s: float) -> str | None:
        """Token of the deferred copy that stands for this transition, while its lease is live."""
        item = self._db.get_item(
            TableName=self._table,
            Key={"pk": {"S": f"DELIVERY#{channel}#{transition_id}"}, "sk": {"S": "WAIT"}},
            ConsistentRead=True,
        ).get("Item")
        if item is None or float(item["leaseUntil"]["N"]) < now_s:
            return None
        return str(item["token"]["S"])

    def hand_wait_to(
        self, channel: str, transition_id: str, token: str, previous: str | None, now_s: float, lease_s: float
    ) -> bool:
        """Make the copy `token` (already sent) the one that stands for the transition.

        Allowed when nobody holds a live lease or when `previous` (the copy being handled) does.
        False means another copy won: the one just sent is surplus and is dropped when it returns.
        """
        condition = "attribute_not_exists(pk) OR leaseUntil < :now OR #tok = :previous"
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": f"DELIVERY#{channel}#{transition_id}"},
                    "sk": {"S": "WAIT"},
                    "token": {"S": token},
                    "leaseUntil": {"N": f"{now_s + lease_s:.3f}"},
                    "expiresAt": {"N": str(int(now_s) + self._retention_s)},
                },
                ConditionExpression=condition,
                ExpressionAttributeNames={"#tok": "token"},
                ExpressionAttributeValues={
                    ":now": {"N": f"{now_s:.3f}"},
                    # An original message has no token; "-" never matches a stored one (hex).
                    ":previous": {"S": previous or "-"},
                },
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release(self, channel: str, transition_id: str) -> None:
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

    def routing(self, transition_id: str) -> list[dict[str, Any]] | None:
        item = self._db.get_item(
            TableName=self._table,
            Key={"pk": {"S": f"ROUTED#{transition_id}"}, "sk": {"S": "ROUTED"}},
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            return None
        deliveries: list[dict[str, Any]] = json.loads(item["doc"]["S"])
        return deliveries

    def routed_previous(self, transition_id: str) -> str | None:
        item = self._db.get_item(
            TableName=self._table,
            Key={"pk": {"S": f"ROUTED#{transition_id}"}, "sk": {"S": "ROUTED"}},
            ConsistentRead=True,
            ProjectionExpression="previous",
        ).get("Item")
        return None if item is None or "previous" not in item else item["previous"]["S"]

    def record_routing(
        self,
        transition_id: str,
        deliveries: list[dict[str, Any]],
        now_s: float,
        previous: str | None = None,
    ) -> list[dict[str, Any]]:
        item: dict[str, Any] = {
            "pk": {"S": f"ROUTED#{transition_id}"},
            "sk": {"S": "ROUTED"},
            "doc": {"S": json.dumps(deliveries, separators=(",", ":"), sort_keys=True)},
            "expiresAt": {"N": str(int(now_s) + self._retention_s)},
        }
        if previous is not None:
            item["previous"] = {"S": previous}
        try:
            self._db.put_item(
                TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            stored = self.routing(transition_id)
            return deliveries if stored is None else stored
        return deliveries
