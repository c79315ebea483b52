"""One contract per port, run against the DynamoDB adapter (moto server) and the in-memory fake.

The component tier trusts the fakes; this file is what earns that trust: a behaviour the fake got
wrong (a condition, an ordering, a lease) fails here next to the adapter that gets it right.
"""

from __future__ import annotations

from typing import Any

import pytest

from jobwatch.adapters import aws
from jobwatch.adapters.dynamodb.jobs import DynamoJobStore
from jobwatch.adapters.dynamodb.ledger import DynamoDeliveryLedger
from jobwatch.adapters.dynamodb.watches import DynamoWatchStore
from jobwatch.domain.model import (
    Event,
    Health,
    JobSpec,
    Phase,
    ProgressMark,
    Snapshot,
    TrackedJob,
    Transition,
    Watch,
)
from jobwatch.domain.transitions import transition_id
from jobwatch.entrypoints.wiring import delivery_ledger, job_store, watch_store
from jobwatch.ports import Claim, ConflictError, DeliveryLedger, JobStore, WatchStore
from jobwatch_devkit.fakes import FakeClock, InMemoryJobStore, InMemoryLedger, InMemoryWatchStore
from jobwatch_devkit.harness import LocalDeployment

pytestmark = pytest.mark.integration

NOW = FakeClock()
RUNNING = Snapshot(phase=Phase.RUNNING, status="STARTED", progress=10.0)
DONE = Snapshot(phase=Phase.SUCCEEDED, status="SUCCESS", progress=100.0)


@pytest.fixture(params=["dynamodb", "in-memory"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def jobs(kind: str, request: pytest.FixtureRequest) -> JobStore:
    if kind == "in-memory":
        return InMemoryJobStore(page_size=2)
    deployment: LocalDeployment = request.getfixturevalue("deployment")
    store: DynamoJobStore = job_store(deployment.settings)
    return store


@pytest.fixture
def ledger(kind: str, request: pytest.FixtureRequest) -> DeliveryLedger:
    if kind == "in-memory":
        return InMemoryLedger()
    deployment: LocalDeployment = request.getfixturevalue("deployment")
    adapter: DynamoDeliveryLedger = delivery_ledger(deployment.settings)
    return adapter


@pytest.fixture
def watches(kind: str, request: pytest.FixtureRequest) -> WatchStore:
    if kind == "in-memory":
        return InMemoryWatchStore()
    deployment: LocalDeployment = request.getfixturevalue("deployment")
    adapter: DynamoWatchStore = watch_store(deployment.settings)
    return adapter


def _spec(job_id: str) -> JobSpec:
    return JobSpec(source="weaviate-export", endpoint="https://w.example.com", job_id=job_id, backend="s3")


def _transition(job: TrackedJob, event: Event, current: Snapshot, index: int = 0) -> Transition:
    return Transition(
        transition_id=transition_id(job.key, job.version + 1, index),
        job_key=job.key,
        source=job.spec.source,
        job_id=job.spec.job_id,
        event=event,
        severity="info",
        occurred_at=NOW.now_iso(),
        job=job.spec,
        previous=job.snapshot,
        current=current,
    )


def _advance(
    store: JobStore, job: TrackedJob, current: Snapshot, *events: Event
) -> tuple[TrackedJob, list[Transition]]:
    transitions = [_transition(job, event, current, i) for i, event in enumerate(events)]
    updated = store.save_state(job, current, Health(), True, transitions, NOW.now_iso(), NOW.now())
    return updated, transitions


# -- JobStore -------------------------------------------------------------------------------------------


def test_adding_a_job_twice_keeps_the_first(jobs: JobStore) -> None:
    first, created = jobs.add_job(_spec("a"), "2026-01-01T00:00:00.000Z")
    again, created_again = jobs.add_job(_spec("a"), "2026-02-02T00:00:00.000Z")
    assert (created, created_again) == (True, False)
    assert again.created_at == first.created_at == "2026-01-01T00:00:00.000Z"


def test_a_write_on_a_stale_version_conflicts_and_changes_nothing(jobs: JobStore) -> None:
    job, _ = jobs.add_job(_spec("a"), NOW.now_iso())
    _advance(jobs, job, RUNNING, Event.STARTED)
    with pytest.raises(ConflictError):
        _advance(jobs, job, DONE, Event.SUCCEEDED)
    with pytest.raises(ConflictError):
        jobs.save_health(job, Health(consecutive_errors=1))
    stored = jobs.get_job(job.key)
    assert stored is not None and (stored.version, stored.snapshot) == (1, RUNNING)


def test_the_progress_baseline_is_kept_in_the_writes_that_happen_anyway(jobs: JobStore) -> None:
    """The ETA's baseline (D41) rides in the job's health: stored by `save_state` and `save_health`,
    read back as written, and a job stored without one still loads."""
    job, _ = jobs.add_job(_spec("eta"), NOW.now_iso())
    assert job.health.progress_baseline is None
    mark = ProgressMark(at="2026-11-22T12:00:00Z", progress=12.5)
    health = Health(observed_since=NOW.now_iso(), progress_baseline=mark)
    job = jobs.save_state(job, RUNNING, health, True, [], NOW.now_iso(), NOW.now())
    stored = jobs.get_job(job.key)
    assert stored is not None and stored.health.progress_baseline == mark
    jobs.save_health(stored, stored.health.model_copy(update={"consecutive_errors": 1}))
    stored = jobs.get_job(job.key)
    assert stored is not None and stored.health.progress_baseline == mark
    assert stored.health.consecutive_errors == 1


def test_transitions_are_owed_with_the_state_and_settled_once(jobs: JobStore) -> None:
    job, _ = jobs.add_job(_spec("a"), NOW.now_iso())
    job, (started,) = _advance(jobs, job, RUNNING, Event.STARTED)
    stored = jobs.get_job(job.key)
    assert (
        stored is not None and stored.owes_transitions and stored.last_transition_id == started.transition_id
    )
    assert [p.transition.transition_id for p in jobs.pending_transitions()] == [started.transition_id]
    assert jobs.transition_standing(started.transition_id) == "OWED"

    jobs.note_publish_failure(started)
    assert [p.attempts for p in jobs.pending_transitions()] == [1]
    jobs.mark_published(started, "m-1", NOW.now())
    jobs.mark_dead_lettered(started, "late duplicate", NOW.now())  # the first settle stands

    assert jobs.pending_transitions() == []
    assert jobs.transition_standing(started.transition_id) == "PUBLISHED"
    stored = jobs.get_job(job.key)
    assert stored is not None and not stored.owes_transitions
    assert [t.transition_id for t in jobs.recent_transitions(job.key)] == [started.transition_id]


def test_pending_transitions_come_oldest_first_and_history_newest_first(jobs: JobStore) -> None:
    job, _ = jobs.add_job(_spec("a"), NOW.now_iso())
    job, first = _advance(jobs, job, RUNNING, Event.STARTED, Event.STALLED)
    job, second = _advance(jobs, job, DONE, Event.SUCCEEDED)
    ids = [t.transition_id for t in first + second]
    assert [p.transition.transition_id for p in jobs.pending_transitions()] == ids
    for transition in first + second:
        jobs.mark_published(transition, "m", NOW.now())
    assert [t.transition_id for t in jobs.recent_transitions(job.key)] == list(reversed(ids))
    assert jobs.transition_standing(f"{job.key}#99") is None


def test_only_non_terminal_jobs_are_pollable_and_pages_cover_them_all(jobs: JobStore) -> None:
    keys = []
    for name in ("a", "b", "c", "d", "e"):
        job, _ = jobs.add_job(_spec(name), NOW.now_iso())
        keys.append(job.key)
    done = jobs.get_job(keys[0])
    assert done is not None
    _advance(jobs, done, DONE, Event.SUCCEEDED)

    polled = [job.key for page in jobs.pollable_pages() for job in page]

    assert sorted(polled) == sorted(keys[1:])
    assert len(jobs.all_jobs()) == 5


def test_jobs_page_by_creation_oldest_first_and_skip_deleted_ones(jobs: JobStore) -> None:
    """The listing read behind `GET /jobs`: (createdAt, key) order, a cursor that goes on after a
    deleted job, and None once the last job was handed out; a state write leaves the order alone."""
    created = {}
    for minute, name in [(3, "c"), (1, "a"), (2, "b"), (2, "a2"), (4, "d")]:
        job, _ = jobs.add_job(_spec(name), f"2026-12-03T10:0{minute}:00+00:00")
        created[name] = job
    order = sorted(created.values(), key=lambda job: (job.created_at, job.key))
    _advance(jobs, created["b"], RUNNING, Event.STARTED)
    assert jobs.delete_job(created["c"].key)

    first, cursor = jobs.jobs_by_creation(None, 2)
    assert [job.key for job in first] == [job.key for job in order[:2]]
    assert cursor == (order[1].created_at, order[1].key)
    rest, end = jobs.jobs_by_creation(cursor, 100)
    assert [job.key for job in rest] == [job.key for job in order[2:] if job.key != created["c"].key]
    assert end is None
    (started,) = [job for job in [*first, *rest] if job.key == created["b"].key]
    assert started.snapshot is not None and started.snapshot.phase is Phase.RUNNING


def test_deleting_a_job_removes_it(jobs: JobStore) -> None:
    job, _ = jobs.add_job(_spec("a"), NOW.now_iso())
    assert jobs.delete_job(job.key) is True
    assert jobs.delete_job(job.key) is False
    assert jobs.get_job(job.key) is None


def test_a_job_first_seen_over_is_stored_terminal(jobs: JobStore) -> None:
    job, created = jobs.add_job(_spec("old"), NOW.now_iso(), initial_snapshot=DONE)
    assert created and job.terminal
    assert [j.key for page in jobs.pollable_pages() for j in page] == []


# -- DeliveryLedger -------------------------------------------------------------------------------------


def test_a_claim_is_exclusive_until_finished_or_released(ledger: DeliveryLedger) -> None:
    now = NOW.now()
    assert ledger.claim("slack", "k#1", 60, now) is Claim.CLAIMED
    assert ledger.claim("slack", "k#1", 60, now + 1) is Claim.BUSY
    assert ledger.claim("email", "k#1", 60, now) is Claim.CLAIMED  # channels are independent
    ledger.release("slack", "k#1")
    assert ledger.claim("slack", "k#1", 60, now + 2) is Claim.CLAIMED
    ledger.finish("slack", "k#1", "DELIVERED", "", now + 3)
    ledger.release("slack", "k#1")  # a finished claim is not given back
    assert ledger.claim("slack", "k#1", 60, now + 4) is Claim.DONE
    assert ledger.state("slack", "k#1") == "DELIVERED"


def test_an_expired_lease_can_be_taken_over(ledger: DeliveryLedger) -> None:
    now = NOW.now()
    assert ledger.claim("slack", "k#2", 60, now) is Claim.CLAIMED
    assert ledger.state("slack", "k#2", now + 61) == "STALE"
    assert ledger.claim("slack", "k#2", 60, now + 61) is Claim.CLAIMED
    assert ledger.state("slack", "k#3") is None


def test_one_waiting_copy_stands_for_a_transition(ledger: DeliveryLedger) -> None:
    now = NOW.now()
    assert ledger.hand_wait_to("slack", "k#1", "aaa", None, now, 60)
    assert ledger.waiting_copy("slack", "k#1", now + 1) == "aaa"
    assert not ledger.hand_wait_to("slack", "k#1", "bbb", None, now + 1, 60)  # another copy stands
    assert ledger.hand_wait_to("slack", "k#1", "ccc", "aaa", now + 2, 60)  # the standing one hands over
    assert ledger.waiting_copy("slack", "k#1", now + 70) is None  # lease ran out
    assert ledger.hand_wait_to("slack", "k#1", "ddd", None, now + 70, 60)


def test_the_first_routing_of_a_transition_stands(ledger: DeliveryLedger) -> None:
    first = [{"destination": {"type": "eventbridge", "bus": "default"}, "routes": ["a"], "mentions": []}]
    later = [{"destination": {"type": "email", "addresses": []}, "routes": ["b"], "mentions": []}]
    assert ledger.routing("k#1") is None
    assert ledger.record_routing("k#1", first, NOW.now()) == first
    assert ledger.record_routing("k#1", later, NOW.now()) == first
    assert ledger.routing("k#1") == first


def test_a_routing_keeps_the_previous_transition_it_was_first_recorded_with(ledger: DeliveryLedger) -> None:
    deliveries: list[dict[str, object]] = []
    assert ledger.routed_previous("k#2") is None  # not routed yet
    ledger.record_routing("k#2", deliveries, NOW.now(), "k#1")
    ledger.record_routing("k#2", deliveries, NOW.now(), "k#0")  # a second record does not stand
    ledger.record_routing("k#1", deliveries, NOW.now())  # a job's first transition has none
    assert (ledger.routed_previous("k#2"), ledger.routed_previous("k#1")) == ("k#1", None)


# -- WatchStore -----------------------------------------------------------------------------------------


def test_watches_are_added_once_primed_once_and_remember_what_they_handed_over(watches: WatchStore) -> None:
    watch = Watch(
        id="milvus.0123456789abcdef",
        kind="milvus",
        endpoint="https://milvus.example.com",
        created_at="2026-01-01T00:00:00.000Z",
    )
    _, created = watches.add(watch)
    _, again = watches.add(watch)
    assert (created, again) == (True, False)
    watches.mark_primed(watch.id, "2026-01-01T00:01:00.000Z")
    watches.mark_primed(watch.id, "2026-01-01T00:02:00.000Z")
    primed = watches.get(watch.id)
    assert primed is not None and primed.primed_at == "2026-01-01T00:01:00.000Z"
    watches.mark_seen(watch.id, "job-1", "milvus-import.x", "2026-01-01T00:01:00.000Z")
    assert watches.seen_job_ids(watch.id) == {"job-1"}
    assert [w.id for w in watches.list()] == [watch.id]
    assert watches.delete(watch.id) is True
    assert watches.seen_job_ids(watch.id) == set() and watches.get(watch.id) is None


def test_a_key_over_dynamodbs_limit_is_answered_without_a_request(deployment: LocalDeployment) -> None:
    """DynamoDB refuses keys over 1,024 bytes with ValidationException (moto does not): the store
    answers "no such job" for them without sending anything."""
    store = job_store(deployment.settings)  # on the process's one DynamoDB client (aws.dynamodb())
    sent: list[str] = []

    def count(model: Any, **_: Any) -> None:
        sent.append(model.name)

    events = aws.dynamodb().meta.events
    events.register("before-call.dynamodb.*", count)
    try:
        key = "weaviate-export." + "x" * 1_100
        assert (store.get_job(key), store.delete_job(key), store.recent_transitions(key)) == (None, False, [])
        assert sent == []
        assert store.get_job("weaviate-export.0123456789abcdef0123") is None and sent == ["GetItem"]
    finally:
        events.unregister("before-call.dynamodb.*", count)
