"""The pure parts of `make bench-scale` (`bench_scale.py`): the bound, the poll counting, the endpoint
plan and the seeded job state. No I/O here, so `tests/unit/test_bench_scale.py` checks them fast.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from jobwatch.domain.model import JobSpec, Snapshot, TrackedJob
from jobwatch.domain.shards import ShardLayout
from jobwatch.domain.transitions import Outcome, Policy, decide, new_life

T = TypeVar("T")

TARGET_RATIO = 1.3
"""Issue 14's target: a fanned-out cycle within 1.3 times the bound."""


def bound_s(jobs: int, latency_ms: float, workers: int, per_worker_concurrency: int) -> float:
    """The shortest cycle W workers of C polls in flight each can have when every poll waits
    `latency_ms` upstream: jobs x latency / (W x C)."""
    return jobs * latency_ms / 1000 / (workers * per_worker_concurrency)


def polls_between(before: Mapping[str, int], after: Mapping[str, int]) -> Counter[str]:
    """Status requests per job id between two snapshots of the simulators' cumulative counters."""
    return Counter({job: n - before.get(job, 0) for job, n in after.items() if n > before.get(job, 0)})


def polled_twice(polls: Mapping[str, int]) -> int:
    """Jobs that upstream saw more than once in the window."""
    return sum(1 for n in polls.values() if n > 1)


def missed(active: Iterable[str], polls: Mapping[str, int]) -> int:
    """Active jobs that upstream did not see at all in the window."""
    return sum(1 for job in active if polls.get(job, 0) < 1)


def targets_met(cycle_s: float, bound: float, twice: int, not_polled: int) -> bool:
    return cycle_s <= TARGET_RATIO * bound and twice == 0 and not_polled == 0


@dataclass(frozen=True)
class PlannedEndpoint:
    first_shard: int
    """Where the endpoint's sub-shards start (`ShardLayout.shard_of` of its URL)."""
    jobs: int


def endpoint_plan(
    jobs: int, shards: int, spread: int, weights: Sequence[float], max_endpoints: int
) -> list[PlannedEndpoint]:
    """Endpoints whose sub-shard ranges tile the ring of shards evenly, so every shard holds about
    the same number of jobs and the bound is reachable.

    An endpoint's jobs sit on `s = min(spread, shards)` consecutive shards from its first one. With
    `g = gcd(shards, s)`, `shards / g` endpoints of equal size starting `g` apart cover every shard
    exactly `s / g` times: that is one group. Groups differ in size (`weights`, the first the big
    one) and start at different offsets; as many groups as `max_endpoints` allows, at least one.
    """
    sub = min(spread, shards)
    step = math.gcd(shards, sub)
    per_group = shards // step
    groups = max(1, min(len(weights), max_endpoints // per_group))
    chosen = weights[:groups]
    total_weight = sum(chosen)
    plan: list[PlannedEndpoint] = []
    left = jobs
    for number, weight in enumerate(chosen):
        group_jobs = left if number == groups - 1 else round(jobs * weight / total_weight)
        left -= group_jobs
        share, extra = divmod(group_jobs, per_group)
        offset = number % step
        for member in range(per_group):
            plan.append(PlannedEndpoint(offset + member * step, share + (1 if member < extra else 0)))
    return plan


def expected_shard_jobs(plan: Sequence[PlannedEndpoint], shards: int, spread: int) -> list[float]:
    """Jobs per shard if every endpoint's jobs spread evenly over its sub-shards (they do, by the hash
    of their keys, up to sampling noise)."""
    sub = min(spread, shards)
    loads = [0.0] * shards
    for endpoint in plan:
        for step in range(sub):
            loads[(endpoint.first_shard + step) % shards] += endpoint.jobs / sub
    return loads


def first_shard(layout: ShardLayout, endpoint_url: str) -> int:
    """The first of the endpoint's sub-shards (the same hash `ShardLayout.shard_of` starts from)."""
    return ShardLayout(layout.shards, 1).shard_of(endpoint_url, "")


def observed_job(spec: JobSpec, seen: Snapshot, now_iso: str, now_s: float, policy: Policy) -> TrackedJob:
    """A job as the poller leaves it after its first poll saw `seen` (what `add_job`, `decide` and
    `save_state` store), its transition already published: the fleet's steady state, written in bulk
    instead of through 20,000 busy polls on moto."""
    fresh = TrackedJob(spec=spec, created_at=now_iso, updated_at=now_iso, life=new_life(now_s))
    decision = decide(fresh, seen, now_iso, policy)
    if decision.outcome is not Outcome.WRITE or decision.health is None:
        raise ValueError(f"a first poll of {spec.job_id} would not be written: {decision.outcome}")
    return fresh.model_copy(
        update={
            "snapshot": decision.snapshot,
            "health": decision.health,
            "version": fresh.version + 1,
            "updated_at": now_iso,
            "changed_at": now_iso if decision.snapshot_changed else fresh.changed_at,
            "last_transition_id": decision.transitions[-1].transition_id
            if decision.transitions
            else fresh.last_transition_id,
        }
    )


def constant_runs(count: int, value_at: Callable[[int], T]) -> list[tuple[int, int, T]]:
    """Split positions 0..count-1 into maximal runs of equal `value_at`, asking it about few positions:
    a range whose two ends agree is taken as one run. Right for values that change at a few points
    and never come back (a job's start time is its creation second, and jobs are created in order)."""
    seen: dict[int, T] = {}

    def at(position: int) -> T:
        if position not in seen:
            seen[position] = value_at(position)
        return seen[position]

    runs: list[tuple[int, int, T]] = []
    pending = [(0, count - 1)] if count > 0 else []
    while pending:
        low, high = pending.pop()
        if at(low) == at(high):
            runs.append((low, high, at(low)))
        else:
            middle = (low + high) // 2
            pending += [(middle + 1, high), (low, middle)]
    merged: list[tuple[int, int, T]] = []
    for low, high, value in runs:
        if merged and merged[-1][2] == value and merged[-1][1] + 1 == low:
            merged[-1] = (merged[-1][0], high, value)
        else:
            merged.append((low, high, value))
    return merged
