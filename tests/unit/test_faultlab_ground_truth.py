"""The fault lab's ground truth when the lab's own machine fails a poll (a connect timeout to a
simulator that would have answered): jobwatch saw a real poll error, so the expected story must
count it, or the lab reports false alerts that are its own (soak of 437af50: 18 such)."""

from __future__ import annotations

from jobwatch.domain.model import JobSpec, NotifySettings, Phase, Snapshot, Transition
from jobwatch.domain.transitions import transition_id
from jobwatch_devkit.faultlab import LabConfig, PlannedStep, Schedule, expected_story
from jobwatch_devkit.faultlab.invariants import RoundResult, SnsView, check_jobs, count_sns
from jobwatch_devkit.simulator import fault_http, state

CONFIG = LabConfig(unreachable_after=3, lost_after=3)


def _running() -> PlannedStep:
    return PlannedStep(state("ImportRunning"), "state", phase=Phase.RUNNING, status="ImportRunning")


def _not_found() -> PlannedStep:
    return PlannedStep(fault_http(404), "http-404", fault_class="not-found")


def _server_error() -> PlannedStep:
    return PlannedStep(fault_http(500), "http-500", fault_class="other")


def _schedule(steps: list[PlannedStep], notify: NotifySettings | None = None) -> Schedule:
    expected, phase, status = expected_story(steps, CONFIG.unreachable_after, CONFIG.lost_after)
    if notify is not None and notify.events is not None:
        expected = [e for e in expected if e in notify.events]
    spec = JobSpec(
        source="zilliz-import-v1",
        endpoint="http://127.0.0.1:9",
        job_id="job-1",
        cluster_id="in01-lab",
        notify=notify,
    )
    return Schedule(0, spec, 0, steps, expected, phase, status)


def test_a_not_found_run_ends_lost_without_an_alert() -> None:
    events, phase, status = expected_story([_running(), *[_not_found()] * 3], 3, 3)
    assert (events, phase, status) == (["STARTED", "LOST"], Phase.LOST, "NOT_FOUND")


def test_a_machine_timeout_before_a_not_found_run_brings_unreachable_first() -> None:
    # the soak's story: ImportRunning (its poll timed out on the lab's machine), then 404s
    schedule = _schedule([_running(), *[_not_found()] * 4])
    schedule.cursor = 1  # the first ImportRunning was seen; the second poll of it timed out
    schedule.count_machine_error(CONFIG, exact=True)
    assert schedule.expected == ["STARTED", "UNREACHABLE", "LOST"]
    assert schedule.cursor == 2 and schedule.steps[1].kind == "machine-timeout"
    assert schedule.current.kind == "http-404"  # not the state: the script went on past the insert


def test_a_timeout_that_breaks_a_not_found_run_still_ends_lost() -> None:
    # the last 404 is served for ever, so a run cut short by a timeout still reaches LOST
    schedule = _schedule([_running(), *[_not_found()] * 3])
    schedule.cursor = 3  # two 404s counted; the third poll timed out instead
    schedule.count_machine_error(CONFIG, exact=True)
    assert schedule.expected == ["STARTED", "UNREACHABLE", "LOST"]
    assert (schedule.final_phase, schedule.final_status) == (Phase.LOST, "NOT_FOUND")


def test_a_machine_timeout_keeps_the_jobs_notify_filter() -> None:
    notify = NotifySettings(events=["STARTED", "RECOVERED"])
    schedule = _schedule([_running(), _server_error(), _server_error(), _running()], notify)
    assert schedule.expected == ["STARTED"]
    schedule.cursor = 1
    schedule.count_machine_error(CONFIG, exact=True)  # three errors in a row now: an alert, then RECOVERED
    assert schedule.expected == ["STARTED", "RECOVERED"]


def test_an_uncertain_count_leaves_the_story_and_marks_its_health_unknown() -> None:
    schedule = _schedule([_running(), _server_error(), _running()])
    schedule.cursor = 1
    schedule.count_machine_error(CONFIG, exact=False)
    assert schedule.health_uncertain and schedule.machine_errors == 1
    assert len(schedule.steps) == 3 and schedule.expected == ["STARTED"]


def _sns(schedule: Schedule, events: list[str]) -> SnsView:
    """SNS as the lab reads it: one transition per event, numbered as jobwatch numbers them."""
    seen = [
        Transition(
            transition_id=transition_id(schedule.key, version, life=schedule.life),
            job_key=schedule.key,
            source=schedule.spec.source,
            job_id=schedule.spec.job_id,
            event=event,
            severity="info",
            occurred_at="2026-12-03T00:00:00Z",
            job=schedule.spec,
            previous=None,
            current=Snapshot(phase=Phase.RUNNING, status="ImportRunning"),
        )
        for version, event in enumerate(events, start=1)
    ]
    return count_sns(seen, RoundResult())


def test_uncertain_health_is_adopted_only_around_the_same_story() -> None:
    schedule = _schedule([_running(), _server_error(), _running()])
    schedule.life = "life1"
    schedule.count_machine_error(CONFIG, exact=False)
    good = RoundResult()
    check_jobs([schedule], _sns(schedule, ["STARTED", "UNREACHABLE", "RECOVERED"]), {}, good)
    assert good.health_adopted == 1 and good.lost_sns == 0
    assert schedule.expected == ["STARTED", "UNREACHABLE", "RECOVERED"]

    other = _schedule([_running(), _server_error(), _running()])
    other.life = "life2"
    other.count_machine_error(CONFIG, exact=False)
    bad = RoundResult()
    # two alerts in one outage, or a phase event the script never had, is not adopted
    check_jobs([other], _sns(other, ["STARTED", "UNREACHABLE", "UNREACHABLE"]), {}, bad)
    assert bad.health_adopted == 0 and other.expected == ["STARTED"]
