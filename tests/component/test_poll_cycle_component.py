"""The poll cycle on fakes: what is written, what is published, and when, with no sockets."""

from __future__ import annotations

import asyncio

from jobwatch.app.outbox import OUTBOX_GRACE_S, OUTBOX_MAX_ATTEMPTS
from jobwatch.app.poll_cycle import run_cycle
from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.domain.model import NotifySettings
from jobwatch.sources.base import HttpRequest, HttpResponse
from jobwatch_devkit.component import World, export_spec, export_status
from jobwatch_devkit.fakes import ScriptedUpstream, json_answer


def _tid(job_key: str, version: int, world: World | None = None) -> str:
    from jobwatch.domain.transitions import transition_id

    assert world is not None
    job = world.store.get_job(job_key)
    assert job is not None
    return transition_id(job_key, version, life=job.life)


def _running_then(world: World, job_id: str, *later: str) -> None:
    world.upstream.script(
        job_id,
        [json_answer(export_status(job_id, "STARTED"))]
        + [json_answer(export_status(job_id, s)) for s in later],
    )


def test_a_new_job_is_one_transition_written_and_published_once() -> None:
    world = World()
    world.track(export_spec("nightly"))
    _running_then(world, "nightly")

    first = world.cycle()

    assert (first.polled, first.transitions, first.published) == (1, 1, 1)
    assert world.publisher.events() == [("nightly", "STARTED")]
    assert world.store.pending_transitions() == []
    (job,) = world.store.all_jobs()
    assert job.version == 1 and job.last_transition_id == world.publisher.published[0].transition_id


def test_a_quiet_cycle_writes_nothing_and_publishes_nothing() -> None:
    world = World()
    world.track(export_spec("nightly"))
    _running_then(world, "nightly")
    world.cycle()
    writes = world.store.writes

    quiet = world.cycle()

    assert (quiet.polled, quiet.unchanged, quiet.transitions) == (1, 1, 0)
    assert world.store.writes == writes
    assert len(world.publisher.published) == 1


def test_poll_errors_change_nothing_until_the_unreachable_threshold() -> None:
    world = World()
    job = world.track(export_spec("flaky"))
    world.upstream.script("flaky", [PollError(PollErrorKind.TIMEOUT, "no answer in time")])

    for _ in range(2):
        report = world.cycle()
        assert (report.poll_errors, report.transitions) == (1, 0)
    assert world.publisher.published == []
    third = world.cycle()

    assert [t.event for t in world.publisher.published] == ["UNREACHABLE"]
    assert third.transitions == 1
    stored = world.store.get_job(job.key)
    assert stored is not None and stored.snapshot is None  # the phase never moved


def test_overlapping_runs_record_and_publish_a_transition_once() -> None:
    world = World()
    for n in range(20):
        world.track(export_spec(f"job-{n}"))
        _running_then(world, f"job-{n}")

    async def both() -> None:
        deps = world.poller()
        await asyncio.gather(run_cycle(deps), run_cycle(deps))

    asyncio.run(both())

    ids = [t.transition_id for t in world.publisher.published]
    assert len(ids) == len(set(ids)) == 20
    assert all(job.version == 1 for job in world.store.all_jobs())


def test_a_failed_publish_stays_owed_and_later_transitions_of_the_job_wait_for_it() -> None:
    world = World()
    world.track(export_spec("nightly"))
    _running_then(world, "nightly", "SUCCESS")
    world.publisher.fail_next()

    first = world.cycle()
    assert (first.transitions, first.published, first.publish_failures) == (1, 0, 1)
    (owed,) = world.store.pending_transitions()
    assert owed.attempts == 1

    second = world.cycle()  # SUCCESS is recorded, but STARTED is still owed: it waits behind it
    assert (second.transitions, second.published) == (1, 0)
    assert world.publisher.published == []

    world.clock.advance(2 * OUTBOX_GRACE_S + 1)
    third = world.cycle()
    assert third.republished == 2
    assert world.publisher.events() == [("nightly", "STARTED"), ("nightly", "SUCCEEDED")]
    assert world.store.pending_transitions() == []


def test_an_outbox_entry_is_dead_lettered_after_the_attempt_cap() -> None:
    world = World()
    # Only STARTED is notified: the hours this test skips would otherwise add STALLED and OVERDUE.
    world.track(export_spec("nightly", notify=NotifySettings(events=["STARTED"])))
    _running_then(world, "nightly")
    world.publisher.down = True
    world.cycle()
    dead = 0
    for _ in range(OUTBOX_MAX_ATTEMPTS + 2):
        world.clock.advance(OUTBOX_GRACE_S * 2**6 + 1)
        dead += world.cycle().dead_lettered

    assert dead == 1
    assert world.store.pending_transitions() == []
    (job,) = world.store.all_jobs()
    assert world.store.transition_standing(_tid(job.key, 1, world)) == "DEAD_LETTERED"


def test_a_terminal_job_leaves_the_pollable_set() -> None:
    world = World()
    world.track(export_spec("done"))
    world.upstream.script("done", [json_answer(export_status("done", "SUCCESS"))])

    world.cycle()
    after = world.cycle()

    assert after.jobs == 0
    assert world.publisher.events() == [("done", "SUCCEEDED")]


def test_discovery_tracks_a_watched_job_and_polls_it_in_the_same_cycle() -> None:
    from jobwatch.domain.model import Watch

    world = World()
    world.watches.add(
        Watch(
            id="weaviate-backups.0123456789abcdef",
            kind="weaviate-backups",
            endpoint="https://weaviate.example.com",
            backend="s3",
            created_at=world.clock.now_iso(),
        )
    )
    listing = [{"id": "bk-1", "status": "STARTED", "classes": ["Articles"]}]
    world.upstream.script("/v1/backups/s3", [json_answer(listing)])
    world.upstream.script("bk-1", [json_answer({"id": "bk-1", "backend": "s3", "status": "TRANSFERRING"})])

    report = world.cycle()

    assert report.discovered == 1
    assert world.publisher.events() == [("bk-1", "STARTED")]


class _SlowUpstream(ScriptedUpstream):
    """Each answer takes `seconds` of the world's fake time (polls one at a time)."""

    def __init__(self, world: World, seconds: float) -> None:
        super().__init__()
        self._world, self._seconds = world, seconds

    async def fetch(self, request: HttpRequest) -> HttpResponse:
        self._world.clock.advance(self._seconds)
        return await super().fetch(request)


def _slow_world(jobs: int, seconds_per_poll: float) -> World:
    world = World()
    world.upstream = _SlowUpstream(world, seconds_per_poll)
    for n in range(jobs):
        world.track(export_spec(f"job-{n}"))
        _running_then(world, f"job-{n}")
    return world


def test_a_cycle_takes_no_new_work_near_the_next_tick_and_leaves_the_rest_to_it() -> None:
    world = _slow_world(10, seconds_per_poll=10.0)
    start = world.clock.now()
    deps = world.poller(JOBWATCH_POLL_CONCURRENCY="1", JOBWATCH_POLL_PERIOD_S="60")

    first = asyncio.run(run_cycle(deps, next_tick_s=start + 60))

    # New polls start until 15 s (the upstream deadline) before the tick: at 0, 10, 20, 30 and 40 s.
    assert (first.polled, first.deferred) == (5, 5)
    assert world.clock.now() - start <= 60  # the last poll ended before the next cycle began
    # Each cycle starts elsewhere on the ring of jobs: the ones left over are reached within a few.
    for _ in range(3):
        later = asyncio.run(run_cycle(deps, next_tick_s=world.clock.now() + 60))
        assert later.polled == 5
    seen = {t.job_key for t in world.publisher.published}
    assert seen == {job.key for job in world.store.all_jobs()}


def test_a_run_that_starts_after_its_next_tick_polls_nothing() -> None:
    world = _slow_world(3, seconds_per_poll=1.0)
    late = asyncio.run(run_cycle(world.poller(), next_tick_s=world.clock.now() - 1))
    assert (late.polled, late.deferred, late.transitions) == (0, 3, 0)
    assert world.publisher.published == []


def test_without_a_schedule_only_the_lambda_deadline_bounds_the_cycle() -> None:
    world = _slow_world(10, seconds_per_poll=10.0)
    report = asyncio.run(run_cycle(world.poller(JOBWATCH_POLL_CONCURRENCY="1")))
    assert (report.polled, report.deferred) == (10, 0)
