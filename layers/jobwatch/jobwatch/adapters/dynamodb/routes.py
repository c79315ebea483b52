"""DynamoDB store for routes, in the jobs table.

One item per route: pk=ROUTES, sk=<route name>, doc (the route's wire JSON). One fixed partition makes
the whole set a single Query (there are at most `domain.routing.MAX_ROUTES`). No route item carries
`pollShard` or `outboxShard`, so the poller's sparse indexes never see them, and no route name can be
`JOB` (names are lower case), so job listings never see them either.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from jobwatch.domain.routing import Route, ordered

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

ROUTES_PK = "ROUTES"


class DynamoRouteStore:
    """`ports.RouteStore` on DynamoDB."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._db = client
        self._table = table

    @staticmethod
    def _from_item(item: dict[str, Any]) -> Route:
        return Route.model_validate(json.loads(item["doc"]["S"]))

    def _key(self, name: str) -> dict[str, Any]:
        return {"pk": {"S": ROUTES_PK}, "sk": {"S": name}}

    def list(self) -> list[Route]:
        """Every stored route in evaluation order (position, then name)."""
        routes: list[Route] = []
        paginator = self._db.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": ROUTES_PK}},
            ConsistentRead=True,
        ):
            routes.extend(self._from_item(item) for item in page.get("Items", []))
        return ordered(routes)

    def get(self, name: str) -> Route | None:
        item = self._db.get_item(TableName=self._table, Key=self._key(name), ConsistentRead=True).get("Item")
        return None if item is None else self._from_item(item)

    def put(self, route: Route) -> bool:
        """Create or replace; True when it created."""
        response = self._db.put_item(
            TableName=self._table,
            Item={
                **self._key(route.name),
                "doc": {"S": json.dumps(route.to_wire(), separators=(",", ":"), sort_keys=True)},
            },
            ReturnValues="ALL_OLD",
        )
        return "Attributes" not in response

    def delete(self, name: str) -> bool:
        response = self._db.delete_item(TableName=self._table, Key=self._key(name), ReturnValues="ALL_OLD")
        return "Attributes" in response
