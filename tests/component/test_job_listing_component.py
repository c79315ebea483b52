"""`GET /jobs` (Operations.list_jobs) over the in-memory fakes: paged through the creation index,
never every job at once, with bounded work per call however selective the filter (D42)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobwatch.app.operations import MAX_EXAMINED, BadToken, Operations
from jobwatch.domain.model import JobSpec
from jobwatch_devkit.component import World
from jobwatch_devkit.fakes import InMemoryJobStore

START = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def _operations(store: InMemoryJobStore) -> Operations:
    return World(store=store).operations()


def _fleet(count: int, *, team_every: int = 0, same_second: int = 1) -> InMemoryJobStore:
    """`count` jobs, `same_second` of them created in each second; every `team_every`-th one is
    labelled team=search (0: none)."""
    store = InMemoryJobStore()
    for number in range(count):
        labels = {"team": "search"} if team_every and number % team_every == 0 else {}
        spec = JobSpec(
            source="weaviate-export",
            endpoint="https://w.example.com",
            job_id=f"job-{number:05d}",
            backend="s3",
            labels=labels,
        )
        store.add_job(spec, (START + timedelta(seconds=number // same_second)).isoformat())
    return store


def _every_page(operations: Operations, start: str | None = None, **filters: object) -> tuple[list[str], int]:
    keys: list[str] = []
    token = start
    calls = 0
    while True:
        page = operations.list_jobs(next_token=token, **filters)  # type: ignore[arg-type]
        calls += 1
        keys += [job.key for job in page.jobs]
        token = page.next_token
        if token is None:
            return keys, calls


def test_pages_cover_every_job_once_oldest_first() -> None:
    store = _fleet(437, same_second=3)  # ties on createdAt are ordered by key
    operations = _operations(store)
    keys, calls = _every_page(operations, limit=50)
    expected = [job.key for job in sorted(store.all_jobs(), key=lambda job: (job.created_at, job.key))]
    assert keys == expected and len(set(keys)) == 437
    assert calls == 9  # 8 full pages and one of 37: the last page says there is no more


def test_a_page_that_ends_exactly_at_the_last_job_has_no_token() -> None:
    operations = _operations(_fleet(100))
    page = operations.list_jobs(limit=100)
    assert len(page.jobs) == 100 and page.next_token is None


def test_a_selective_filter_reads_a_bounded_number_of_jobs_per_call() -> None:
    store = _fleet(2500, team_every=1000)  # jobs 0, 1000 and 2000 carry team=search
    operations = _operations(store)
    first = operations.list_jobs(labels=["team=search"], limit=50)
    assert [job.spec.job_id for job in first.jobs] == ["job-00000"]
    assert first.next_token is not None  # more jobs exist past the first 1,000 read
    assert store.listing_reads == MAX_EXAMINED // 100

    store.listing_reads = 0
    keys, calls = _every_page(operations, labels=["team=search"], limit=50)
    assert keys == [job.key for job in store.all_jobs() if job.spec.labels]
    assert len(keys) == 3 and calls == 3
    assert store.listing_reads <= calls * MAX_EXAMINED // 100


def test_jobs_tracked_or_untracked_between_pages() -> None:
    store = _fleet(120)
    operations = _operations(store)
    first = operations.list_jobs(limit=60)
    gone = first.jobs[-1].key  # already shown: deleting it must not disturb the cursor
    later = store.all_jobs()[90].key
    assert store.delete_job(gone) and store.delete_job(later)
    spec = JobSpec(source="weaviate-export", endpoint="https://w.example.com", job_id="late", backend="s3")
    added, _ = store.add_job(spec, (START + timedelta(hours=1)).isoformat())
    rest, _calls = _every_page(operations, first.next_token, limit=60)
    assert later not in rest and gone not in rest
    assert rest[-1] == added.key and len(rest) == 120 - 60 - 1 + 1


def test_a_token_this_api_did_not_issue_is_refused() -> None:
    with pytest.raises(BadToken):
        _operations(_fleet(3)).list_jobs(next_token="bm90LWEtdG9rZW4")
