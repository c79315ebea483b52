"""The benchmark's DynamoDB sizing and pricing rules (`jobwatch_tools.cost_model`) on known examples.

Examples marked "AWS docs" are the worked examples of
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html and of the
on-demand pricing page; the others apply the rules of
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html by hand.
"""

from __future__ import annotations

import pytest
from jobwatch_tools import cost_model

KB = 1024


cm = cost_model


# -- item sizes ---------------------------------------------------------------------------------------


def test_string_is_name_plus_utf8_bytes() -> None:
    assert cm.item_size({"pk": {"S": "JOB#abc"}}) == 2 + 7
    assert cm.item_size({"é": {"S": "日本"}}) == 2 + 6


@pytest.mark.parametrize(
    ("number", "size"),
    [
        ("7", 2),  # 1 significant digit: 1 byte + 1
        ("12", 2),
        ("123", 3),
        ("123.45", 4),  # 5 significant digits: 3 bytes + 1
        ("100", 2),  # trailing zeros trimmed
        ("0.0012", 2),  # leading zeros trimmed
        ("1002", 3),  # inner zeros count
        ("-12345678901234567890", 11),
    ],
)
def test_number_is_one_byte_per_two_significant_digits_plus_one(number: str, size: int) -> None:
    assert cm.value_size({"N": number}) == size


def test_binary_null_and_boolean() -> None:
    assert cm.item_size({"b": {"B": b"\x00\x01\x02"}}) == 1 + 3
    assert cm.item_size({"flag": {"BOOL": True}, "none": {"NULL": True}}) == (4 + 1) + (4 + 1)


def test_list_and_map_cost_three_bytes_plus_one_per_element() -> None:
    assert cm.item_size({"outbox": {"M": {}}}) == 6 + 3
    assert cm.item_size({"l": {"L": []}}) == 1 + 3
    # map: name + 3 + per element (key + value + 1)
    item = {"m": {"M": {"a": {"S": "xy"}, "n": {"N": "5"}}}}
    assert cm.item_size(item) == 1 + 3 + (1 + 2 + 1) + (1 + 2 + 1)
    # list: name + 3 + per element (value + 1), nested map inside
    nested = {"l": {"L": [{"S": "abc"}, {"M": {"k": {"BOOL": False}}}]}}
    assert cm.item_size(nested) == 1 + 3 + (3 + 1) + ((3 + (1 + 1 + 1)) + 1)


def test_sets_sum_their_elements() -> None:
    assert cm.value_size({"SS": ["ab", "cde"]}) == 5
    assert cm.value_size({"NS": ["1", "123"]}) == 2 + 3


def test_unknown_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown DynamoDB type"):
        cm.value_size({"X": 1})


# -- capacity units -----------------------------------------------------------------------------------


def test_reads_round_up_to_4kb_aws_docs_examples() -> None:
    # "reading a 3,500-byte item consumes the same throughput as reading a 4 KB item"
    assert cm.read_units(3500, consistent=True) == 1
    assert cm.read_units(3500, consistent=False) == 0.5
    # "if your item size is 8 KB, you require 2 read units ... 1 for eventually consistent"
    assert cm.read_units(8 * KB, consistent=True) == 2
    assert cm.read_units(8 * KB, consistent=False) == 1
    # GetItem: "If you read a 10 KB item, DynamoDB rounds the item size to 12 KB"
    assert cm.read_units(10 * KB, consistent=True) == 3


def test_query_sums_items_before_rounding_aws_docs_examples() -> None:
    # "a Query returns 10 items whose combined size is 40.8 KB: rounded to 44 KB" -> 11 units
    assert cm.read_units(int(40.8 * KB), consistent=True) == 11
    assert cm.read_units(int(40.8 * KB), consistent=False) == 5.5
    # "1500 items of 64 bytes each: the cumulative size is 96 KB" -> 24 units, not 1500
    page = [{"d": {"S": "x" * 63}}] * 1500
    assert sum(cm.item_size(i) for i in page) == 96_000
    assert cm.read_units(sum(cm.item_size(i) for i in page), consistent=True) == 24


def test_a_read_that_finds_nothing_costs_the_minimum() -> None:
    assert cm.read_units(0, consistent=False) == 0.5
    assert cm.read_units(0, consistent=True) == 1


def test_writes_round_up_to_1kb_aws_docs_examples() -> None:
    # pricing page: "a standard write request of a 1 KB item would require one WCU ... 3 KB three"
    assert cm.write_units(1 * KB) == 1
    assert cm.write_units(3 * KB) == 3
    assert cm.write_units(500) == 1
    assert cm.write_units(int(3.5 * KB)) == 4  # rounds up to the next 1 KB


def test_update_counts_the_larger_of_before_and_after() -> None:
    small = {"pk": {"S": "a"}, "doc": {"S": "x" * 900}}
    large = {"pk": {"S": "a"}, "doc": {"S": "x" * 1500}}
    assert cm.table_write_units(small, large) == 2
    assert cm.table_write_units(large, small) == 2
    assert cm.table_write_units(None, small) == 1


INDEX = cm.IndexSpec("pollable", ("pollShard", "pk"), frozenset({"doc"}))
TABLE_KEYS = ("pk", "sk")


def _job(doc: str, *, shard: str | None = "ACTIVE", extra: int = 0) -> dict[str, dict[str, str]]:
    item = {"pk": {"S": "JOB#k"}, "sk": {"S": "JOB"}, "doc": {"S": doc}, "source": {"S": "y" * extra}}
    if shard is not None:
        item["pollShard"] = {"S": shard}
    return item


def test_index_entry_keeps_keys_and_projected_attributes_only() -> None:
    entry = INDEX.entry(_job("d", extra=10), TABLE_KEYS)
    assert set(entry) == {"pk", "sk", "pollShard", "doc"}
    assert INDEX.entry(_job("d", shard=None), TABLE_KEYS) is None  # sparse: not in the index


def test_index_writes_follow_the_gsi_rules() -> None:
    before, moved = _job("a"), _job("b")
    assert cm.index_write_units(INDEX, TABLE_KEYS, before, moved) == 1  # projected attribute changed
    assert cm.index_write_units(INDEX, TABLE_KEYS, before, _job("a", extra=5)) == 0  # unprojected only
    assert cm.index_write_units(INDEX, TABLE_KEYS, None, before) == 1  # enters the index
    assert cm.index_write_units(INDEX, TABLE_KEYS, before, _job("a", shard=None)) == 1  # leaves it
    assert cm.index_write_units(INDEX, TABLE_KEYS, before, _job("a", shard="OTHER")) == 2  # key changed
    assert cm.index_write_units(INDEX, TABLE_KEYS, _job("a", shard=None), _job("b", shard=None)) == 0


def test_a_write_pays_the_table_and_every_index() -> None:
    before, after = _job("a" * 1000), _job("b" * 1000)
    # table: ~1.05 KB -> 2 units; index entry (no `source`) also ~1.04 KB -> 2 units
    assert cm.write_request_units(before, after, [INDEX], TABLE_KEYS) == 4


# -- money --------------------------------------------------------------------------------------------


def test_vcpu_share_is_memory_over_1769_mb() -> None:
    assert cm.vcpu_share(1769) == 1.0
    assert cm.vcpu_share(512) == pytest.approx(0.2894, abs=1e-4)
    assert cm.vcpu_share(4096) == 1.0


def test_monthly_cost_arithmetic() -> None:
    cycle = cm.CycleFigures(jobs=2000, cpu_s=1.0, ddb_read_units=100.0, ddb_write_units=0.0, sns_publishes=0)
    usd = cm.monthly_cost_per_1000_jobs(cycle, 1769, 43_200)
    per_k = 43_200 * 1000 / 2000
    gb = 1769 / 1024
    assert usd["lambda_duration"] == pytest.approx(1.0 * gb * 0.0000133334 * per_k)
    assert usd["lambda_requests"] == pytest.approx(0.20e-6 * per_k)
    assert usd["ddb_reads"] == pytest.approx(100 * 0.125e-6 * per_k)
    assert usd["ddb_writes"] == 0
    assert usd["sns_publishes"] == 0
    assert usd["total"] == pytest.approx(sum(v for k, v in usd.items() if k != "total"))
