"""The transition rule: what one poll result means for a stored job."""

from __future__ import annotations

import pytest

from jobwatch.model import Event, JobSpec, Phase, Snapshot, TrackedJob
from jobwatch.transitions import Outcome, decide

NOW = "2026-11-22T12:00:00.000Z"
SPEC = JobSpec(source="weaviate-export", endpoint="https://w.example.com", job_id="exp-1", backend="s3")


def job(snapshot: Snapshot | None, version: int = 3) -> TrackedJob:
    return TrackedJob(spec=SPEC, snapshot=snapshot, version=version, created_at=NOW, updated_at=NOW)


def snap(phase: Phase, status: str = "X", progress: float | None = None, **kw: object) -> Snapshot:
    return Snapshot(phase=phase, status=status, progress=progress, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("phase", "event"),
    [
        (Phase.PENDING, Event.QUEUED),
        (Phase.RUNNING, Event.STARTED),
        (Phase.SUCCEEDED, Event.SUCCEEDED),
        (Phase.FAILED, Event.FAILED),
        (Phase.CANCELED, Event.CANCELED),
    ],
)
def test_first_observation_is_a_transition_from_nothing(phase: Phase, event: Event) -> None:
    decision = decide(job(None, version=0), snap(phase), NOW)
    assert decision.outcome is Outcome.TRANSITION
    assert decision.transition is not None
    assert decision.transition.event == event
    assert decision.transition.previous is None
    assert decision.transition.transition_id == f"{SPEC.key}#1"


def test_phase_change_names_previous_and_current() -> None:
    before = snap(Phase.RUNNING, "TRANSFERRING", 40.0)
    after = snap(Phase.FAILED, "FAILED", 40.0, error="boom")
    decision = decide(job(before, version=7), after, NOW)
    assert decision.outcome is Outcome.TRANSITION
    t = decision.transition
    assert t is not None
    assert (t.previous, t.current, t.event, t.severity) == (before, after, "FAILED", "error")
    assert t.transition_id == f"{SPEC.key}#8"
    assert t.to_wire()["schema"] == "jobwatch.transition/v1"


def test_identical_snapshot_is_unchanged() -> None:
    before = snap(Phase.RUNNING, "TRANSFERRING", 40.0, details={"objectsExported": 10})
    again = snap(Phase.RUNNING, "TRANSFERRING", 40.0, details={"objectsExported": 10})
    assert decide(job(before), again, NOW).outcome is Outcome.UNCHANGED


def test_progress_within_a_phase_is_stored_but_not_notified() -> None:
    decision = decide(
        job(snap(Phase.RUNNING, "TRANSFERRING", 40.0)), snap(Phase.RUNNING, "TRANSFERRING", 60.0), NOW
    )
    assert decision.outcome is Outcome.UPDATED
    assert decision.transition is None


def test_unknown_status_never_alerts_even_on_first_observation() -> None:
    odd = snap(Phase.RUNNING, "REPLICATING", status_known=False)
    assert decide(job(None, 0), odd, NOW).outcome is Outcome.IGNORED
    assert decide(job(snap(Phase.PENDING)), odd, NOW).outcome is Outcome.IGNORED


def test_terminal_phase_is_final() -> None:
    done = snap(Phase.SUCCEEDED, "SUCCESS", 100.0)
    decision = decide(job(done), snap(Phase.RUNNING, "TRANSFERRING"), NOW)
    assert decision.outcome is Outcome.IGNORED
    assert "terminal" in decision.reason


def test_pending_to_running_is_started() -> None:
    decision = decide(job(snap(Phase.PENDING, "Pending", 0.0)), snap(Phase.RUNNING, "Importing", 10.0), NOW)
    assert decision.transition is not None
    assert decision.transition.event == Event.STARTED
