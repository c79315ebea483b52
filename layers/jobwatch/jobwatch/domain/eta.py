"""Estimated completion of a running job, from its progress history (D41). Pure: no I/O, no clock.

The estimate is linear: the rate from a stored *baseline* (where the current run's progress started)
to the *current* mark (the stored snapshot, or the one just seen), kept up until 100 %. Nothing here
writes: the baseline is moved only by `next_baseline`, inside writes the poller makes anyway (first
observation, phase changes, progress going back), so estimating never costs a DynamoDB write (D40).

No estimate when progress is unknown, has not moved since the baseline (flat), went back (restart),
is at 100 % while the job still runs (finishing: sorting, index building), the job is not RUNNING or
is STALLED, or the rate implies more than `MAX_ETA_S` (30 days): such a number tells nobody anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from jobwatch.domain.humanize import parse_timestamp
from jobwatch.domain.model import Phase, ProgressMark, Snapshot, TrackedJob

MAX_ETA_S = 30 * 86_400.0
"""An estimate further away than this (30 days) is dropped as absurd: a crawl, not a forecast."""

COMPLETE = 100.0


class NoEstimate(StrEnum):
    """Why there is no estimate; the value is the text shown (`no estimate (progress flat)`)."""

    NOT_RUNNING = "not running"
    STALLED = "stalled"
    UNKNOWN = "progress unknown"
    NO_HISTORY = "no progress history yet"
    FLAT = "progress flat"
    RESTARTED = "progress went back"
    FINISHING = "at 100%, finishing"
    TOO_SLOW = "over 30 days at this rate"
    PASSED = "estimate passed without progress"


@dataclass(frozen=True, slots=True)
class Eta:
    """An estimated completion time, or why there is none (exactly one of the two is set)."""

    at: str | None = None
    """ISO 8601 UTC, seconds precision, `Z`."""
    reason: NoEstimate | None = None

    @staticmethod
    def none(reason: NoEstimate) -> Eta:
        return Eta(None, reason)


def seconds_left(base_progress: float, progress: float, span_s: float) -> float | NoEstimate:
    """The linear core: `progress` percent reached `span_s` seconds after `base_progress`; the time
    left to 100 % at that rate, or why it cannot be told."""
    if progress >= COMPLETE:
        return NoEstimate.FINISHING
    if progress < base_progress:
        return NoEstimate.RESTARTED
    if progress == base_progress or span_s <= 0:
        return NoEstimate.FLAT
    left = (COMPLETE - progress) * span_s / (progress - base_progress)
    return NoEstimate.TOO_SLOW if left > MAX_ETA_S else left


def estimate(
    baseline: ProgressMark | None,
    current: ProgressMark | None,
    *,
    phase: Phase = Phase.RUNNING,
    stalled: bool = False,
    now_iso: str | None = None,
) -> Eta:
    """ETA of a job whose progress went from `baseline` to `current`. With `now_iso`, an estimate
    already in the past (nothing stored since it was made: the job did not move) is none."""
    if phase is not Phase.RUNNING:
        return Eta.none(NoEstimate.NOT_RUNNING)
    if stalled:
        return Eta.none(NoEstimate.STALLED)
    if current is None:
        return Eta.none(NoEstimate.UNKNOWN)
    if baseline is None:
        return Eta.none(NoEstimate.NO_HISTORY)
    return _linear(baseline, current, now_iso)


def _linear(baseline: ProgressMark, current: ProgressMark, now_iso: str | None) -> Eta:
    start, end = parse_timestamp(baseline.at), parse_timestamp(current.at)
    if start is None or end is None:
        return Eta.none(NoEstimate.NO_HISTORY)
    left = seconds_left(baseline.progress, current.progress, (end - start).total_seconds())
    if isinstance(left, NoEstimate):
        return Eta.none(left)
    at = end + timedelta(seconds=left)
    now = parse_timestamp(now_iso)
    if now is not None and at < now:
        return Eta.none(NoEstimate.PASSED)
    return Eta(_iso(at))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _mark(at: str | None, snapshot: Snapshot | None) -> ProgressMark | None:
    if at is None or snapshot is None or snapshot.progress is None:
        return None
    return ProgressMark(at=at, progress=snapshot.progress)


def job_eta(job: TrackedJob, now_iso: str | None = None) -> Eta:
    """The ETA of a stored job: its baseline to its stored snapshot (stored at `changed_at`)."""
    snapshot = job.snapshot
    if snapshot is None:
        return Eta.none(NoEstimate.NOT_RUNNING)
    return estimate(
        job.health.progress_baseline,
        _mark(job.changed_at, snapshot),
        phase=snapshot.phase,
        stalled=job.health.stalled,
        now_iso=now_iso,
    )


def next_baseline(job: TrackedJob, seen: Snapshot, now_iso: str) -> ProgressMark | None:
    """The baseline to store with `seen` when the job is written anyway. Kept while the run goes on;
    set when a run begins (first observation, a phase change to RUNNING, progress first known);
    reset when progress went back (a restart); dropped when the job is not running."""
    baseline, stored = job.health.progress_baseline, job.snapshot
    if seen.phase is not Phase.RUNNING:
        return None
    if seen.progress is None:
        return baseline
    if baseline is None or stored is None or stored.phase is not Phase.RUNNING:
        return _run_start(seen, now_iso)
    if _went_back(baseline, stored, seen.progress):
        return ProgressMark(at=now_iso, progress=seen.progress)
    return baseline


def _went_back(baseline: ProgressMark, stored: Snapshot, progress: float) -> bool:
    """Progress below the baseline or below what was stored last: the job restarted."""
    return progress < baseline.progress or (stored.progress is not None and progress < stored.progress)


def _run_start(seen: Snapshot, now_iso: str) -> ProgressMark:
    """Where a run seen for the first time began: upstream's start time at 0 % when it says one (so
    a job tracked mid-run gets an estimate at once), else here and now at the progress seen."""
    started, now = parse_timestamp(seen.started_at), parse_timestamp(now_iso)
    assert seen.progress is not None
    if started is not None and now is not None and started < now and seen.progress > 0:
        return ProgressMark(at=_iso(started), progress=0.0)
    return ProgressMark(at=now_iso, progress=seen.progress)
