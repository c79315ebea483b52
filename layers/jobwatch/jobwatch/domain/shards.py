"""Where an active job sits in the polling index, and what share of its endpoint's limits a shard gets.

The index is write-sharded (D44): `pollShard` takes one of K values, so a fleet's index reads spread
over K partitions and K workers can poll disjoint parts of it. Shards are keyed by endpoint: all of one
endpoint's jobs sit on at most `spread` consecutive shards (its sub-shards), so each worker that polls
one of them holds a 1/`spread` share of that endpoint's concurrency and request rate, and the
endpoint's limits stay global however many workers run. Everything here is pure arithmetic on names.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from jobwatch.domain.endpoints import endpoint_of
from jobwatch.settings import StoreSettings

FIRST_SHARD_VALUE = "ACTIVE"
"""Shard 0's `pollShard` value: the only value before sharding, so a deployment that grows K keeps
polling every job it already had (on shard 0) until `jobwatch upgrade` spreads them."""


def _hash(text: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big"
    )


def shard_value(shard: int) -> str:
    """The stored `pollShard` of shard `shard`."""
    return FIRST_SHARD_VALUE if shard == 0 else f"{FIRST_SHARD_VALUE}#{shard}"


@dataclass(frozen=True)
class ShardLayout:
    """K shards, each endpoint over `spread` of them (fewer when K is smaller)."""

    shards: int = 1
    spread: int = 4

    def __post_init__(self) -> None:
        if self.shards < 1 or self.spread < 1:
            raise ValueError(f"a layout needs at least one shard and a spread of one: {self}")

    @property
    def sub_shards(self) -> int:
        """How many shards one endpoint's jobs spread over."""
        return min(self.spread, self.shards)

    def shard_of(self, endpoint_url: str, key: str) -> int:
        """The job's shard: its endpoint's first shard, plus its sub-shard from its own key."""
        if self.shards == 1:
            return 0
        first = _hash(endpoint_of(endpoint_url)) % self.shards
        return (first + _hash(key) % self.sub_shards) % self.shards

    def value_of(self, endpoint_url: str, key: str) -> str:
        return shard_value(self.shard_of(endpoint_url, key))

    def values(self) -> list[str]:
        return [shard_value(shard) for shard in range(self.shards)]


def layout_of(settings: StoreSettings) -> ShardLayout:
    """The deployment's layout (`JOBWATCH_POLL_SHARDS`, `JOBWATCH_ENDPOINT_SPREAD`)."""
    return ShardLayout(settings.poll_shards, settings.endpoint_spread)


ONE_SHARD = ShardLayout()
"""The layout of a deployment that never set `JOBWATCH_POLL_SHARDS`."""


def shared_limit(limit: int, share: int) -> int:
    """One sub-shard's part of an endpoint's concurrency (never below one poll in flight)."""
    return max(1, limit // max(1, share))


def shared_rate(rps: float | None, share: int) -> float | None:
    """One sub-shard's part of an endpoint's request rate: together they stay within `rps`."""
    return None if rps is None else rps / max(1, share)
