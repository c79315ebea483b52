"""Adaptive polling, derived from stored timestamps only (a quiet poll must write nothing).

The scheduler fires every `poll_period_s`. Each job is due every k-th period, k chosen from what is
stored: fresh or nearly finished jobs every period; jobs that have not moved for a long time, stalled
jobs and jobs behind an open UNREACHABLE alert less often. A per-job offset spreads the polls of
slow jobs over the periods (jitter), so a large fleet does not hit an endpoint in one burst.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from jobwatch.domain.model import TrackedJob

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
