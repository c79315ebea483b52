"""What DynamoDB, Lambda and SNS bill for the poller, from measured figures: pure functions, no I/O.

Item sizes follow "DynamoDB item sizes and formats"
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):
an attribute costs the UTF-8 bytes of its name plus its value; a string its UTF-8 bytes, a binary its
raw bytes, a number about 1 byte per two significant digits plus 1 (leading and trailing zeros
trimmed), null and Boolean 1 byte, a List or Map 3 bytes plus its elements, each element 1 byte more.
Sets are counted as the sum of their elements (the page states no overhead for them).

Capacity follows "DynamoDB read and write operations"
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html):
a read rounds up to 4 KB per unit (half a unit eventually consistent), and a Query's items count as
one read (their sizes summed, then rounded), page by page; a write rounds up to 1 KB per unit and an
update or a replacing put counts the larger of the item before and after. Every request consumes at
least one unit (half for an eventually consistent read), also when it finds nothing. A global
secondary index is written as "Global secondary indexes: writes"
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Writes) says: one
write when an item enters or leaves the index or only its projected attributes change, two when its
index key changes, none when the item is in the index neither before nor after; each index write is
sized by the index entry (the projected attributes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

Item = Mapping[str, Mapping[str, Any]]
"""An item in DynamoDB's typed wire form: {"name": {"S": "text"}, "n": {"N": "12"}, ...}."""

READ_UNIT_BYTES = 4096
WRITE_UNIT_BYTES = 1024
NESTED_OVERHEAD_BYTES = 3
ELEMENT_OVERHEAD_BYTES = 1

# -- prices (us-east-1, on-demand, as published on the pages named; checked for this benchmark) --------
LAMBDA_ARM64_USD_PER_GB_S = 0.0000133334
"""AWS Lambda pricing, https://aws.amazon.com/lambda/pricing/ , US East (N. Virginia), Arm, first
6 billion GB-seconds per month."""
LAMBDA_USD_PER_REQUEST = 0.20 / 1_000_000
"""Same page: $0.20 per 1M requests."""
LAMBDA_MB_PER_VCPU = 1769
"""https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html : at 1,769 MB a function
has the equivalent of one vCPU; CPU is allocated in proportion to memory."""
DDB_USD_PER_READ_UNIT = 0.125 / 1_000_000
"""https://aws.amazon.com/dynamodb/pricing/on-demand/ , US East (N. Virginia), Standard table class:
$0.125 per million read request units since the 50% on-demand price cut effective 2024-11-01
(AWS What's New, 2024-11-14, "Amazon DynamoDB reduces prices for on-demand throughput by 50%")."""
DDB_USD_PER_WRITE_UNIT = 0.625 / 1_000_000
"""Same page and date: $0.625 per million write request units."""
SNS_USD_PER_PUBLISH = 0.50 / 1_000_000
"""https://aws.amazon.com/sns/pricing/ : standard topics, $0.50 per 1 million requests (each 64 KB
chunk of a publish counts as one request; jobwatch's messages are far below that)."""
MINUTES_PER_MONTH = 30 * 24 * 60


# -- item sizes ---------------------------------------------------------------------------------------


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def number_size(text: str) -> int:
    """1 byte per two significant digits, plus 1 (zero counts as one digit)."""
    digits = format(abs(Decimal(text)), "f").replace(".", "").strip("0")
    return math.ceil(max(1, len(digits)) / 2) + 1


def value_size(value: Mapping[str, Any]) -> int:
    """Size of one typed value without its name."""
    ((kind, data),) = value.items()
    if kind == "S":
        return utf8_len(data)
    if kind == "N":
        return number_size(data)
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(utf8_len(s) for s in data)
    if kind == "NS":
        return sum(number_size(n) for n in data)
    if kind == "BS":
        return sum(len(b) for b in data)
    if kind == "L":
        return NESTED_OVERHEAD_BYTES + sum(value_size(v) + ELEMENT_OVERHEAD_BYTES for v in data)
    if kind == "M":
        return NESTED_OVERHEAD_BYTES + sum(
            utf8_len(k) + value_size(v) + ELEMENT_OVERHEAD_BYTES for k, v in data.items()
        )
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Item) -> int:
    """The item's size as DynamoDB bills it: attribute names plus values."""
    return sum(utf8_len(name) + value_size(value) for name, value in item.items())


# -- capacity units -----------------------------------------------------------------------------------


def read_units(size_bytes: int, *, consistent: bool) -> float:
    """Units of one read request (GetItem, or one Query page whose items sum to `size_bytes`)."""
    units = max(1, math.ceil(size_bytes / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


def write_units(size_bytes: int) -> int:
    """Units of one write of an item of `size_bytes` (the larger of before and after for updates)."""
    return max(1, math.ceil(size_bytes / WRITE_UNIT_BYTES))


@dataclass(frozen=True)
class IndexSpec:
    """A global secondary index: its key attributes and what it projects (None: ALL)."""

    name: str
    keys: tuple[str, ...]
    projected: frozenset[str] | None

    def entry(self, item: Item | None, table_keys: Sequence[str]) -> dict[str, Mapping[str, Any]] | None:
        """The item's entry in this index, or None when the item lacks a key attribute (sparse)."""
        if item is None or any(key not in item for key in self.keys):
            return None
        if self.projected is None:
            return dict(item)
        wanted = self.projected | set(self.keys) | set(table_keys)
        return {name: value for name, value in item.items() if name in wanted}


def table_write_units(before: Item | None, after: Item | None) -> int:
    """A put, update or delete of the table item: the larger of the two images, at least one unit."""
    sizes = [item_size(image) for image in (before, after) if image is not None]
    return write_units(max(sizes, default=0))


def index_write_units(
    index: IndexSpec, table_keys: Sequence[str], before: Item | None, after: Item | None
) -> int:
    old, new = index.entry(before, table_keys), index.entry(after, table_keys)
    if old is None and new is None:
        return 0
    if old is None:
        assert new is not None
        return write_units(item_size(new))
    if new is None:
        return write_units(item_size(old))
    if any(old[key] != new[key] for key in index.keys):
        return write_units(item_size(old)) + write_units(item_size(new))
    if old == new:
        return 0
    return write_units(max(item_size(old), item_size(new)))


def write_request_units(
    before: Item | None, after: Item | None, indexes: Sequence[IndexSpec], table_keys: Sequence[str]
) -> int:
    """All units one successful write consumes: the table's and every index's."""
    return table_write_units(before, after) + sum(
        index_write_units(index, table_keys, before, after) for index in indexes
    )


# -- money --------------------------------------------------------------------------------------------


def vcpu_share(memory_mb: int) -> float:
    return min(1.0, memory_mb / LAMBDA_MB_PER_VCPU)


@dataclass(frozen=True)
class CycleFigures:
    """What one poll cycle over `jobs` jobs used, as measured."""

    jobs: int
    cpu_s: float
    ddb_read_units: float
    ddb_write_units: float
    sns_publishes: int
    invocations: int = 1


def monthly_cost_per_1000_jobs(
    cycle: CycleFigures, memory_mb: int, cycles_per_month: int
) -> dict[str, float]:
    """USD per 1,000 jobs polled every cycle for a month, by component.

    Lambda duration is bounded below by CPU: at `memory_mb` the function gets `vcpu_share` of a vCPU,
    so a cycle needing `cpu_s` of CPU lasts at least `cpu_s / vcpu_share` billed seconds (waiting on
    upstream answers only adds to it). Invocations are one per cycle, spread over the cycle's jobs.
    """
    share = vcpu_share(memory_mb)
    scale = cycles_per_month * 1000 / cycle.jobs
    billed_s = cycle.cpu_s / share
    gb_s = billed_s * memory_mb / 1024
    out = {
        "lambda_duration": gb_s * LAMBDA_ARM64_USD_PER_GB_S * scale,
        "lambda_requests": cycle.invocations * LAMBDA_USD_PER_REQUEST * scale,
        "ddb_reads": cycle.ddb_read_units * DDB_USD_PER_READ_UNIT * scale,
        "ddb_writes": cycle.ddb_write_units * DDB_USD_PER_WRITE_UNIT * scale,
        "sns_publishes": cycle.sns_publishes * SNS_USD_PER_PUBLISH * scale,
    }
    out["total"] = sum(out.values())
    return out
