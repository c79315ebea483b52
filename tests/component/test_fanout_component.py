"""A tick over shards on fakes (D44): inline for small fleets, ordered out to workers otherwise; leases
keep every shard to one run per tick, whatever is duplicated, redelivered, late, crashed or cut short."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter

import pytest

from jobwatch.app.fanout import BadOrder, ShardOrder, read_order, run_order, run_tick
from jobwatch.app.poll_cycle import CycleReport, PollerDeps
from jobwatch.domain.model import JobSpec
from jobwatch.domain.shards import ShardLayout
from jobwatch_devkit.component import World, export_status
from jobwatch_devkit.fakes import InMemoryJobStore, InMemoryShardLeases, ListedOrders, json_answer

SHARDS, SPREAD = 4, 2
PERIOD = 60.0
LAYOUT = ShardLayout(SHARDS, SPREAD)
ENV = {
    "JOBWATCH_POLL_SHARDS": str(SHARDS),
    "JOBWATCH_ENDPOINT_SPREAD": str(SPREAD),
    "JOBWATCH_POLL_PERIOD_S": str(PERIOD),
    "JOBWATCH_ADAPTIVE_POLLING": "false",
}


def _spec(index: int) -> JobSpec:
    return JobSpec(
        source="weaviate-export",
        endpoint=f"https://w{index % 5}.example.com",
        job_id=f"job-{index:03d}",
        backend="s3",
    )


class Fleet:
    """A world of 40 running jobs over 5 endpoints, with leases and an order list."""

    def __init__(self, jobs: int = 40) -> None:
        self.world = World(store=InMemoryJobStore(layout=LAYOUT))
        self.leases = InMemoryShardLeases()
        self.orders = ListedOrders()
        self.specs = [_spec(index) for index in range(jobs)]
        for spec in self.specs:
            self.world.track(spec)
            self.world.upstream.script(spec.job_id, [json_answer(export_status(spec.job_id, "STARTED"))])
        self.tick = self.world.clock.now()

    def deps(self, *, fan_out: bool, **env: str) -> PollerDeps:
        deps = self.world.poller(**ENV, **env)
        return dataclasses.replace(deps, leases=self.leases, orders=self.orders if fan_out else None)

    def coordinate(self, *, fan_out: bool, holder: str = "coordinator") -> CycleReport:
        deps = self.deps(fan_out=fan_out)
        return asyncio.run(run_tick(deps, lambda: 900.0, self.tick, self.tick + PERIOD, holder))

    def work(self, body: str, holder: str = "worker", remaining: float = 900.0, **env: str) -> CycleReport:
        deps = self.deps(fan_out=False, **env)
        return asyncio.run(run_order(deps, read_order(body), lambda: remaining, holder))

    def polls(self) -> Counter[str]:
        """Upstream requests per job id so far."""
        return Counter(
            next(s.job_id for s in self.specs if s.job_id in r.url) for r in self.world.upstream.requests
        )

    def next_tick(self) -> None:
        self.world.clock.advance(PERIOD)
        self.tick += PERIOD


def test_the_layout_spreads_jobs_and_keeps_each_endpoint_on_its_sub_shards() -> None:
    fleet = Fleet()
    shards_of_endpoint: dict[str, set[int]] = {}
    for spec in fleet.specs:
        shards_of_endpoint.setdefault(spec.endpoint, set()).add(LAYOUT.shard_of(spec.endpoint, spec.key))

    assert all(len(shards) <= SPREAD for shards in shards_of_endpoint.values())
    assert len(set().union(*shards_of_endpoint.values())) == SHARDS
    pages = [job.key for page in fleet.world.store.pollable_pages([1]) for job in page]
    assert pages and all(LAYOUT.shard_of(fleet.world.store.get_job(k).spec.endpoint, k) == 1 for k in pages)  # type: ignore[union-attr]


def test_a_small_fleet_is_polled_inline_once_per_tick_with_one_lease_per_shard() -> None:
    fleet = Fleet()

    report = fleet.coordinate(fan_out=False)

    assert (report.polled, report.transitions, report.shards_polled, report.orders_sent) == (
        40,
        40,
        SHARDS,
        0,
    )
    assert set(fleet.polls().values()) == {1} and len(fleet.polls()) == 40
    assert fleet.leases.writes == SHARDS and fleet.orders.bodies == []


def test_a_duplicated_schedule_polls_nothing_the_first_run_of_the_tick_holds() -> None:
    fleet = Fleet()
    fleet.coordinate(fan_out=False, holder="first")

    second = fleet.coordinate(fan_out=False, holder="second")

    assert (second.polled, second.shards_polled, second.shards_skipped) == (0, 0, SHARDS)
    assert set(fleet.polls().values()) == {1}
    assert len(fleet.world.publisher.published) == 40


def test_fan_out_orders_every_shard_and_workers_poll_each_job_once() -> None:
    fleet = Fleet()

    coordinator = fleet.coordinate(fan_out=True)
    orders = fleet.orders.take_all()
    reports = [fleet.work(body, holder=f"worker-{n}") for n, body in enumerate(orders)]

    assert (coordinator.polled, coordinator.orders_sent) == (0, SHARDS)
    assert sorted(read_order(body).shard for body in orders) == list(range(SHARDS))
    assert {read_order(body).tick for body in orders} == {fleet.tick}
    assert sum(r.polled for r in reports) == 40 and all(r.polled for r in reports)
    assert set(fleet.polls().values()) == {1} and len(fleet.polls()) == 40
    assert sorted(e for _, e in fleet.world.publisher.events()) == ["STARTED"] * 40


def test_redelivered_and_overlapping_orders_do_not_poll_a_shard_twice_in_a_tick() -> None:
    fleet = Fleet()
    fleet.coordinate(fan_out=True, holder="coordinator-1")
    fleet.coordinate(fan_out=True, holder="coordinator-2")  # the schedule fired twice for one tick
    orders = fleet.orders.take_all()
    assert len(orders) == 2 * SHARDS

    reports = [fleet.work(body) for body in orders + orders[:2]]  # and SQS delivered two of them again

    assert sum(r.shards_polled for r in reports) == SHARDS
    assert sum(r.shards_skipped for r in reports) == SHARDS + 2
    assert set(fleet.polls().values()) == {1} and len(fleet.polls()) == 40


def test_an_order_of_an_older_tick_is_skipped_once_a_newer_tick_took_the_shard() -> None:
    fleet = Fleet()
    fleet.coordinate(fan_out=True)
    late = fleet.orders.take_all()
    fleet.next_tick()
    fleet.coordinate(fan_out=True)
    for body in fleet.orders.take_all():
        fleet.work(body)

    fleet.world.clock.at = fleet.tick - PERIOD + 1  # as if the older order arrived in its own cycle
    reports = [fleet.work(body) for body in late]

    assert [r.polled for r in reports] == [0] * SHARDS and all(r.shards_skipped == 1 for r in reports)
    assert set(fleet.polls().values()) == {1}


def test_an_order_arriving_after_its_cycle_ended_is_left_to_the_next_tick() -> None:
    fleet = Fleet()
    fleet.coordinate(fan_out=True)
    orders = fleet.orders.take_all()
    fleet.world.clock.advance(PERIOD - 15)  # the next tick is closer than the margin (D39)

    reports = [fleet.work(body) for body in orders]

    assert sum(r.polled for r in reports) == 0 and sum(r.shards_skipped for r in reports) == SHARDS
    assert fleet.leases.writes == 0, "a stale order takes no lease: the next tick's order must get it"


class WorkerDied(BaseException):
    """What a Lambda timeout or an out-of-memory kill looks like from inside: nothing more runs."""


def test_a_worker_that_dies_mid_shard_loses_nothing_and_the_next_tick_polls_the_rest() -> None:
    fleet = Fleet()
    fleet.coordinate(fan_out=True)
    orders = fleet.orders.take_all()
    upstream = fleet.world.upstream
    fetch, seen = upstream.fetch, []

    async def dying_fetch(request):  # type: ignore[no-untyped-def]
        seen.append(request)
        if len(seen) == 4:
            raise WorkerDied
        return await fetch(request)

    upstream.fetch = dying_fetch  # type: ignore[method-assign]
    with pytest.raises(WorkerDied):  # one poll at a time: nothing else is half done when it dies
        fleet.work(orders[0], holder="doomed", JOBWATCH_POLL_CONCURRENCY="1")
    upstream.fetch = fetch  # type: ignore[method-assign]
    assert fleet.work(orders[0], holder="redelivery").shards_skipped == 1  # SQS delivers it again
    for body in orders[1:]:
        fleet.work(body)
    first_tick = fleet.polls()

    fleet.next_tick()
    fleet.coordinate(fan_out=True)  # the coordinator publishes what the dead worker wrote (outbox)
    for body in fleet.orders.take_all():
        fleet.work(body)

    assert len(first_tick) < 40, "the dead worker left jobs unpolled"
    assert len(fleet.polls()) == 40, "the next tick polled them"
    # One transition per job, each published: a transition the dead worker published but could not
    # mark is published again under the same id, which the notifier's delivery claims deliver once (D3, D7).
    published = {(t.job_key, t.transition_id, t.event) for t in fleet.world.publisher.published}
    assert len(published) == 40 and {event for _, _, event in published} == {"STARTED"}
    assert len({job_key for job_key, _, _ in published}) == 40
    assert fleet.world.store.pending_transitions() == []


def test_a_worker_running_out_of_time_defers_the_rest_to_the_next_tick() -> None:
    fleet = Fleet()
    fleet.coordinate(fan_out=True)
    orders = fleet.orders.take_all()

    short = fleet.work(orders[0], remaining=10.0)  # less than the deadline margin: nothing starts

    assert (short.polled, short.deferred) == (0, short.jobs) and short.jobs > 0
    fleet.next_tick()
    fleet.coordinate(fan_out=True)
    for body in fleet.orders.take_all():
        fleet.work(body)
    assert len(fleet.polls()) == 40


def test_the_coordinator_survives_a_queue_that_refuses_orders() -> None:
    fleet = Fleet()
    fleet.orders.fail = True

    report = fleet.coordinate(fan_out=True)

    assert (report.orders_sent, report.polled) == (0, 0)
    assert fleet.world.store.writes == 40  # the tracked jobs only: nothing changed


def test_each_worker_holds_its_share_of_an_endpoints_limits() -> None:
    from jobwatch.app.gates import EndpointGates
    from jobwatch.settings import PollerSettings

    settings = PollerSettings.from_env({**ENV, "JOBWATCH_TABLE": "t", "JOBWATCH_TOPIC_ARN": "arn:t"})
    alone, worker = EndpointGates(settings), EndpointGates(settings, LAYOUT.sub_shards)

    zilliz = "https://in01-abc.api.gcp-us-west1.zillizcloud.com"
    assert (
        alone.for_job(zilliz, "zilliz-import-v2").rps,
        worker.for_job(zilliz, "zilliz-import-v2").rps,
    ) == (20, 10)
    assert (
        alone.for_job(zilliz, "zilliz-import-v2").concurrency,
        worker.for_job(zilliz, "x").concurrency,
    ) == (16, 8)


@pytest.mark.parametrize(
    "body",
    [
        "",
        "{}",
        "not json",
        '{"tick": 1, "shard": 4, "shards": 4}',
        '{"tick": -1, "shard": 0, "shards": 1}',
        '{"tick": 1, "shard": 0, "shards": 1, "extra": 1}',
        '{"tick": "NaN", "shard": 0, "shards": 1}',
    ],
)
def test_a_message_that_is_not_an_order_is_refused_with_a_short_reason(body: str) -> None:
    with pytest.raises(BadOrder, match="not a shard order"):
        read_order(body)


def test_an_order_reads_back_what_the_coordinator_wrote() -> None:
    order = ShardOrder(tick=1_767_225_600.0, shard=3, shards=4)
    assert read_order(order.model_dump_json()) == order
