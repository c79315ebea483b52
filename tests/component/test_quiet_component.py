"""Snooze and mute end to end on fakes: the API's operations set them, the poll cycle honours them."""

from __future__ import annotations

import pytest

from jobwatch.app.operations import QUIET_ATTEMPTS, QuietConflict
from jobwatch.ports import ConflictError
from jobwatch_devkit.component import World, export_spec, export_status
from jobwatch_devkit.fakes import json_answer


def _script(world: World, job_id: str, *statuses: str) -> None:
    world.upstream.script(job_id, [json_answer(export_status(job_id, s)) for s in statuses])


def test_a_snoozed_job_is_polled_and_stored_but_only_its_failure_is_published() -> None:
    world = World()
    job = world.track(export_spec("nightly"))
    _script(world, "nightly", "STARTED", "TRANSFERRING", "FAILED")
    operations = world.operations()

    shown = operations.snooze(job.key, 4 * 3600, "ana")
    assert shown is not None and shown.quiet.snoozed_by == "ana" and shown.quiet.snoozed_until is not None
    world.cycle()  # STARTED: held back
    world.cycle()  # TRANSFERRING is STARTED's phase too: nothing to tell
    world.cycle()  # FAILED breaks through
    assert world.publisher.events() == [("nightly", "FAILED")]
    after = operations.show(job.key)
    assert after is not None and after.phase is not None and after.phase.value == "FAILED"
    assert after.suppressed == 1 and (after.last_suppressed or "").startswith("STARTED at ")


def test_a_muted_job_publishes_nothing_and_unmuting_resumes_from_where_it_is() -> None:
    world = World()
    job = world.track(export_spec("nightly"))
    _script(world, "nightly", "STARTED", "SUCCESS")
    operations = world.operations()
    operations.mute(job.key, "ana")
    world.cycle()
    assert world.publisher.events() == []
    operations.unmute(job.key, "ana")
    world.cycle()
    assert world.publisher.events() == [("nightly", "SUCCEEDED")]
    shown = operations.show(job.key)
    assert shown is not None and shown.suppressed == 1 and not shown.quiet.muted


def test_setting_a_snooze_again_restarts_the_count_and_an_unchanged_one_writes_nothing() -> None:
    world = World()
    job = world.track(export_spec("nightly"))
    _script(world, "nightly", "STARTED")
    operations = world.operations()
    operations.mute(job.key, "ana")
    world.cycle()
    writes = world.store.writes
    assert operations.mute(job.key, "ana") is not None and world.store.writes == writes  # already muted
    again = operations.snooze(job.key, 3600, "bo")
    assert again is not None and again.suppressed == 0 and again.quiet.muted  # a new snooze counts afresh
    assert operations.unmute(job.key, "bo") is not None
    unsnoozed = operations.unsnooze(job.key, "bo")
    assert unsnoozed is not None and unsnoozed.quiet.snoozed_until is None
    assert operations.snooze("weaviate-export.00000000000000000000", 3600, "bo") is None


def test_a_poll_written_meanwhile_is_retried_and_a_job_that_keeps_changing_is_refused() -> None:
    world = World()
    job = world.track(export_spec("nightly"))
    operations = world.operations()
    real = world.store.save_quiet
    losses = iter(range(QUIET_ATTEMPTS + 10))

    def racing(job_read, quiet, health):  # type: ignore[no-untyped-def]
        if next(losses) < 2:  # a poller run wrote the job just before us, twice
            raise ConflictError("version moved")
        return real(job_read, quiet, health)

    world.store.save_quiet = racing  # type: ignore[method-assign]
    assert operations.mute(job.key, "ana") is not None
    world.store.save_quiet = lambda *_: (_ for _ in ()).throw(ConflictError("always"))  # type: ignore[method-assign]
    with pytest.raises(QuietConflict):
        operations.unmute(job.key, "ana")
