"""Adaptive polling: derived from stored timestamps, spread by a per-job offset."""

from __future__ import annotations

from datetime import UTC, datetime

from jobwatch.domain.cadence import every_nth_period, held_by_upstream, is_due
from jobwatch.domain.model import Health, JobSpec, Phase, Snapshot, TrackedJob

NOW_S = datetime(2026, 11, 22, 12, 0, tzinfo=UTC).timestamp()


def job(
    key: str = "a", *, progress: float | None = 10.0, changed_min_ago: float = 1, **health: object
) -> TrackedJob:
    changed = datetime.fromtimestamp(NOW_S - changed_min_ago * 60, tz=UTC).isoformat()
    return TrackedJob(
        spec=JobSpec(source="weaviate-export", endpoint="https://w", job_id=key, backend="s3"),
        snapshot=Snapshot(phase=Phase.RUNNING, status="T", progress=progress),
        created_at="x",
        updated_at="x",
        changed_at=changed,
        health=Health(**health),  # type: ignore[arg-type]
    )


def test_fresh_and_near_complete_jobs_every_period() -> None:
    assert every_nth_period(job(changed_min_ago=1), NOW_S) == 1
    assert every_nth_period(job(progress=95.0, changed_min_ago=600), NOW_S) == 1


def test_quiet_stalled_and_unreachable_jobs_less_often() -> None:
    assert every_nth_period(job(changed_min_ago=30), NOW_S) == 2
    assert every_nth_period(job(changed_min_ago=300), NOW_S) == 5
    assert every_nth_period(job(stalled=True), NOW_S) == 5
    assert every_nth_period(job(alert="UNREACHABLE", consecutive_errors=3), NOW_S) == 3
    assert every_nth_period(job(consecutive_errors=1), NOW_S) == 1  # counting an error streak


def test_slow_jobs_are_spread_over_periods_and_each_polled_once_per_interval() -> None:
    jobs = [job(f"job-{n}", changed_min_ago=300) for n in range(200)]
    per_slot = [sum(is_due(j, NOW_S + slot * 60, 60) for j in jobs) for slot in range(5)]
    assert sum(per_slot) == 200  # every job exactly once in its 5-period interval
    assert max(per_slot) < 80  # and not all in the same period


def test_a_stored_retry_after_hold_keeps_the_job_unpolled_until_it_passes() -> None:
    until = datetime.fromtimestamp(NOW_S + 120, tz=UTC).isoformat()
    held = job(retry_not_before=until, consecutive_errors=1)
    assert held_by_upstream(held, NOW_S)
    assert held_by_upstream(held, NOW_S + 119.9)
    assert not held_by_upstream(held, NOW_S + 120)
    assert not held_by_upstream(job(), NOW_S)
    assert not held_by_upstream(job(retry_not_before="not a time"), NOW_S)  # never blocks on bad data
