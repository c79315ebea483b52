"""A cycle belongs to one scheduler tick: it ends before the next, and successive cycles start at
different places on the ring of jobs so an oversized fleet is covered in turn."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobwatch.domain.cadence import cycle_rotation, next_tick, rotated
from jobwatch.entrypoints.poller import ScheduleInput


def test_the_next_tick_is_one_period_after_the_scheduled_time() -> None:
    assert next_tick(now_s=1_000.0, scheduled_s=990.0, period_s=60.0) == 1_050.0
    assert next_tick(now_s=1_000.0, scheduled_s=None, period_s=60.0) == 1_060.0  # a manual run
    # A clock a little behind the scheduler's never extends the run past its tick.
    assert next_tick(now_s=1_000.0, scheduled_s=1_003.0, period_s=60.0) == 1_060.0


@pytest.mark.parametrize(
    ("scheduled", "epoch"),
    [
        ("2026-12-03T10:00:00Z", 1796292000.0),
        ("2026-12-03T10:00:00+00:00", 1796292000.0),
        ("<aws.scheduler.scheduled-time>", None),  # a placeholder Scheduler did not resolve
        (None, None),
        ("", None),
    ],
)
def test_the_scheduled_time_is_read_when_it_is_a_timestamp(
    scheduled: str | None, epoch: float | None
) -> None:
    assert ScheduleInput(scheduledTime=scheduled).scheduled_epoch() == epoch


def test_consecutive_cycles_start_far_apart_on_the_ring() -> None:
    starts = [cycle_rotation(tick * 60.0, 60.0) for tick in range(1_000, 1_010)]
    gaps = [abs(a - b) for a, b in itertools.pairwise(starts)]
    assert min(min(gap, 1 - gap) for gap in gaps) > 0.2


@given(
    jobs=st.integers(min_value=2, max_value=400),
    capacity=st.floats(min_value=0.2, max_value=0.9),
    first_tick=st.integers(min_value=0, max_value=10**7),
)
def test_a_fleet_larger_than_a_cycle_is_covered_within_a_few_cycles(
    jobs: int, capacity: float, first_tick: int
) -> None:
    """Each cycle polls the first `capacity` of the fleet in its order; every job gets a turn within
    about 2.6 x n/m cycles (m of n polled per cycle: the three-distance theorem's bound for the
    golden-ratio sequence hitting an interval of length m/n), however the key hashes cluster."""
    keys = [f"weaviate-export.{n:06d}" for n in range(jobs)]
    per_cycle = max(1, int(jobs * capacity))
    seen: set[str] = set()
    cycles = 0
    while len(seen) < jobs:
        rotation = cycle_rotation((first_tick + cycles) * 60.0, 60.0)
        seen.update(rotated(keys, lambda key: key, rotation)[:per_cycle])
        cycles += 1
        assert cycles <= math.ceil(2.7 * jobs / per_cycle), f"{jobs - len(seen)} jobs not polled yet"


def test_a_job_behind_clustered_neighbours_is_not_starved() -> None:
    """The case Hypothesis found against ranking by spot: 12 jobs, 2 per cycle, one of them just
    behind two close spots waited 55 cycles; by position it waits at most ceil(2.7 x 6)."""
    keys = [f"weaviate-export.{n:06d}" for n in range(12)]
    seen: set[str] = set()
    cycles = 0
    while len(seen) < 12 and cycles < 100:
        seen.update(rotated(keys, lambda key: key, cycle_rotation((7944854 + cycles) * 60.0, 60.0))[:2])
        cycles += 1
    assert len(seen) == 12 and cycles <= 17
