"""What `jobwatch follow` knows of each followed job, and the row every view shows of it (the
terminal's rich table and the plain lines both read rows from here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobwatch.domain.humanize import format_duration, format_progress, parse_timestamp
from jobwatch.domain.model import Phase, Snapshot
from jobwatch_tools.terminal import eta_text, relative_time, volume_text


@dataclass(frozen=True)
class Observation:
    """What one refresh saw of one job. `snapshot` None: not polled yet (or, with `error`, the poll
    failed and the last good snapshot is kept); `gone`: untracked while followed."""

    name: str
    snapshot: Snapshot | None = None
    error: str | None = None
    gone: bool = False
    changed_at: str | None = None
    """When the store last changed the job (state mode); None: the first time follow saw it."""


@dataclass
class Followed:
    """One followed job across refreshes: its latest snapshot and when it last changed."""

    name: str
    snapshot: Snapshot | None = None
    error: str | None = None
    gone: bool = False
    changed_at: datetime | None = None
    first_seen: datetime | None = None
    signature: tuple[Any, ...] | None = None

    def update(self, seen: Observation, now: datetime) -> bool:
        """Take a new observation; True when something the operator cares about changed."""
        self.snapshot = seen.snapshot or self.snapshot
        self.error, self.gone = seen.error, seen.gone
        self.first_seen = self.first_seen or now
        signature = self._signature()
        changed = signature != self.signature
        if self.signature is None:
            self.changed_at = parse_timestamp(seen.changed_at) or now
        elif changed:
            self.changed_at = now
        self.signature = signature
        return changed

    def _signature(self) -> tuple[Any, ...]:
        snap = self.snapshot
        if snap is None:
            return (None, self.error, self.gone)
        return (snap.phase, snap.status, snap.progress, volume_text(snap.details), self.error, self.gone)

    @property
    def terminal(self) -> bool:
        return self.gone or (self.snapshot is not None and self.snapshot.phase.terminal)

    @property
    def succeeded(self) -> bool:
        return not self.gone and self.snapshot is not None and self.snapshot.phase is Phase.SUCCEEDED

    def phase_text(self) -> str:
        if self.gone:
            return "UNTRACKED"
        return self.snapshot.phase.value if self.snapshot else "PENDING"

    def elapsed_s(self, now: datetime) -> float | None:
        """Since the upstream says it started (until it completed), else since follow first saw it."""
        snap = self.snapshot
        start = parse_timestamp(snap.started_at) if snap else None
        start = start or self.first_seen
        end = parse_timestamp(snap.completed_at) if snap and self.terminal else None
        if start is None:
            return None
        return max(0.0, ((end or now) - start).total_seconds())


@dataclass(frozen=True)
class Row:
    """One job as shown: every cell already text, the same for the live table and the plain line."""

    name: str
    phase: str
    progress: float | None
    percent: str
    volume: str
    elapsed: str
    last_change: str
    eta: str
    note: str


def row_of(job: Followed, now: datetime) -> Row:
    snap = job.snapshot
    progress = snap.progress if snap else None
    elapsed = job.elapsed_s(now)
    return Row(
        name=job.name,
        phase=job.phase_text(),
        progress=progress,
        percent=format_progress(progress) if snap else "",
        volume=(volume_text(snap.details) if snap else None) or "",
        elapsed=format_duration(elapsed) if elapsed is not None else "",
        last_change=relative_time(job.changed_at.isoformat() if job.changed_at else None, now),
        eta="done" if job.terminal else eta_text(progress, elapsed),
        note=_note(job),
    )


def _note(job: Followed) -> str:
    if job.gone:
        return "untracked while followed"
    if job.error:
        return f"poll failed: {job.error}"
    if job.snapshot is not None and job.snapshot.error:
        return f"error: {job.snapshot.error}"
    return ""


def outcome_text(jobs: Sequence[Followed], timed_out: bool) -> str:
    """`finished: 2 SUCCEEDED, 1 FAILED` (or `timed out: ...` with what was still running)."""
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.phase_text()] = counts.get(job.phase_text(), 0) + 1
    summary = ", ".join(f"{n} {phase}" for phase, n in sorted(counts.items()))
    return f"{'timed out' if timed_out else 'finished'}: {summary}"
