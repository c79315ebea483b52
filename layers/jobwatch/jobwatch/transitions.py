"""Transition detection: the pure decision of what one poll result means for a tracked job.

The poller asks `decide()` and then performs exactly the writes and publishes the decision names;
keeping the rule here makes "no false alert" a property of one small, fully tested function.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from jobwatch.messages import severity_for
from jobwatch.model import EVENT_FOR_PHASE, Snapshot, TrackedJob, Transition


class Outcome(StrEnum):
    UNCHANGED = "UNCHANGED"
    """Same snapshot as stored: write nothing, send nothing."""
    UPDATED = "UPDATED"
    """Progress or details moved within the same phase: store it, send nothing."""
    TRANSITION = "TRANSITION"
    """A new phase (or the first observation): store it and publish one transition."""
    IGNORED = "IGNORED"
    """Not trustworthy enough to act on (unknown status, a terminal job seen running again)."""


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    transition: Transition | None = None
    reason: str = ""


def transition_id(job_key: str, version: int) -> str:
    """Deterministic per (job, stored version): overlapping runs computing the same change agree on it."""
    return f"{job_key}#{version}"


def decide(job: TrackedJob, seen: Snapshot, now_iso: str) -> Decision:
    previous = job.snapshot
    if not seen.status_known:
        return Decision(Outcome.IGNORED, reason=f"unknown upstream status {seen.status!r}")
    if previous is not None and previous.phase.terminal:
        return Decision(Outcome.IGNORED, reason=f"job already {previous.phase.value}; terminal is final")
    if previous is None or previous.phase != seen.phase:
        event = EVENT_FOR_PHASE[seen.phase]
        transition = Transition(
            transition_id=transition_id(job.key, job.version + 1),
            job_key=job.key,
            source=job.spec.source,
            job_id=job.spec.job_id,
            event=event,
            severity=severity_for(event),
            occurred_at=now_iso,
            job=job.spec,
            previous=previous,
            current=seen,
        )
        return Decision(Outcome.TRANSITION, transition)
    if previous == seen:
        return Decision(Outcome.UNCHANGED)
    return Decision(Outcome.UPDATED)
