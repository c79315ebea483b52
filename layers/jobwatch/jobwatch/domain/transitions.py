"""Transition detection: the pure decision of what one poll result means for a tracked job.

Two inputs are possible — a snapshot, or a poll error — and `decide()` / `decide_error()` return
what to write and which notifications are owed. The poller performs exactly that, so "no false
alert" and "nothing missed" are properties of these small, fully tested functions.

Events: phase changes (QUEUED, STARTED, SUCCEEDED, FAILED, CANCELED), and health events that leave
the phase alone: UNREACHABLE / AUTH_FAILED after N consecutive poll errors, RECOVERED when polls
succeed again, STALLED when a running job's snapshot has not moved for a while, RESUMED when it
moves again, OVERDUE past the maximum duration, LOST (a terminal phase) after N "no such job".
Each event has one small rule function (`_recovered`, `_phase_changed`, `_resumed`, `_stalled`,
`_overdue`; `_lost`, `_alert_opened`), applied in a fixed order, which is the order of publication.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from jobwatch.domain.errors import PollErrorKind
from jobwatch.domain.eta import Eta, estimate, job_eta, next_baseline
from jobwatch.domain.humanize import format_duration, format_progress
from jobwatch.domain.model import (
    EVENT_FOR_PHASE,
    Event,
    Health,
    Phase,
    ProgressMark,
    Snapshot,
    TrackedJob,
    Transition,
)
from jobwatch.domain.quiet import count_held_back, held_back
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
    progress_write_interval_s: float = 300.0
    """A running job whose only news is moved counters (progress, rows, details) is written at most
    this often (bounded writes, D40); 0 writes every change."""


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


def transition_id(job_key: str, version: int, index: int = 0, life: str = "") -> str:
    """Deterministic per (job, life, stored version, position): overlapping runs agree on it.

    `<jobKey>#<life>-<version>`, `.2`, `.3` for further transitions of the same write. The life is
    fixed when the job is tracked (`new_life`), so a job untracked and tracked again never reuses an
    id, and channels that already delivered the first life's transitions deliver the new ones.
    Jobs tracked before lives existed have none: `<jobKey>#<version>`.
    """
    head = f"{job_key}#{life}-{version}" if life else f"{job_key}#{version}"
    return head if index == 0 else f"{head}.{index + 1}"


@dataclass(frozen=True, slots=True)
class TransitionRef:
    """What a numbered transition id says: whose, which life, which write, which position."""

    job_key: str
    life: str
    version: int
    position: int
    """1 for the first transition of a write, 2 for `.2`, ..."""

    @property
    def order(self) -> tuple[str, int, int]:
        """Sorts a job's transitions in the order they were recorded (older lives first)."""
        return self.life, self.version, self.position


def parse_transition_id(value: str) -> TransitionRef | None:
    """The parts of a numbered transition id; None for anything else (a TEST notification's id)."""
    job_key, hash_sign, suffix = value.rpartition("#")
    life, _, numbers = suffix.rpartition("-")
    version, _, position = numbers.partition(".")
    if not hash_sign or not version.isdigit() or not (position == "" or position.isdigit()):
        return None
    if life and not life.isalnum():
        return None
    return TransitionRef(job_key, life, int(version), int(position or 1))


def new_life(now_s: float) -> str:
    """A job life token: creation time in base-36 milliseconds, zero-padded so lives sort by time,
    plus three random characters so two lives of one job in the same millisecond still differ."""
    millis = int(now_s * 1000)
    digits = ""
    while millis:
        millis, rest = divmod(millis, 36)
        digits = _BASE36[rest] + digits
    return digits.rjust(9, "0") + "".join(secrets.choice(_BASE36) for _ in range(3))


_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


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
        self.held: list[str] = []
        """Events left unpublished because the job is snoozed or muted (`domain.quiet`)."""

    def add(
        self, event: Event, previous: Snapshot | None, current: Snapshot, note: str | None = None
    ) -> None:
        allowed = self.job.spec.notify.events if self.job.spec.notify else None
        if allowed is not None and event.value not in allowed:
            return
        if held_back(self.job.quiet, event.value, self.now_iso):
            self.held.append(event.value)
            return
        self.items.append(
            Transition(
                transition_id=transition_id(
                    self.job.key, self.job.version + 1, len(self.items), self.job.life
                ),
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


@dataclass(slots=True)
class _SuccessfulPoll:
    """One successful poll under decision: the stored job, what was seen, and the events owed so far."""

    job: TrackedJob
    seen: Snapshot
    policy: Policy
    out: _Builder
    phase_changed: bool = field(init=False)
    """Nothing was seen before, or the phase is another one: the phase's own event is owed."""
    snapshot_changed: bool = field(init=False)
    """Anything in the snapshot moved: it is stored, and a stalled job has resumed."""

    def __post_init__(self) -> None:
        previous = self.job.snapshot
        self.phase_changed = previous is None or previous.phase != self.seen.phase
        self.snapshot_changed = previous != self.seen

    @property
    def now_iso(self) -> str:
        return self.out.now_iso

    def add(self, event: Event, note: str | None = None) -> None:
        """Owe `event`, from the stored snapshot to the one just seen."""
        self.out.add(event, self.job.snapshot, self.seen, note)


def decide(job: TrackedJob, seen: Snapshot, now_iso: str, policy: Policy | None = None) -> Decision:
    """A successful poll."""
    reason = _ignored_because(job, seen)
    if reason is not None:
        return Decision(Outcome.IGNORED, reason=reason)
    poll = _SuccessfulPoll(job, seen, policy or Policy(), _Builder(job, now_iso))
    health = _health_after_success(job.health, now_iso)
    for rule in _SUCCESS_RULES:
        health = rule(poll, health)
    health = count_held_back(health, poll.out.held, now_iso)
    news = poll.out.items or health != job.health
    if not news and (not poll.snapshot_changed or _only_counters_moved_recently(poll)):
        return Decision(Outcome.UNCHANGED)
    health = health.model_copy(update={"progress_baseline": next_baseline(job, seen, now_iso)})
    transitions = _with_eta(poll.out.items, _eta_seen(seen, health, now_iso))
    return Decision(Outcome.WRITE, seen, health, poll.snapshot_changed, transitions)


def _eta_seen(seen: Snapshot, health: Health, now_iso: str) -> Eta:
    """The estimate as of this poll: from the baseline stored with this write to what was just seen.
    The baseline moves only here, in a write that happens anyway (D41): estimating writes nothing."""
    current = None if seen.progress is None else ProgressMark(at=now_iso, progress=seen.progress)
    return estimate(health.progress_baseline, current, phase=seen.phase, stalled=health.stalled)


def _with_eta(items: list[Transition], eta: Eta) -> tuple[Transition, ...]:
    """The transitions of one write, each carrying the job's estimated completion (None: no estimate)."""
    if eta.at is None:
        return tuple(items)
    return tuple(item.model_copy(update={"eta": eta.at}) for item in items)


def _only_counters_moved_recently(poll: _SuccessfulPoll) -> bool:
    """Counters moved (progress, rows, details) but nothing a person is told about, and the stored
    snapshot is younger than the write interval: the write waits (D40). The interval stays well under
    the stall threshold, so a job that keeps moving never looks stalled from what is stored."""
    stored = poll.job.snapshot
    if stored is None or poll.seen.phase is not Phase.RUNNING:
        return False
    same_words = (stored.phase, stored.status, stored.status_known, stored.error) == (
        poll.seen.phase,
        poll.seen.status,
        poll.seen.status_known,
        poll.seen.error,
    )
    interval = min(poll.policy.progress_write_interval_s, _stall_after(poll.job, poll.policy) / 4)
    age = _seconds_between(poll.job.changed_at, poll.now_iso)
    return same_words and age is not None and age < interval


def _ignored_because(job: TrackedJob, seen: Snapshot) -> str | None:
    """Why a poll is not acted on (D2): an unknown status could raise a false alert; terminal is final."""
    if not seen.status_known:
        return f"unknown upstream status {seen.status!r}"
    previous = job.snapshot
    if previous is not None and previous.phase.terminal:
        return f"job already {previous.phase.value}; terminal is final"
    return None


def _health_after_success(old: Health, now_iso: str) -> Health:
    """A poll that worked ends error streaks, open alerts and any hold; stall and overdue flags, the
    progress baseline and the count of held-back transitions stay."""
    return Health(
        observed_since=old.observed_since or now_iso,
        stalled=old.stalled,
        overdue=old.overdue,
        progress_baseline=old.progress_baseline,
        suppressed=old.suppressed,
        last_suppressed=old.last_suppressed,
    )


def _recovered(poll: _SuccessfulPoll, health: Health) -> Health:
    """RECOVERED when an UNREACHABLE or AUTH_FAILED alert was open (the new health has none)."""
    old = poll.job.health
    if old.alert is not None:
        poll.add(
            Event.RECOVERED,
            f"polls succeed again after {old.consecutive_errors}+ failures (last: {old.last_error})",
        )
    return health


def _phase_changed(poll: _SuccessfulPoll, health: Health) -> Health:
    """The new phase's own event (QUEUED ... CANCELED); a job that ended is no longer stalled."""
    if not poll.phase_changed:
        return health
    poll.add(EVENT_FOR_PHASE[poll.seen.phase])
    return health.model_copy(update={"stalled": False}) if poll.seen.phase.terminal else health


def _resumed(poll: _SuccessfulPoll, health: Health) -> Health:
    """RESUMED when a stalled job moves again within its phase (a phase change says enough)."""
    if poll.phase_changed or not poll.snapshot_changed or not health.stalled:
        return health
    poll.add(Event.RESUMED, f"progress moved again ({format_progress(poll.seen.progress)})")
    return health.model_copy(update={"stalled": False})


def _stalled(poll: _SuccessfulPoll, health: Health) -> Health:
    """STALLED, once, when a running job's snapshot has not moved for its stall threshold."""
    if poll.snapshot_changed or poll.seen.phase is not Phase.RUNNING or health.stalled:
        return health
    still_for = _seconds_between(poll.job.changed_at, poll.now_iso)
    if still_for is not None and still_for >= _stall_after(poll.job, poll.policy):
        poll.add(Event.STALLED, _stall_note(poll.seen, still_for))
        return health.model_copy(update={"stalled": True})
    return health


def _overdue(poll: _SuccessfulPoll, health: Health) -> Health:
    """OVERDUE, once, when an unfinished job has run past its maximum duration (from our first sight of
    it when upstream gives no start time)."""
    if poll.seen.phase.terminal or health.overdue:
        return health
    running_for = _seconds_between(poll.seen.started_at or health.observed_since, poll.now_iso)
    max_duration = _max_duration(poll.job, poll.policy)
    if running_for is not None and running_for >= max_duration:
        poll.add(
            Event.OVERDUE,
            f"running for {format_duration(running_for)}, over the {format_duration(max_duration)} limit",
        )
        return health.model_copy(update={"overdue": True})
    return health


_SUCCESS_RULES: tuple[Callable[[_SuccessfulPoll, Health], Health], ...] = (
    _recovered,
    _phase_changed,
    _resumed,
    _stalled,
    _overdue,
)
"""The rules of a successful poll, in the order their events are published. Each returns the health
it leaves; of phase change, resumed and stalled at most one applies (they test disjoint conditions)."""


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


@dataclass(frozen=True, slots=True)
class _FailedPoll:
    """One failed poll under decision: the stored job, what went wrong, and the events owed so far."""

    job: TrackedJob
    kind: PollErrorKind
    error: str
    policy: Policy
    out: _Builder

    @property
    def current(self) -> Snapshot:
        """What a health event shows as current: the stored snapshot, or a placeholder if none yet."""
        return self.job.snapshot or _PLACEHOLDER

    def add(self, event: Event, note: str) -> None:
        """Owe a health event: the phase stays, so previous and current are the stored snapshot."""
        self.out.add(event, self.job.snapshot, self.current, note)


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
    hold = _retry_hold(now_iso, retry_after_s, policy)
    if _nothing_left_to_count(job.health, kind, hold, policy):
        return Decision(Outcome.UNCHANGED, reason="alert already open; counters at their cap")
    poll = _FailedPoll(job, kind, error, policy, _Builder(job, now_iso))
    health = _count_error(poll, hold)
    lost = _lost(poll, health)
    if lost is not None:
        return lost
    health = count_held_back(_alert_opened(poll, health), poll.out.held, now_iso)
    if health == job.health and not poll.out.items:
        return Decision(Outcome.UNCHANGED)
    transitions = _with_eta(poll.out.items, job_eta(job, now_iso))
    return Decision(Outcome.WRITE, previous, health, False, transitions)


def _error_cap(policy: Policy) -> int:
    """Error streaks stop here: past every threshold, counting further would only cost writes (D13)."""
    return max(policy.unreachable_after, policy.lost_after)


def _nothing_left_to_count(old: Health, kind: PollErrorKind, hold: str | None, policy: Policy) -> bool:
    """The alert is open and the counters are capped, so this error writes nothing; except a "no such
    job", which may still count towards LOST, and a `Retry-After` hold, which must be stored."""
    at_cap = old.consecutive_errors >= _error_cap(policy) and old.alert is not None
    return at_cap and kind is not PollErrorKind.NOT_FOUND and hold is None


def _count_error(poll: _FailedPoll, hold: str | None) -> Health:
    """The health after one more failure: streaks grow up to their caps, the error and hold are kept."""
    old = poll.job.health
    errors = min(old.consecutive_errors + 1, _error_cap(poll.policy))
    not_found = (
        min(old.not_found_streak + 1, poll.policy.lost_after) if poll.kind is PollErrorKind.NOT_FOUND else 0
    )
    return old.model_copy(
        update={
            "consecutive_errors": errors,
            "not_found_streak": not_found,
            "last_error": poll.error[:500],
            "last_error_kind": poll.kind.value,
            "retry_not_before": hold,
        }
    )


def _lost(poll: _FailedPoll, health: Health) -> Decision | None:
    """LOST, a terminal phase jobwatch assigns itself, after `lost_after` "no such job" in a row."""
    streak = health.not_found_streak
    if poll.kind is PollErrorKind.NOT_FOUND and streak >= poll.policy.lost_after:
        lost = poll.current.model_copy(
            update={"phase": Phase.LOST, "status": "NOT_FOUND", "error": poll.error, "status_known": True}
        )
        note = f"upstream said the job does not exist {streak} polls in a row"
        poll.out.add(Event.LOST, poll.job.snapshot, lost, note)
        closed = health.model_copy(update={"alert": None, "progress_baseline": None})
        closed = count_held_back(closed, poll.out.held, poll.out.now_iso)
        return Decision(Outcome.WRITE, lost, closed, True, tuple(poll.out.items))
    return None


def _alert_opened(poll: _FailedPoll, health: Health) -> Health:
    """UNREACHABLE, or AUTH_FAILED for a refused key, once errors reach the threshold; once per outage."""
    if health.consecutive_errors < poll.policy.unreachable_after or poll.job.health.alert is not None:
        return health
    if poll.kind in (PollErrorKind.AUTH, PollErrorKind.CONFIG):
        return _auth_failed(poll, health)
    return _unreachable(poll, health)


def _auth_failed(poll: _FailedPoll, health: Health) -> Health:
    """AUTH_FAILED: upstream refuses the key (or there is none); the note says where to fix it."""
    secret = poll.job.spec.secret_name
    fix = f"fix the API key in secret {secret!r}" if secret else "register the job with --secret"
    poll.add(Event.AUTH_FAILED, f"{health.consecutive_errors} polls rejected: {poll.error}; {fix}")
    return health.model_copy(update={"alert": Event.AUTH_FAILED.value})


def _unreachable(poll: _FailedPoll, health: Health) -> Health:
    """UNREACHABLE: any other error, repeated up to the threshold."""
    poll.add(Event.UNREACHABLE, f"{health.consecutive_errors} polls failed in a row; last: {poll.error}")
    return health.model_copy(update={"alert": Event.UNREACHABLE.value})
