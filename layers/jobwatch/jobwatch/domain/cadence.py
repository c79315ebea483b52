"""Adaptive polling, derived from stored timestamps only (a quiet poll must write nothing).

The scheduler fires every `poll_period_s`. Each job is due every k-th period, k chosen from what is
stored: fresh or nearly finished jobs every period; jobs that have not moved for a long time, stalled
jobs and jobs behind an open UNREACHABLE alert less often. A per-job offset spreads the polls of
slow jobs over the periods (jitter), so a large fleet does not hit an endpoint in one burst.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from jobwatch.domain.model import TrackedJob

T = TypeVar("T")

NEAR_COMPLETION = 90.0


def _age_s(iso: str | None, now_s: float) -> float:
    if not iso:
        return 0.0
    try:
        return now_s - datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def every_nth_period(job: TrackedJob, now_s: float) -> int:
    """How many scheduler periods apart this job's polls should be."""
    snapshot = job.snapshot
    if snapshot is None or (job.health.consecutive_errors and job.health.alert is None):
        return 1  # never observed, or an error streak being counted: keep looking
    if job.health.alert is not None:
        return 3
    if job.health.stalled:
        return 5
    if snapshot.progress is not None and snapshot.progress >= NEAR_COMPLETION:
        return 1
    unchanged_for = _age_s(job.changed_at, now_s)
    if unchanged_for < 15 * 60:
        return 1
    if unchanged_for < 2 * 3600:
        return 2
    return 5


def held_by_upstream(job: TrackedJob, now_s: float) -> bool:
    """Upstream's Retry-After (stored by the last rate-limited poll) has not passed yet.

    Honoured whether or not adaptive polling is on: it is the server's request, not our tuning."""
    until = job.health.retry_not_before
    return until is not None and _age_s(until, now_s) < 0


def _offset(key: str, modulo: int) -> int:
    return int(hashlib.blake2b(key.encode(), digest_size=4).hexdigest(), 16) % modulo


def is_due(job: TrackedJob, now_s: float, period_s: float) -> bool:
    every = every_nth_period(job, now_s)
    if every <= 1 or period_s <= 0:
        return True
    slot = int(now_s // period_s)
    return (slot + _offset(job.key, every)) % every == 0


def next_tick(now_s: float, scheduled_s: float | None, period_s: float) -> float:
    """When the schedule fires next: one period after this run's scheduled time (or after now, for a
    run without one). A run that started late gets less time, never the next run's."""
    return (now_s if scheduled_s is None else min(scheduled_s, now_s)) + period_s


def tick_margin_s(upstream_deadline_s: float, period_s: float) -> float:
    """How long before the next tick a cycle stops starting polls (D39): a poll started then still
    ends before the tick, its answer bounded by the upstream deadline."""
    return min(upstream_deadline_s, period_s / 4)


_GOLDEN = (5**0.5 - 1) / 2


def cycle_rotation(tick_s: float, period_s: float) -> float:
    """Where on the ring of jobs this cycle starts (0..1): the golden-ratio sequence over tick numbers,
    so consecutive cycles start far apart and a fleet larger than one cycle's capacity is covered
    within a few cycles (with no per-poll writes to remember who waited)."""
    tick_number = int(tick_s // max(period_s, 1.0))
    return (tick_number * _GOLDEN) % 1.0


def ring_spot(key: str) -> float:
    """A job's fixed spot on the ring (0..1), from its key alone."""
    return int(hashlib.blake2b(key.encode(), digest_size=4).hexdigest(), 16) / 2**32


def rotated(items: Sequence[T], key: Callable[[T], str], rotation: float) -> list[T]:
    """The fleet in this cycle's order: by ring spot, starting at position `rotation` x n.

    Positions, not spots, are rotated through: each job is first in line for exactly 1/n of the
    rotations however the hashes cluster, so a cycle that gets through `m` of `n` jobs polls a given
    job for a rotation in an interval of length m/n, which the golden-ratio sequence of
    `cycle_rotation` hits within about 2.6 n/m cycles (the three-distance theorem). Counting from
    the spot itself let a job just behind two close neighbours wait 50 cycles (found by Hypothesis)."""
    ordered = sorted(items, key=lambda item: ring_spot(key(item)))
    start = int(rotation * len(ordered)) % len(ordered) if ordered else 0
    return ordered[start:] + ordered[:start]
