"""Snooze and mute (`domain.quiet`): which transitions are held back, and how they are counted."""

from __future__ import annotations

import pytest

from jobwatch.domain.errors import PollErrorKind
from jobwatch.domain.model import Health, JobSpec, Phase, Quiet, Snapshot, TrackedJob
from jobwatch.domain.quiet import (
    BadDuration,
    held_back,
    mute,
    parse_duration,
    snooze,
    snoozed_at,
    unmute,
    unsnooze,
)
from jobwatch.domain.transitions import Outcome, Policy, decide, decide_error

T0 = "2026-12-03T10:00:00+00:00"
NOW = "2026-12-03T12:00:00+00:00"
SPEC = JobSpec(source="weaviate-export", endpoint="https://w.example.com", job_id="exp-1", backend="s3")
RUNNING = Snapshot(phase=Phase.RUNNING, status="STARTED", progress=10.0)
SNOOZED = Quiet(snoozed_until="2026-12-03T16:00:00+00:00", snoozed_by="ana")


def _job(quiet: Quiet, snapshot: Snapshot | None = RUNNING, health: Health | None = None) -> TrackedJob:
    return TrackedJob(
        spec=SPEC,
        snapshot=snapshot,
        version=4,
        created_at=T0,
        updated_at=T0,
        changed_at=T0,
        health=health or Health(observed_since=T0),
        quiet=quiet,
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("4h", 14_400),
        ("90m", 5_400),
        ("1d12h", 129_600),
        ("3600s", 3_600),
        (" 2H ", 7_200),
        ("30d", 2_592_000),
    ],
)
def test_durations_people_type(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "4", "h", "4 hours", "-4h", "1.5h", "59s", "31d", "4h4h", "forever"])
def test_durations_refused_with_a_reason(text: str) -> None:
    with pytest.raises(BadDuration):
        parse_duration(text)


def test_a_snooze_lets_only_urgent_events_through_until_it_ends() -> None:
    assert [
        e for e in ("STARTED", "SUCCEEDED", "FAILED", "LOST", "AUTH_FAILED") if held_back(SNOOZED, e, NOW)
    ] == [
        "STARTED",
        "SUCCEEDED",
    ]
    after = "2026-12-03T16:00:01+00:00"
    assert not snoozed_at(SNOOZED, after) and not held_back(SNOOZED, "STARTED", after)
    assert held_back(SNOOZED, "STARTED", "2026-12-03T15:59:59Z")  # Z and +00:00 compare as times


def test_a_mute_holds_back_everything_until_unmuted() -> None:
    muted = mute(Quiet(), "ana")
    assert muted.muted_by == "ana" and all(held_back(muted, e, NOW) for e in ("FAILED", "LOST", "STARTED"))
    assert unmute(muted) == Quiet()


def test_snooze_and_unsnooze_keep_a_mute() -> None:
    both = snooze(mute(Quiet(), "ana"), NOW, 3600, "bo")
    assert (both.snoozed_until, both.snoozed_by, both.muted) == ("2026-12-03T13:00:00+00:00", "bo", True)
    assert unsnooze(both) == mute(Quiet(), "ana")


def test_a_snoozed_job_records_its_phase_change_but_publishes_nothing() -> None:
    decision = decide(_job(SNOOZED), RUNNING.model_copy(update={"phase": Phase.SUCCEEDED}), NOW)
    assert decision.outcome is Outcome.WRITE and decision.transitions == ()
    assert decision.snapshot is not None and decision.snapshot.phase is Phase.SUCCEEDED
    assert decision.health is not None
    assert (decision.health.suppressed, decision.health.last_suppressed) == (1, f"SUCCEEDED at {NOW}")


def test_a_snoozed_jobs_failure_breaks_through() -> None:
    decision = decide(_job(SNOOZED), RUNNING.model_copy(update={"phase": Phase.FAILED}), NOW)
    assert [t.event for t in decision.transitions] == ["FAILED"]
    assert decision.health is not None and decision.health.suppressed == 0


def test_a_muted_jobs_failure_does_not_and_is_counted() -> None:
    counted = Health(observed_since=T0, suppressed=2, last_suppressed="STARTED at earlier")
    decision = decide(
        _job(mute(Quiet(), "ana"), health=counted), RUNNING.model_copy(update={"phase": Phase.FAILED}), NOW
    )
    assert decision.transitions == () and decision.health is not None
    assert (decision.health.suppressed, decision.health.last_suppressed) == (3, f"FAILED at {NOW}")


def test_the_next_event_after_a_snooze_names_the_last_published_one() -> None:
    """Held-back transitions never enter the order chain: destinations wait for none of them."""
    job = _job(SNOOZED).model_copy(update={"last_transition_id": "weaviate-export.x#1"})
    held = decide(job, RUNNING.model_copy(update={"phase": Phase.PENDING}), NOW)
    assert held.transitions == ()
    later = job.model_copy(update={"quiet": Quiet(), "snapshot": held.snapshot, "version": 5})
    published = decide(later, RUNNING, "2026-12-03T17:00:00+00:00")
    assert [(t.event, t.previous_transition_id) for t in published.transitions] == [
        ("STARTED", "weaviate-export.x#1")
    ]


def test_lost_and_unreachable_while_muted_are_counted_not_published() -> None:
    policy = Policy(unreachable_after=1, lost_after=1)
    muted = _job(mute(Quiet(), "ana"))
    lost = decide_error(muted, PollErrorKind.NOT_FOUND, "404", NOW, policy)
    assert lost.transitions == () and lost.snapshot is not None and lost.snapshot.phase is Phase.LOST
    assert lost.health is not None and lost.health.suppressed == 1
    down = decide_error(muted, PollErrorKind.TIMEOUT, "timeout", NOW, policy)
    assert down.transitions == () and down.health is not None
    assert (down.health.alert, down.health.suppressed) == ("UNREACHABLE", 1)  # the alert is still tracked
