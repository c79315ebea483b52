"""moto's server for `make bench-scale`, with two DynamoDB hot spots made fast (same answers).

`python -m benchmarks.fast_moto -H 127.0.0.1 -p PORT` is `python -m moto.server` after `patch()`.
At 20,000 items moto 5.2 spends seconds per Query page on its own bookkeeping, and a fanned-out cycle
reads every shard's index pages: the benchmark would measure moto. Two patches, both exact:
- `Table.all_items()` (every Query and Scan page sorts the whole table by key) keeps its sorted list
  until an item is put or deleted (the only calls that change which items a table holds; updates
  change items in place, and the list holds the items themselves);
- Query and Scan answers are written with `json.dumps`: their result is already DynamoDB's JSON wire
  form (`dynamo_to_dict`), which moto's generic shape-driven serializer otherwise walks attribute by
  attribute (milliseconds per item). Answers holding binary attributes, which that serializer
  base64-encodes, keep the generic path;
- an index's projection (`Item.project`) copies the projected top-level attributes as they are instead
  of converting the whole item to plain JSON and back once per projected attribute (an INCLUDE index
  only names top-level attributes); nested paths keep the generic path.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobwatch_devkit.processes import ServerProcess

DYNAMODB_JSON = "application/x-amz-json-1.0"
FAST_OPERATIONS = frozenset({"Query", "Scan"})


def _has_binary(value: Any) -> bool:
    if isinstance(value, dict):
        return any(key in ("B", "BS") or _has_binary(inner) for key, inner in value.items())
    if isinstance(value, list):
        return any(_has_binary(inner) for inner in value)
    return isinstance(value, bytes | bytearray)


def patch() -> None:
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoResult

    sorted_items = Table.all_items
    put_item, delete_item = Table.put_item, Table.delete_item

    def all_items(self: Table) -> Any:
        cached = self.__dict__.get("_bench_sorted")
        if cached is None:
            cached = self.__dict__["_bench_sorted"] = sorted_items(self)
        return list(cached)

    def put(self: Table, *args: Any, **kwargs: Any) -> Any:
        self.__dict__.pop("_bench_sorted", None)
        return put_item(self, *args, **kwargs)

    def delete(self: Table, *args: Any, **kwargs: Any) -> Any:
        self.__dict__.pop("_bench_sorted", None)
        return delete_item(self, *args, **kwargs)

    from moto.dynamodb.models.dynamo_type import Item

    generic_project = Item.project

    def project(self: Item, projection_expressions: list[list[str]]) -> Item:
        names = [expr[0] for expr in projection_expressions if len(expr) == 1]
        if len(names) != len(projection_expressions) or any("[" in name for name in names):
            return generic_project(self, projection_expressions)
        kept = {name: self.attrs[name].to_json() for name in dict.fromkeys(names) if name in self.attrs}
        return Item(hash_key=self.hash_key, range_key=self.range_key, attrs=kept)

    generic = DynamoResult.execute_result

    def execute_result(self: DynamoResult, context: Any) -> Any:
        if context.operation_model.name not in FAST_OPERATIONS or _has_binary(self.result):
            return generic(self, context)
        return 200, {"Content-Type": DYNAMODB_JSON}, json.dumps(self.result)

    for owner, name, replacement in (
        (Table, "all_items", all_items),
        (Table, "put_item", put),
        (Table, "delete_item", delete),
        (DynamoResult, "execute_result", execute_result),
        (Item, "project", project),
    ):
        setattr(owner, name, replacement)


def fast_moto_process() -> ServerProcess:
    """moto's server with these speed-ups, ready once GET /moto-api/ answers 200 (both benchmarks)."""
    from pathlib import Path

    from jobwatch_devkit.http11 import HOST
    from jobwatch_devkit.processes import ServerProcess, free_port

    port = free_port()
    url = f"http://{HOST}:{port}"
    argv = [sys.executable, "-m", "benchmarks.fast_moto", "-H", HOST, "-p", str(port)]
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))}
    return ServerProcess("moto", argv, ready_url=f"{url}/moto-api/", url=url, env=env, timeout=30)


def main(argv: list[str]) -> None:
    patch()
    from moto.server import main as moto_main

    moto_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
