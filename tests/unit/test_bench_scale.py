"""`make bench-scale`'s pure helpers (benchmarks/scale_helpers.py): the bound, the poll counting, the
endpoint plan that balances the shards, the runs that seeding polls for, and the seeded job state."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from jobwatch.domain.model import JobSpec, Phase, Snapshot
from jobwatch.domain.shards import ShardLayout
from jobwatch.domain.transitions import Outcome, Policy, decide


def _load() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "scale_helpers.py"
    spec = importlib.util.spec_from_file_location("bench_scale_helpers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


h = _load()


def test_bound_is_jobs_times_latency_over_all_polls_in_flight() -> None:
    assert h.bound_s(20_000, 50, 4, 16) == pytest.approx(15.625)
    assert h.bound_s(2_000, 50, 1, 64) == pytest.approx(1.5625)


def test_polls_between_counts_only_requests_inside_the_window() -> None:
    before = {"a": 3, "b": 1, "c": 5}
    after = {"a": 4, "b": 3, "c": 5, "d": 1}
    polls = h.polls_between(before, after)
    assert polls == {"a": 1, "b": 2, "d": 1}
    assert h.polled_twice(polls) == 1
    assert h.missed(["a", "b", "c", "d", "e"], polls) == 2  # c (no new request) and e (never seen)


def test_targets_need_the_ratio_and_exact_polling() -> None:
    assert h.targets_met(20.0, 15.625, 0, 0)
    assert not h.targets_met(20.4, 15.625, 0, 0)  # 1.3 x 15.625 = 20.31
    assert not h.targets_met(10.0, 15.625, 1, 0)
    assert not h.targets_met(10.0, 15.625, 0, 1)


@pytest.mark.parametrize(("shards", "spread"), [(8, 4), (6, 4), (3, 4), (1, 4), (12, 8), (5, 2), (16, 4)])
def test_endpoint_plan_spreads_every_job_evenly_over_the_shards(shards: int, spread: int) -> None:
    plan = h.endpoint_plan(20_000, shards, spread, (0.6, 0.25, 0.15), 12)
    assert sum(endpoint.jobs for endpoint in plan) == 20_000
    assert all(0 <= endpoint.first_shard < shards for endpoint in plan)
    loads = h.expected_shard_jobs(plan, shards, spread)
    assert max(loads) - min(loads) <= len(plan)  # only rounding of the endpoints' shares


def test_default_plan_has_one_big_pair_of_endpoints() -> None:
    plan = h.endpoint_plan(20_000, 8, 4, (0.6, 0.25, 0.15), 12)
    assert [endpoint.jobs for endpoint in plan] == [6000, 6000, 2500, 2500, 1500, 1500]
    assert [endpoint.first_shard for endpoint in plan] == [0, 4, 1, 5, 2, 6]


def test_first_shard_is_where_the_layout_puts_the_endpoints_jobs() -> None:
    layout = ShardLayout(8, 4)
    url = "http://127.0.0.1:40123"
    first = h.first_shard(layout, url)
    shards = {layout.shard_of(url, f"key-{n}") for n in range(200)}
    assert shards == {(first + step) % 8 for step in range(4)}


def test_constant_runs_finds_every_change_with_few_questions() -> None:
    values = [10] * 700 + [11] * 2 + [12] * 298
    asked: list[int] = []

    def value_at(position: int) -> int:
        asked.append(position)
        return values[position]

    assert h.constant_runs(len(values), value_at) == [(0, 699, 10), (700, 701, 11), (702, 999, 12)]
    assert len(set(asked)) < 60
    assert h.constant_runs(0, value_at) == []
    assert h.constant_runs(1, lambda _: "x") == [(0, 0, "x")]


def test_a_seeded_job_is_quiet_on_its_next_poll() -> None:
    spec = JobSpec(source="milvus-import", endpoint="http://127.0.0.1:9000", job_id="imp-0-00001")
    seen = Snapshot(phase=Phase.RUNNING, status="Importing", progress=50.0, details={"importedRows": 5})
    now = "2026-12-03T19:00:00.000Z"
    job = h.observed_job(spec, seen, now, 1_796_324_400.0, Policy())
    assert job.version == 1 and job.snapshot == seen and job.last_transition_id is not None
    later = decide(job, seen, "2026-12-03T19:02:00.000Z", Policy())
    assert later.outcome is Outcome.UNCHANGED and later.reason == ""
