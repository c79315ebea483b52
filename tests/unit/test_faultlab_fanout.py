"""The fault lab's fan-out pieces (issue 14): the poll ledger behind "polled twice in a cycle", the
upstream a worker sees (fault points, a kill at its timeout), the leases behind their fault points and
the in-process order queue. The lab itself runs them against moto (`make test`, `make soak`)."""

from __future__ import annotations

import asyncio
import random
import threading

import pytest

from jobwatch.app.fanout import ShardOrder, read_order
from jobwatch.sources.base import HttpRequest, HttpResponse
from jobwatch_devkit.fakes import InMemoryShardLeases
from jobwatch_devkit.faultlab import Crash, LabConfig, RunFaults, lab_env, make_schedule
from jobwatch_devkit.faultlab.fanout import FaultLeases, OrderQueue, PollLedger, RunUpstream
from jobwatch_devkit.faultlab.schedules import Schedule, make_secret

TICK = 1_800_000_000.0


def _schedule(index: int, source: str | None = None) -> Schedule:
    rng = random.Random(index)
    schedule = make_schedule(
        rng, index, f"fl00-{index:04d}", "http://127.0.0.1:9", 0, LabConfig(), source=source
    )
    schedule.secret = make_secret(rng, schedule.spec.source)
    schedule.life = f"life{index}"
    return schedule


def _request(header: str, value: str) -> HttpRequest:
    return HttpRequest("GET", "http://127.0.0.1:9/status", headers={header: value})


class _Answers:
    """An upstream that answers 200 to everything and counts what it was asked."""

    def __init__(self) -> None:
        self.asked = 0

    async def fetch(self, request: HttpRequest) -> HttpResponse:
        self.asked += 1
        return HttpResponse(200, b"{}")


def test_the_ledger_counts_polls_per_story_and_tick_from_the_key_each_request_carries() -> None:
    ledger = PollLedger()
    bearer, pinecone, milvus = _schedule(1), _schedule(2), _schedule(3, source="milvus-import")
    for schedule in (bearer, pinecone, milvus):
        ledger.register(schedule)
    assert ":" in milvus.secret  # Milvus keys are user:password, sent as a Bearer token

    ledger.record(_request("Authorization", f"Bearer {bearer.secret}"), TICK)
    ledger.record(_request("Api-Key", pinecone.secret), TICK)
    ledger.record(_request("Authorization", f"Bearer {milvus.secret}"), TICK)
    ledger.record(_request("Authorization", f"Bearer {milvus.secret}"), TICK + 120)  # the next tick
    ledger.record(_request("Authorization", f"Bearer {bearer.secret}"), None)  # a manual run
    assert ledger.twice() == []

    ledger.record(_request("Api-Key", pinecone.secret), TICK)
    ledger.record(_request("Authorization", "Bearer not-a-lab-key"), TICK)

    assert ledger.twice() == [(pinecone.story, TICK, 2)]
    assert ledger.unknown == 1
    assert ledger.ticked_polls() == 5


def test_a_worker_upstream_records_under_its_tick_and_dies_at_its_crash_point() -> None:
    ledger = PollLedger()
    schedule = _schedule(4)
    ledger.register(schedule)
    inner = _Answers()
    faults = RunFaults(tag="t", crash_at=3)  # fetch:before, fetch:after, then the next fetch:before
    upstream = RunUpstream(inner, ledger, TICK, faults)
    request = _request("Authorization", f"Bearer {schedule.secret}")

    asyncio.run(upstream.fetch(request))
    with pytest.raises(Crash):
        asyncio.run(upstream.fetch(request))
    with pytest.raises(Crash):  # the process is gone: everything after fails too
        asyncio.run(upstream.fetch(request))

    assert (inner.asked, faults.crashed_at) == (1, "fetch:before")
    assert ledger.polls[(schedule.story, TICK)] == 1  # a request that never went out is no poll


def test_a_worker_killed_at_its_timeout_dies_with_its_answer_in_flight() -> None:
    ledger = PollLedger()
    schedule = _schedule(5)
    ledger.register(schedule)
    inner = _Answers()
    faults = RunFaults(tag="t")
    upstream = RunUpstream(inner, ledger, TICK, faults, kill_after=2)
    request = _request("Authorization", f"Bearer {schedule.secret}")

    asyncio.run(upstream.fetch(request))
    with pytest.raises(Crash):
        asyncio.run(upstream.fetch(request))

    assert inner.asked == 2  # upstream answered; the answer was never recorded
    assert faults.dead and faults.crashed_at == "kill:poll-in-flight"
    assert faults.injected["kill:poll-in-flight"] == 1
    with pytest.raises(Crash):
        faults.point("save_state:before", "k")


def test_a_run_without_faults_only_notes_its_polls() -> None:
    ledger = PollLedger()
    inner = _Answers()
    asyncio.run(RunUpstream(inner, ledger, None).fetch(_request("Authorization", "Bearer x")))
    assert inner.asked == 1 and ledger.unknown == 1 and ledger.twice() == []


@pytest.mark.parametrize(
    ("crash_at", "where", "taken"), [(1, "lease:before", False), (2, "lease:after", True)]
)
def test_a_run_may_die_on_either_side_of_taking_a_lease(crash_at: int, where: str, taken: bool) -> None:
    leases = InMemoryShardLeases()
    faults = RunFaults(tag="t", crash_at=crash_at)
    with pytest.raises(Crash):
        FaultLeases(leases, faults).take(2, TICK, "dying")
    assert faults.crashed_at == where
    assert (2 in leases.ticks) is taken
    # the order delivered again: it polls only if the dead run had not taken the lease
    assert FaultLeases(leases, RunFaults(tag="again")).take(2, TICK, "again") is not taken
    # a late order of an older tick never gets the shard back
    assert FaultLeases(leases, RunFaults(tag="late")).take(2, TICK - 120, "late") is False


def test_the_order_queue_hands_the_workers_what_every_coordinator_sent() -> None:
    queue = OrderQueue()
    bodies = [ShardOrder(tick=TICK, shard=shard, shards=2).model_dump_json() for shard in range(2)]
    threads = [threading.Thread(target=queue.send, args=(bodies,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    got = queue.wait_for(2, lambda: False, timeout_s=10)
    for thread in threads:
        thread.join()
    assert sorted((o.shard, o.tick) for o in map(read_order, got)) == [
        (0, TICK),
        (0, TICK),
        (1, TICK),
        (1, TICK),
    ]
    # coordinators that ended without sending do not hold the workers
    assert OrderQueue().wait_for(1, lambda: True, timeout_s=10) == []


def test_the_deployment_under_test_is_sharded_and_ticks_with_the_labs_clock() -> None:
    config = LabConfig(shards=4, endpoint_spread=2, cycle_s=120.0)
    env = lab_env(config)
    assert env["JOBWATCH_POLL_SHARDS"] == "4"
    assert env["JOBWATCH_ENDPOINT_SPREAD"] == "2"
    assert float(env["JOBWATCH_POLL_PERIOD_S"]) == config.cycle_s
