"""The transition rules: what one poll result (or poll error) means for a stored job."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from jobwatch.domain.errors import PollErrorKind
from jobwatch.domain.model import Event, Health, JobSpec, NotifySettings, Phase, Snapshot, TrackedJob
from jobwatch.domain.transitions import Outcome, Policy, decide, decide_error

T0 = "2026-11-22T12:00:00.000Z"
NOW = "2026-11-22T12:00:30.000Z"
SPEC = JobSpec(source="weaviate-export", endpoint="https://w.example.com", job_id="exp-1", backend="s3")
POLICY = Policy(unreachable_after=3, lost_after=2, stall_after_s=600, max_duration_s=7200)


def job(
    snapshot: Snapshot | None,
    version: int = 3,
    *,
    health: Health | None = None,
    changed_at: str | None = T0,
    spec: JobSpec = SPEC,
) -> TrackedJob:
    return TrackedJob(
        spec=spec,
        snapshot=snapshot,
        version=version,
        created_at=T0,
        updated_at=T0,
        changed_at=changed_at,
        health=health or Health(observed_since=T0 if snapshot else None),
    )


def snap(phase: Phase, status: str = "X", progress: float | None = None, **kw: Any) -> Snapshot:
    return Snapshot(phase=phase, status=status, progress=progress, **kw)


def events(decision: Any) -> list[str]:
    return [t.event for t in decision.transitions]


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
    decision = decide(job(None, version=0, changed_at=None), snap(phase), NOW)
    assert decision.outcome is Outcome.WRITE
    assert decision.transition is not None
    assert decision.transition.event == event
    assert decision.transition.previous is None
    assert decision.transition.transition_id == f"{SPEC.key}#1"
    assert decision.health is not None and decision.health.observed_since == NOW


def test_phase_change_names_previous_and_current() -> None:
    before = snap(Phase.RUNNING, "TRANSFERRING", 40.0)
    after = snap(Phase.FAILED, "FAILED", 40.0, error="boom")
    decision = decide(job(before, version=7), after, NOW)
    t = decision.transition
    assert t is not None
    assert (t.previous, t.current, t.event, t.severity, t.note) == (before, after, "FAILED", "error", None)
    assert t.transition_id == f"{SPEC.key}#8"
    assert t.to_wire()["schema"] == "jobwatch.transition/v1"


def test_identical_snapshot_is_unchanged_and_writes_nothing() -> None:
    before = snap(Phase.RUNNING, "TRANSFERRING", 40.0, details={"objectsExported": 10})
    again = snap(Phase.RUNNING, "TRANSFERRING", 40.0, details={"objectsExported": 10})
    assert decide(job(before), again, NOW, POLICY).outcome is Outcome.UNCHANGED


def test_progress_within_a_phase_is_stored_but_not_notified() -> None:
    every_change = dataclasses.replace(POLICY, progress_write_interval_s=0)
    decision = decide(job(snap(Phase.RUNNING, "T", 40.0)), snap(Phase.RUNNING, "T", 60.0), NOW, every_change)
    assert (decision.outcome, decision.transitions, decision.snapshot_changed) == (Outcome.WRITE, (), True)


LATER = "2026-11-22T12:03:00.000Z"
"""Three minutes after the stored change: past the write interval (stall 600 s / 4 = 150 s)."""


def test_moved_counters_are_written_at_most_once_per_interval() -> None:
    stored = job(snap(Phase.RUNNING, "T", 40.0, details={"rows": 4}))
    moved = snap(Phase.RUNNING, "T", 60.0, details={"rows": 6})
    assert decide(stored, moved, NOW, POLICY).outcome is Outcome.UNCHANGED  # 30 s after the last write
    later = decide(stored, moved, LATER, POLICY)
    assert (later.outcome, later.snapshot_changed, later.transitions) == (Outcome.WRITE, True, ())


@pytest.mark.parametrize(
    "news",
    [
        snap(Phase.RUNNING, "FINALIZING", 60.0),  # another upstream status word
        snap(Phase.RUNNING, "T", 60.0, error="shard 3 retrying"),  # an error appeared
        snap(Phase.SUCCEEDED, "T", 100.0),  # a transition
    ],
)
def test_anything_but_counters_is_written_at_once(news: Snapshot) -> None:
    decision = decide(job(snap(Phase.RUNNING, "T", 40.0)), news, NOW, POLICY)
    assert (decision.outcome, decision.snapshot_changed) == (Outcome.WRITE, True)


def test_a_job_that_keeps_moving_never_stalls_while_writes_are_bounded() -> None:
    """The stored change is at most one interval old, far below the stall threshold."""
    stored = job(snap(Phase.RUNNING, "T", 40.0), changed_at=T0)
    writes = 0
    for minute in range(1, 61):  # polled every minute for an hour, progress moving each time
        now = f"2026-11-22T{12 + minute // 60:02d}:{minute % 60:02d}:00.000Z"
        decision = decide(stored, snap(Phase.RUNNING, "T", 40.0 + minute / 2), now, POLICY)
        assert all(t.event is not Event.STALLED for t in decision.transitions)
        if decision.outcome is Outcome.WRITE:
            assert decision.snapshot is not None
            writes += 1
            stored = stored.model_copy(update={"snapshot": decision.snapshot, "changed_at": now})
    assert writes == 20  # 150 s interval: every third minute instead of 60 writes
    assert stored.changed_at == "2026-11-22T13:00:00.000Z"


def test_unknown_status_never_alerts_even_on_first_observation() -> None:
    odd = snap(Phase.RUNNING, "REPLICATING", status_known=False)
    assert decide(job(None, 0), odd, NOW).outcome is Outcome.IGNORED
    assert decide(job(snap(Phase.PENDING)), odd, NOW).outcome is Outcome.IGNORED


def test_terminal_phase_is_final() -> None:
    done = snap(Phase.SUCCEEDED, "SUCCESS", 100.0)
    decision = decide(job(done), snap(Phase.RUNNING, "TRANSFERRING"), NOW)
    assert decision.outcome is Outcome.IGNORED
    assert "terminal" in decision.reason
    assert decide_error(job(done), PollErrorKind.HTTP_STATUS, "500", NOW).outcome is Outcome.IGNORED


def test_notify_events_filter_drops_unwanted_events_but_keeps_state() -> None:
    quiet_spec = SPEC.model_copy(update={"notify": NotifySettings(events=["FAILED"])})
    decision = decide(job(None, 0, spec=quiet_spec), snap(Phase.RUNNING), NOW)
    assert (decision.outcome, decision.transitions) == (Outcome.WRITE, ())


# -- poll errors: UNREACHABLE / AUTH_FAILED / RECOVERED / LOST ---------------------------------------


def run_errors(start: TrackedJob, kinds: list[PollErrorKind]) -> tuple[TrackedJob, list[str], int]:
    """Apply a run of poll errors the way the poller does; returns the job, events, and writes."""
    current, seen, writes = start, [], 0
    for kind in kinds:
        decision = decide_error(current, kind, f"{kind.value}: boom", NOW, POLICY)
        if decision.outcome is Outcome.WRITE:
            writes += 1
            assert decision.health is not None
            current = current.model_copy(
                update={
                    "health": decision.health,
                    "snapshot": decision.snapshot,
                    "version": current.version + 1,
                }
            )
        seen += events(decision)
    return current, seen, writes


def test_unreachable_after_threshold_once_then_bounded_writes() -> None:
    running = job(snap(Phase.RUNNING, "T", 10.0))
    after, seen, writes = run_errors(running, [PollErrorKind.HTTP_STATUS] * 10)
    assert seen == ["UNREACHABLE"]
    assert after.health.alert == "UNREACHABLE"
    assert after.snapshot == running.snapshot  # the phase never moves on errors
    assert writes == 3  # counting up to the threshold; nothing more while the alert is open


def test_auth_failure_names_the_secret() -> None:
    spec = SPEC.model_copy(update={"secret_name": "jobwatch/weaviate-prod"})
    start = job(snap(Phase.RUNNING), spec=spec)
    _, _, _ = run_errors(start, [PollErrorKind.AUTH] * 2)
    decision = decide_error(
        start.model_copy(update={"health": Health(consecutive_errors=2)}),
        PollErrorKind.AUTH,
        "AUTH HTTP 401",
        NOW,
        POLICY,
    )
    assert events(decision) == ["AUTH_FAILED"]
    note = decision.transitions[0].note or ""
    assert "jobwatch/weaviate-prod" in note and "HTTP 401" in note


def test_recovered_once_when_polls_succeed_again() -> None:
    running = snap(Phase.RUNNING, "T", 10.0)
    broken, seen, _ = run_errors(job(running), [PollErrorKind.TIMEOUT] * 3)
    assert seen == ["UNREACHABLE"]
    decision = decide(broken, running, NOW, POLICY)
    assert events(decision) == ["RECOVERED"]
    assert decision.health is not None and decision.health.alert is None
    assert decision.health.consecutive_errors == 0


def test_errors_below_threshold_reset_silently() -> None:
    running = snap(Phase.RUNNING, "T", 10.0)
    flaky, seen, _ = run_errors(job(running), [PollErrorKind.HTTP_STATUS] * 2)
    decision = decide(flaky, running, NOW, POLICY)
    assert seen == [] and events(decision) == []
    assert decision.outcome is Outcome.WRITE  # the counter reset is stored


def test_recovery_and_phase_change_in_one_poll_are_both_sent_in_order() -> None:
    broken, _, _ = run_errors(job(snap(Phase.RUNNING)), [PollErrorKind.CONNECTION] * 3)
    decision = decide(broken, snap(Phase.SUCCEEDED, "SUCCESS", 100.0), NOW, POLICY)
    assert events(decision) == ["RECOVERED", "SUCCEEDED"]
    ids = [t.transition_id for t in decision.transitions]
    assert ids == [f"{SPEC.key}#{broken.version + 1}", f"{SPEC.key}#{broken.version + 1}.2"]


def test_lost_closes_an_open_alert() -> None:
    unreachable = Health(consecutive_errors=3, not_found_streak=1, alert="UNREACHABLE")
    decision = decide_error(
        job(snap(Phase.RUNNING), health=unreachable), PollErrorKind.NOT_FOUND, "404", NOW, POLICY
    )
    assert events(decision) == ["LOST"]
    assert decision.health is not None and decision.health.alert is None


def test_a_config_error_alerts_as_auth_failed_and_says_how_to_fix_it() -> None:
    start = job(snap(Phase.RUNNING), health=Health(consecutive_errors=2))
    decision = decide_error(start, PollErrorKind.CONFIG, "no API key", NOW, POLICY)
    assert events(decision) == ["AUTH_FAILED"]
    assert "register the job with --secret" in (decision.transitions[0].note or "")


def test_a_job_never_observed_alerts_with_a_placeholder_snapshot() -> None:
    after, seen, _ = run_errors(job(None, 0, changed_at=None), [PollErrorKind.TIMEOUT] * 3)
    assert seen == ["UNREACHABLE"]
    assert after.snapshot is None  # nothing observed is stored
    unseen = decide_error(
        job(None, 0, health=Health(consecutive_errors=2)), PollErrorKind.TIMEOUT, "t", NOW, POLICY
    )
    transition = unseen.transitions[0]
    assert transition.previous is None and not transition.current.status_known


def test_lost_after_repeated_not_found_is_terminal() -> None:
    after, seen, _ = run_errors(job(snap(Phase.RUNNING, "Importing", 80.0)), [PollErrorKind.NOT_FOUND] * 2)
    assert seen == ["LOST"]
    assert after.snapshot is not None and after.snapshot.phase is Phase.LOST and after.terminal


def test_not_found_streak_resets_on_other_errors() -> None:
    kinds = [PollErrorKind.NOT_FOUND, PollErrorKind.TIMEOUT, PollErrorKind.NOT_FOUND]
    _, seen, _ = run_errors(job(snap(Phase.RUNNING)), kinds)
    assert "LOST" not in seen


# -- STALLED / RESUMED / OVERDUE -----------------------------------------------------------------------


def test_stalled_once_after_no_progress_then_resumed() -> None:
    still = snap(Phase.RUNNING, "Importing", 80.0, details={"allFilesCompleted": True})
    stuck = job(still, changed_at="2026-11-22T11:45:00.000Z")
    decision = decide(stuck, still, NOW, POLICY)
    assert events(decision) == ["STALLED"]
    assert "every file says Completed" in (decision.transitions[0].note or "")
    assert decision.health is not None and decision.health.stalled
    stalled = stuck.model_copy(update={"health": decision.health})
    assert decide(stalled, still, NOW, POLICY).outcome is Outcome.UNCHANGED  # no repeat
    moved = decide(
        stalled, snap(Phase.RUNNING, "Importing", 90.0, details={"allFilesCompleted": True}), NOW, POLICY
    )
    assert events(moved) == ["RESUMED"]


def test_not_stalled_before_the_threshold_or_when_pending() -> None:
    still = snap(Phase.RUNNING, "T", 5.0)
    assert (
        decide(job(still, changed_at="2026-11-22T11:55:00.000Z"), still, NOW, POLICY).outcome
        is Outcome.UNCHANGED
    )
    queued = snap(Phase.PENDING, "Pending", 0.0)
    assert decide(job(queued, changed_at="2026-11-22T10:00:00.000Z"), queued, NOW, POLICY).transitions == ()


def test_per_job_stall_threshold_overrides_the_default() -> None:
    spec = SPEC.model_copy(update={"notify": NotifySettings(stall_after_s=3600)})
    still = snap(Phase.RUNNING, "T", 5.0)
    decision = decide(job(still, changed_at="2026-11-22T11:45:00.000Z", spec=spec), still, NOW, POLICY)
    assert decision.outcome is Outcome.UNCHANGED


def test_overdue_once_past_max_duration() -> None:
    running = snap(Phase.RUNNING, "T", 50.0, started_at="2026-11-22T09:00:00Z")
    decision = decide(job(running, changed_at=NOW), running, NOW, POLICY)
    assert events(decision) == ["OVERDUE"]
    overdue = job(running, changed_at=NOW, health=decision.health)
    assert decide(overdue, running, NOW, POLICY).outcome is Outcome.UNCHANGED


def test_overdue_uses_observed_start_when_upstream_gives_none() -> None:
    running = snap(Phase.RUNNING, "T", 50.0)
    health = Health(observed_since="2026-11-22T08:00:00.000Z")
    assert events(decide(job(running, changed_at=NOW, health=health), running, NOW, POLICY)) == ["OVERDUE"]


def test_a_phase_change_of_a_stalled_job_is_not_also_resumed() -> None:
    still = snap(Phase.RUNNING, "Importing", 80.0)
    stalled = job(still, health=Health(observed_since=T0, stalled=True))
    assert events(decide(stalled, snap(Phase.PENDING, "Queued", 80.0), NOW, POLICY)) == ["QUEUED"]


def test_a_finished_job_is_no_longer_stalled() -> None:
    stalled = job(snap(Phase.RUNNING, "Importing", 80.0), health=Health(observed_since=T0, stalled=True))
    decision = decide(stalled, snap(Phase.SUCCEEDED, "Completed", 100.0), NOW, POLICY)
    assert events(decision) == ["SUCCEEDED"]
    assert decision.health is not None and not decision.health.stalled


def test_the_events_of_one_poll_are_published_in_rule_order_and_chained() -> None:
    broken = job(
        snap(Phase.PENDING, "Queued"),
        health=Health(observed_since=T0, consecutive_errors=3, alert="UNREACHABLE"),
    ).model_copy(update={"last_transition_id": "earlier"})
    running = snap(Phase.RUNNING, "Importing", 10.0, started_at="2026-11-22T09:00:00Z")
    decision = decide(broken, running, NOW, POLICY)
    assert events(decision) == ["RECOVERED", "STARTED", "OVERDUE"]
    chain = [t.previous_transition_id for t in decision.transitions]
    assert chain == ["earlier", *(t.transition_id for t in decision.transitions[:-1])]


# -- 429 Retry-After: the next poll waits for the time upstream asked for -----------------------------

RATE_POLICY = Policy(unreachable_after=3, lost_after=2, poll_period_s=60, retry_after_max_s=3600)


def test_retry_after_beyond_the_next_scheduled_poll_is_stored_as_a_hold() -> None:
    decision = decide_error(
        job(snap(Phase.RUNNING)), PollErrorKind.RATE_LIMITED, "429", NOW, RATE_POLICY, retry_after_s=300
    )
    assert (decision.outcome, decision.transitions) == (Outcome.WRITE, ())
    assert decision.health is not None
    assert decision.health.retry_not_before == "2026-11-22T12:05:30.000Z"  # NOW + 300 s
    assert decision.snapshot == snap(Phase.RUNNING)  # the phase never moves on a 429


@pytest.mark.parametrize("retry_after", [None, 0.0, 30.0, 60.0])
def test_retry_after_within_the_schedule_period_stores_nothing_extra(retry_after: float | None) -> None:
    decision = decide_error(
        job(snap(Phase.RUNNING)), PollErrorKind.RATE_LIMITED, "429", NOW, RATE_POLICY, retry_after
    )
    assert decision.health is not None
    assert decision.health.retry_not_before is None
    assert decision.health.consecutive_errors == 1  # still an error of the streak


def test_retry_after_is_capped_so_a_server_cannot_silence_a_job_for_days() -> None:
    decision = decide_error(
        job(snap(Phase.RUNNING)), PollErrorKind.RATE_LIMITED, "429", NOW, RATE_POLICY, 10 * 86400
    )
    assert decision.health is not None
    assert decision.health.retry_not_before == "2026-11-22T13:00:30.000Z"  # NOW + 3600 s


def test_retry_after_is_stored_even_when_the_alert_is_open_and_counters_are_capped() -> None:
    capped = Health(consecutive_errors=3, alert="UNREACHABLE", last_error_kind="RATE_LIMITED")
    start = job(snap(Phase.RUNNING), health=capped)
    quiet = decide_error(start, PollErrorKind.RATE_LIMITED, "429", NOW, RATE_POLICY, retry_after_s=5)
    assert quiet.outcome is Outcome.UNCHANGED  # bounded writes stay bounded
    held = decide_error(start, PollErrorKind.RATE_LIMITED, "429", NOW, RATE_POLICY, retry_after_s=600)
    assert (held.outcome, held.transitions) == (Outcome.WRITE, ())
    assert held.health is not None and held.health.retry_not_before == "2026-11-22T12:10:30.000Z"
    assert held.health.alert == "UNREACHABLE"


def test_a_successful_poll_clears_the_hold() -> None:
    running = snap(Phase.RUNNING, "T", 10.0)
    held = job(running, health=Health(consecutive_errors=1, retry_not_before="2026-11-22T12:00:10.000Z"))
    decision = decide(held, running, NOW, RATE_POLICY)
    assert (decision.outcome, decision.transitions) == (Outcome.WRITE, ())
    assert decision.health is not None
    assert (decision.health.retry_not_before, decision.health.consecutive_errors) == (None, 0)
