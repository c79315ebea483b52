"""Transition detection: the pure decision of what one poll result means for a tracked job.

Two inputs are possible — a snapshot, or a poll error — and `decide()` / `decide_error()` return
what to write and which notifications are owed. The poller performs exactly that, so "no false
alert" and "nothing missed" are properties of these small, fully tested functions.

Events: phase changes (QUEUED, STARTED, SUCCEEDED, FAILED, CANCELED), and health events that leave
the phase alone: UNREACHABLE / AUTH_FAILED after N consecutive poll errors, RECOVERED when polls
succeed again, STALLED when a running job's snapshot has not moved for a while, RESUMED when it
moves again, OVERDUE past the maximum duration, LOST (a terminal phase) after N "no such job".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from jobwatch.domain.errors import PollErrorKind
from jobwatch.domain.humanize import format_duration, format_progress
from jobwatch.domain.model import EVENT_FOR_PHASE, Event, Health, Phase, Snapshot, TrackedJob, Transition
from jobwatch.domain.severity import severity_for

MAX_NOTE_CHARS = 1000
"""Notes quote upstream errors; stored and published, so they are capped like snapshot text."""


class Outcome(StrEnum):
    UNCHANGED = "UNCHANGED"
    """Nothing to record: write nothing, send nothing."""
    WRITE = "WRITE"
    """Store the new state (snapshot and/or health); `transitions` lists what to publish."""
    IGNORED = "IGNORED"
    """Not trustworthy enough to act on (unknown status, a terminal job seen running again)."""


@dataclass(frozen=True, slots=True)
class Policy:
    """Thresholds, from settings and the job's own notify settings."""

    unreachable_after: int = 3
    lost_after: int = 3
    stall_after_s: float = 1800.0
    max_duration_s: float = 86400.0
    poll_period_s: float = 60.0
    """The schedule's period: a `Retry-After` shorter than this is honoured by the schedule itself."""
    retry_after_max_s: float = 3600.0


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    snapshot: Snapshot | None = None
    """The snapshot to store (the stored one when only health changes)."""
    health: Health | None = None
    snapshot_changed: bool = False
    """True when the snapshot itself moved (resets the stall clock)."""
    transitions: tuple[Transition, ...] = ()
    reason: str = ""

    @property
    def transition(self) -> Transition | None:
        return self.transitions[0] if self.transitions else None


def transition_id(job_key: str, version: int, index: int = 0) -> str:
    """Deterministic per (job, stored version, position): overlapping runs agree on it."""
    return f"{job_key}#{version}" if index == 0 else f"{job_key}#{version}.{index + 1}"


def _seconds_between(start_iso: str | None, end_iso: str) -> float | None:
    if not start_iso:
        return None
    try:
        start = datetime.fromisoformat(start_iso.replace("Z", "+00:00"))
        end = datetime.fromisoformat(end_iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (end - start).total_seconds()


class _Builder:
    """Collects the transitions of one decision, numbering them in order."""

    def __init__(self, job: TrackedJob, now_iso: str) -> None:
        self.job = job
        self.now_iso = now_iso
        self.items: list[Transition] = []

    def add(
        self, event: Event, previous: Snapshot | None, current: Snapshot, note: str | None = None
    ) -> None:
        allowed = self.job.spec.notify.events if self.job.spec.notify else None
        if allowed is not None and event.value not in allowed:
            return
        self.items.append(
            Transition(
                transition_id=transition_id(self.job.key, self.job.version + 1, len(self.items)),
                job_key=self.job.key,
                source=self.job.spec.source,
                job_id=self.job.spec.job_id,
                event=event,
                severity=severity_for(event),
                occurred_at=self.now_iso,
                job=self.job.spec,
                previous=previous,
                current=current,
                note=None if note is None else note[:MAX_NOTE_CHARS],
                previous_transition_id=self.items[-1].transition_id
                if self.items
                else self.job.last_transition_id,
            )
        )


def decide(job: TrackedJob, seen: Snapshot, now_iso: str, policy: Policy | None = None) -> Decision:
    """A successful poll."""
    policy = policy or Policy()
    previous = job.snapshot
    if not seen.status_known:
        return Decision(Outcome.IGNORED, reason=f"unknown upstream status {seen.status!r}")
    if previous is not None and previous.phase.terminal:
        return Decision(Outcome.IGNORED, reason=f"job already {previous.phase.value}; terminal is final")
    out = _Builder(job, now_iso)
    old = job.health
    health = Health(observed_since=old.observed_since or now_iso, stalled=old.stalled, overdue=old.overdue)
    if old.alert is not None:
        note = f"polls succeed again after {old.consecutive_errors}+ failures (last: {old.last_error})"
        out.add(Event.RECOVERED, previous, seen, note)
    phase_changed = previous is None or previous.phase != seen.phase
    snapshot_changed = previous != seen
    if phase_changed:
        out.add(EVENT_FOR_PHASE[seen.phase], previous, seen)
        if seen.phase.terminal:
            health = health.model_copy(update={"stalled": False})
    elif snapshot_changed and health.stalled:
        health = health.model_copy(update={"stalled": False})
        out.add(Event.RESUMED, previous, seen, f"progress moved again ({format_progress(seen.progress)})")
    elif not snapshot_changed and seen.phase is Phase.RUNNING and not health.stalled:
        still_for = _seconds_between(job.changed_at, now_iso)
        stall_after = _stall_after(job, policy)
        if still_for is not None and still_for >= stall_after:
            health = health.model_copy(update={"stalled": True})
            out.add(Event.STALLED, previous, seen, _stall_note(seen, still_for))
    if not seen.phase.terminal and not health.overdue:
        started = seen.started_at or health.observed_since
        running_for = _seconds_between(started, now_iso)
        max_duration = _max_duration(job, policy)
        if running_for is not None and running_for >= max_duration:
            health = health.model_copy(update={"overdue": True})
            note = (
                f"running for {format_duration(running_for)}, over the {format_duration(max_duration)} limit"
            )
            out.add(Event.OVERDUE, previous, seen, note)
    if not out.items and not snapshot_changed and health == old:
        return Decision(Outcome.UNCHANGED)
    return Decision(Outcome.WRITE, seen, health, snapshot_changed, tuple(out.items))


def _stall_after(job: TrackedJob, policy: Policy) -> float:
    own = job.spec.notify.stall_after_s if job.spec.notify else None
    return float(own) if own is not None else policy.stall_after_s


def _max_duration(job: TrackedJob, policy: Policy) -> float:
    own = job.spec.notify.max_duration_s if job.spec.notify else None
    return float(own) if own is not None else policy.max_duration_s


def _stall_note(seen: Snapshot, still_for: float) -> str:
    at = f"at {format_progress(seen.progress)}, status {seen.status}"
    note = f"no progress for {format_duration(still_for)} ({at})"
    if seen.details.get("allFilesCompleted"):
        note += "; every file says Completed while the job is still importing (sorting or index building)"
    return note


def _retry_hold(now_iso: str, retry_after_s: float | None, policy: Policy) -> str | None:
    """When upstream may be asked again, if that is later than the schedule would ask anyway."""
    if retry_after_s is None:
        return None
    wait = min(retry_after_s, policy.retry_after_max_s)
    if wait <= policy.poll_period_s:
        return None
    try:
        now = datetime.fromisoformat(now_iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    until = now + timedelta(seconds=wait)
    return until.isoformat(timespec="milliseconds").replace("+00:00", "Z")


_PLACEHOLDER = Snapshot(phase=Phase.PENDING, status="(not observed yet)", status_known=False)


def decide_error(
    job: TrackedJob,
    kind: PollErrorKind,
    error: str,
    now_iso: str,
    policy: Policy | None = None,
    retry_after_s: float | None = None,
) -> Decision:
    """A failed poll: the phase never moves, except to LOST after repeated "no such job".

    `retry_after_s` is upstream's `Retry-After`; when it reaches past the next scheduled poll, the
    time is stored so that no poll is sent before it (the schedule alone would ask too early).
    """
    policy = policy or Policy()
    previous = job.snapshot
    if previous is not None and previous.phase.terminal:
        return Decision(Outcome.IGNORED, reason=f"job already {previous.phase.value}")
    old = job.health
    hold = _retry_hold(now_iso, retry_after_s, policy)
    cap = max(policy.unreachable_after, policy.lost_after)
    errors = min(old.consecutive_errors + 1, cap)
    not_found = min(old.not_found_streak + 1, policy.lost_after) if kind is PollErrorKind.NOT_FOUND else 0
    health = old.model_copy(
        update={
            "consecutive_errors": errors,
            "not_found_streak": not_found,
            "last_error": error[:500],
            "last_error_kind": kind.value,
            "retry_not_before": hold,
        }
    )
    at_cap = old.consecutive_errors >= cap and old.alert is not None
    if at_cap and kind is not PollErrorKind.NOT_FOUND and hold is None:
        return Decision(Outcome.UNCHANGED, reason="alert already open; counters at their cap")
    out = _Builder(job, now_iso)
    current = previous or _PLACEHOLDER
    if kind is PollErrorKind.NOT_FOUND and not_found >= policy.lost_after:
        lost = current.model_copy(
            update={"phase": Phase.LOST, "status": "NOT_FOUND", "error": error, "status_known": True}
        )
        out.add(
            Event.LOST, previous, lost, f"upstream said the job does not exist {not_found} polls in a row"
        )
        return Decision(
            Outcome.WRITE, lost, health.model_copy(update={"alert": None}), True, tuple(out.items)
        )
    if errors >= policy.unreachable_after and old.alert is None:
        if kind in (PollErrorKind.AUTH, PollErrorKind.CONFIG):
            secret = job.spec.secret_name
            fix = f"fix the API key in secret {secret!r}" if secret else "register the job with --secret"
            health = health.model_copy(update={"alert": Event.AUTH_FAILED.value})
            out.add(Event.AUTH_FAILED, previous, current, f"{errors} polls rejected: {error}; {fix}")
        else:
            health = health.model_copy(update={"alert": Event.UNREACHABLE.value})
            out.add(Event.UNREACHABLE, previous, current, f"{errors} polls failed in a row; last: {error}")
    if health == old and not out.items:
        return Decision(Outcome.UNCHANGED)
    return Decision(Outcome.WRITE, previous, health, False, tuple(out.items))
