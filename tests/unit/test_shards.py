"""The shard layout (D44): where an active job's index entry sits and what share of its endpoint's
limits one shard's worker holds. Pure functions, checked on properties and on hand-picked values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobwatch.domain.shards import ONE_SHARD, ShardLayout, shard_value, shared_limit, shared_rate

ENDPOINTS = st.sampled_from(
    [
        "https://a.weaviate.example.com",
        "https://b.weaviate.example.com:8443",
        "https://in01-3f5c2a.api.gcp-us-west1.zillizcloud.com",
        "http://127.0.0.1:9000",
    ]
)
KEYS = st.text(min_size=1, max_size=40)
LAYOUTS = st.builds(ShardLayout, st.integers(1, 64), st.integers(1, 16))


def test_shard_zero_keeps_the_value_every_job_had_before_sharding() -> None:
    assert [shard_value(n) for n in range(3)] == ["ACTIVE", "ACTIVE#1", "ACTIVE#2"]
    assert ONE_SHARD.values() == ["ACTIVE"]
    assert ONE_SHARD.value_of("https://a.example.com", "any-key") == "ACTIVE"


@given(LAYOUTS, ENDPOINTS, KEYS)
def test_every_job_lands_on_a_shard_of_the_layout(layout: ShardLayout, endpoint: str, key: str) -> None:
    shard = layout.shard_of(endpoint, key)
    assert 0 <= shard < layout.shards
    assert layout.value_of(endpoint, key) == layout.values()[shard]


@given(LAYOUTS, ENDPOINTS, st.lists(KEYS, min_size=1, max_size=200, unique=True))
def test_one_endpoints_jobs_sit_on_at_most_its_sub_shards_consecutive_from_its_first(
    layout: ShardLayout, endpoint: str, keys: list[str]
) -> None:
    shards = {layout.shard_of(endpoint, key) for key in keys}
    assert len(shards) <= layout.sub_shards
    assert any(
        all((shard - first) % layout.shards < layout.sub_shards for shard in shards)
        for first in range(layout.shards)
    )


def test_a_big_endpoint_uses_all_its_sub_shards() -> None:
    layout = ShardLayout(8, 4)
    shards = {layout.shard_of("https://big.example.com", f"job-{n}") for n in range(400)}
    assert len(shards) == 4


def test_the_endpoint_not_the_path_decides_the_shard_as_it_decides_the_gate() -> None:
    layout = ShardLayout(16, 1)
    assert layout.shard_of("https://a.example.com/v1/x", "k") == layout.shard_of("https://a.example.com", "j")


@given(st.integers(1, 256), st.integers(1, 16))
def test_the_sub_shards_together_stay_within_an_endpoints_concurrency(limit: int, share: int) -> None:
    per_shard = shared_limit(limit, share)
    assert per_shard >= 1
    assert per_shard * share <= max(limit, share)  # below one poll each, the floor of one applies


@given(st.floats(0.1, 1000), st.integers(1, 16))
def test_the_sub_shards_together_stay_within_an_endpoints_rate(rps: float, share: int) -> None:
    per_shard = shared_rate(rps, share)
    assert per_shard is not None and per_shard * share == pytest.approx(rps)


def test_no_rate_stays_no_rate_and_a_layout_needs_a_shard() -> None:
    assert shared_rate(None, 4) is None
    with pytest.raises(ValueError, match="at least one shard"):
        ShardLayout(0, 4)
