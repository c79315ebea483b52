"""Estimated completion (D41) on real progress shapes, through the same `decide()` the poller runs:
linear, Milvus's parked-at-80 % (no estimate, STALLED instead), restarts, unknown progress, terminal.
The runs apply only the writes `decide()` asks for, so every estimate here comes from what is stored
and estimating never adds a write."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from jobwatch.domain.eta import (
    MAX_ETA_S,
    Eta,
    NoEstimate,
    estimate,
    job_eta,
    next_baseline,
    seconds_left,
)
from jobwatch.domain.humanize import format_eta, format_in
from jobwatch.domain.model import (
    Event,
    Health,
    JobSpec,
    Phase,
    ProgressMark,
    Snapshot,
    TrackedJob,
    Transition,
)
from jobwatch.domain.transitions import Outcome, Policy, decide

SPEC = JobSpec(source="milvus-import", endpoint="https://m.example.com", job_id="imp-1")
POLICY = Policy(stall_after_s=1800, progress_write_interval_s=300)
"""The deployment defaults: moved counters are written at most every 5 min, STALLED after 30 min."""


def at(minute: int) -> str:
    hours, minutes = divmod(minute, 60)
    return f"2026-11-22T{12 + hours:02d}:{minutes:02d}:00.000Z"


def running(progress: float | None, **kw: Any) -> Snapshot:
    return Snapshot(phase=Phase.RUNNING, status="Importing", progress=progress, **kw)


@dataclass
class Run:
    """A tracked job polled once a minute; only WRITE decisions change what is stored."""

    job: TrackedJob = field(
        default_factory=lambda: TrackedJob(spec=SPEC, created_at=at(0), updated_at=at(0), version=0)
    )
    writes: int = 0
    transitions: list[Transition] = field(default_factory=list)

    def poll(self, minute: int, seen: Snapshot) -> None:
        now = at(minute)
        decision = decide(self.job, seen, now, POLICY)
        if decision.outcome is not Outcome.WRITE:
            return
        self.writes += 1
        self.transitions += decision.transitions
        self.job = self.job.model_copy(
            update={
                "snapshot": decision.snapshot,
                "health": decision.health,
                "version": self.job.version + 1,
                "changed_at": now if decision.snapshot_changed else self.job.changed_at,
            }
        )

    def eta(self, minute: int) -> Eta:
        return job_eta(self.job, at(minute))

    def events(self) -> list[str]:
        return [str(t.event) for t in self.transitions]


def test_linear_progress_gives_the_linear_completion_time() -> None:
    run = Run()
    for minute in range(31):  # 10 % at noon, one percent a minute
        run.poll(minute, running(10.0 + minute))
    assert run.writes == 7  # first sight, then every 5 min (D40): the estimate added none
    assert run.job.health.progress_baseline == ProgressMark(at=at(0), progress=10.0)
    assert run.eta(31) == Eta("2026-11-22T13:30:00Z")  # 40 % at 12:30, 60 % left at 1 %/min
    assert run.events() == ["STARTED"]
    assert run.transitions[0].eta is None  # nothing to go on at first sight without a start time


def test_quiet_polls_write_nothing_and_keep_the_estimate() -> None:
    run = Run()
    run.poll(0, running(10.0))
    run.poll(10, running(30.0))
    writes, stored = run.writes, run.job
    for minute in range(11, 15):
        run.poll(minute, running(30.0))
    assert (run.writes, run.job) == (writes, stored)
    assert run.eta(14) == Eta("2026-11-22T12:45:00Z")


def test_a_job_tracked_mid_run_is_estimated_from_upstreams_start_time() -> None:
    run = Run()
    run.poll(60, running(50.0, started_at=at(0)))
    assert run.job.health.progress_baseline == ProgressMark(at="2026-11-22T12:00:00Z", progress=0.0)
    (started,) = run.transitions
    assert (started.event, started.eta) == (Event.STARTED, "2026-11-22T14:00:00Z")


def test_milvus_parked_at_80_percent_has_no_estimate_and_stalls() -> None:
    """Milvus imports reach 80 % quickly, then sit there while the index is built."""
    run = Run()
    for minute in range(41):
        run.poll(minute, running(min(80.0, 2.0 * minute), details={"allFilesCompleted": minute >= 40}))
    assert run.eta(40) == Eta("2026-11-22T12:50:00Z")  # the import rate, kept up
    for minute in range(41, 56):
        run.poll(minute, running(80.0, details={"allFilesCompleted": True}))
    assert run.eta(55).reason is NoEstimate.PASSED  # the estimate went by without progress
    for minute in range(56, 71):
        run.poll(minute, running(80.0, details={"allFilesCompleted": True}))
    assert run.events() == ["STARTED", "STALLED"]
    stalled = run.transitions[-1]
    assert stalled.eta is None and "sorting or index building" in (stalled.note or "")
    assert run.eta(71).reason is NoEstimate.STALLED
    run.poll(90, Snapshot(phase=Phase.SUCCEEDED, status="Completed", progress=100.0))
    assert run.transitions[-1].eta is None and run.job.health.progress_baseline is None
    assert run.eta(91).reason is NoEstimate.NOT_RUNNING


def test_a_restart_resets_the_baseline() -> None:
    run = Run()
    for minute in range(0, 21, 5):
        run.poll(minute, running(2.5 * minute))  # 50 % at 12:20
    run.poll(25, running(5.0))  # upstream started over
    assert run.job.health.progress_baseline == ProgressMark(at=at(25), progress=5.0)
    assert run.eta(25).reason is NoEstimate.FLAT  # nothing since the restart yet
    run.poll(35, running(15.0))
    assert run.eta(35) == Eta("2026-11-22T14:00:00Z")  # 1 %/min since the restart: 85 min left


def test_unknown_progress_never_gives_an_estimate() -> None:
    run = Run()
    run.poll(0, running(None, details={"objectsExported": 10}))
    run.poll(10, running(None, details={"objectsExported": 900}))
    assert run.job.health.progress_baseline is None
    assert run.eta(10).reason is NoEstimate.UNKNOWN
    assert all(t.eta is None for t in run.transitions)


def test_progress_first_known_later_starts_the_baseline() -> None:
    run = Run()
    run.poll(0, running(None))
    run.poll(10, running(20.0))
    assert run.job.health.progress_baseline == ProgressMark(at=at(10), progress=20.0)


def test_an_event_on_a_moving_job_carries_the_estimate() -> None:
    """RESUMED after a stall: the rate since the run began, stall included (pessimistic)."""
    job = TrackedJob(
        spec=SPEC,
        snapshot=running(40.0),
        created_at=at(0),
        updated_at=at(40),
        changed_at=at(20),
        version=3,
        health=Health(
            observed_since=at(0), stalled=True, progress_baseline=ProgressMark(at=at(0), progress=0)
        ),
    )
    decision = decide(job, running(60.0), at(60), POLICY)
    (resumed,) = decision.transitions
    assert resumed.event == Event.RESUMED and resumed.eta == "2026-11-22T13:40:00Z"


def test_a_job_stored_before_etas_loads_and_gets_a_baseline_on_its_next_write() -> None:
    doc = {
        "spec": SPEC.to_wire(),
        "snapshot": running(30.0).to_wire(),
        "createdAt": at(0),
        "updatedAt": at(0),
        "changedAt": at(0),
        "health": {"observedSince": at(0), "stalled": False},
    }
    old = TrackedJob.model_validate(doc)
    assert old.health.progress_baseline is None and job_eta(old).reason is NoEstimate.NO_HISTORY
    assert next_baseline(old, running(40.0), at(10)) == ProgressMark(at=at(10), progress=40.0)


@pytest.mark.parametrize(
    ("base", "progress", "span", "expected"),
    [
        (0.0, 50.0, 600.0, 600.0),
        (20.0, 60.0, 400.0, 400.0),
        (50.0, 50.0, 600.0, NoEstimate.FLAT),
        (50.0, 40.0, 600.0, NoEstimate.RESTARTED),
        (0.0, 100.0, 600.0, NoEstimate.FINISHING),
        (10.0, 20.0, 0.0, NoEstimate.FLAT),
        (0.0, 0.01, 3_600.0, NoEstimate.TOO_SLOW),  # about 14 months to go
    ],
)
def test_seconds_left(base: float, progress: float, span: float, expected: float | NoEstimate) -> None:
    assert seconds_left(base, progress, span) == expected


def test_the_bound_is_30_days() -> None:
    assert MAX_ETA_S == 30 * 86_400
    assert seconds_left(0.0, 50.0, MAX_ETA_S) == MAX_ETA_S
    assert seconds_left(0.0, 50.0, MAX_ETA_S + 1) is NoEstimate.TOO_SLOW


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"phase": Phase.PENDING}, NoEstimate.NOT_RUNNING),
        ({"phase": Phase.SUCCEEDED}, NoEstimate.NOT_RUNNING),
        ({"stalled": True}, NoEstimate.STALLED),
    ],
)
def test_no_estimate_off_running_or_stalled(kwargs: dict[str, Any], reason: NoEstimate) -> None:
    base, now = ProgressMark(at=at(0), progress=0.0), ProgressMark(at=at(10), progress=50.0)
    assert estimate(base, now) == Eta("2026-11-22T12:20:00Z")
    assert estimate(base, now, **kwargs) == Eta.none(reason)


def test_missing_or_unreadable_marks() -> None:
    mark = ProgressMark(at=at(10), progress=50.0)
    assert estimate(None, mark).reason is NoEstimate.NO_HISTORY
    assert estimate(mark, None).reason is NoEstimate.UNKNOWN
    assert estimate(ProgressMark(at="yesterday", progress=0.0), mark).reason is NoEstimate.NO_HISTORY


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (30, "under 1 min"),
        (23 * 60 + 59, "23 min"),
        (3 * 3600 + 300, "3 h 05 min"),
        (2 * 86_400 + 3 * 3600, "2 d 03 h"),
    ],
)
def test_format_in(seconds: float, text: str) -> None:
    assert format_in(seconds) == text


def test_format_eta() -> None:
    assert format_eta("2026-11-22T14:32:00Z", "2026-11-22T14:09:00.000Z") == "14:32 UTC (in 23 min)"
    assert (
        format_eta("2026-11-23T01:00:00Z", "2026-11-22T23:00:00Z") == "2026-11-23 01:00 UTC (in 2 h 00 min)"
    )
    assert format_eta("2026-11-22T14:00:00Z", "2026-11-22T14:09:00Z") == "14:00 UTC (passed)"
    assert format_eta(None, "2026-11-22T14:09:00Z") is None
    assert format_eta("2026-11-22T14:32:00Z", None) == "2026-11-22 14:32 UTC"


def test_a_dynamodb_item_from_before_etas_still_loads() -> None:
    from jobwatch.adapters.dynamodb.jobs import DynamoJobStore

    doc = {
        "spec": SPEC.to_wire(),
        "snapshot": running(30.0).to_wire(),
        "createdAt": at(0),
        "updatedAt": at(0),
    }
    item = {
        "doc": {"S": json.dumps(doc)},
        "version": {"N": "2"},
        "health": {"S": json.dumps({"observedSince": at(0), "consecutiveErrors": 0})},
    }
    job = DynamoJobStore._job_from_item(item)
    assert job.version == 2 and job.health.progress_baseline is None
