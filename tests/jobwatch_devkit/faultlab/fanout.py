"""Fan-out in the fault lab (issue 14, D44): ticks, shard leases, coordinators, poll workers, and the
ledger behind "polled twice in a cycle".

Every lab cycle is one tick of the schedule: the poller's `poll_period_s` is the lab's `cycle_s`, and
the tick is the fake clock's time when the cycle starts (the clock only moves between cycles). A
scheduled run (`run_tick` with the tick) takes each shard's lease on the lab's moto table
(`DynamoShardLeases`, real conditional puts) before polling it; the lab's unleased overlaps are manual
runs (`run_tick` without a tick), which poll every shard and race on the conditional writes instead.

A fan-out cycle (`FanoutCycle`): one coordinator, or two for one tick (a duplicated schedule), each
sending one order per shard to an in-process queue (`OrderQueue`, `ports.ShardOrders`) and then
draining the outbox; as soon as the orders are queued, poll workers run them in parallel threads
(`run_order`, one warm container each), while the coordinators still drain. Then:
    - worker crash: one worker dies at a random fault point of its run (its lease, its page read, a
      poll, a write, a publish: `Crash`), and its order is delivered again in the same tick, as SQS
      would after the batch failed: a worker that took the lease before dying must leave the
      redelivered order nothing to poll.
    - worker timeout: a worker's `remaining` time falls under the margin after a few looks (the cycle
      stops taking work: the rest is `deferred` to the next tick), or the worker is killed after its
      n-th poll while the answer is in flight, as Lambda kills a function at its timeout (its order is
      delivered again and must poll nothing).
    - overlapping coordinators: two coordinators for one tick send every order twice; of each pair
      one polls the shard, the other finds the lease taken.
    - late order: an order of an earlier fan-out tick delivered after this tick's orders ran, either
      plainly late (the worker sees its cycle is over) or late by a hair (its worker's clock still
      says the old cycle is on, so only the lease, taken at a newer tick, stops it).
A shard a worker did not finish is polled by the next tick; ground truth is unchanged because a job
stays on its step until a poll of it is recorded (see the package docstring).

`PollLedger` notes every upstream request the poller makes, by job story (from the API key the request
carries: each story has its own) and by the tick of the run that made it. `polled_twice_in_cycle`
counts (story, tick) pairs of scheduled runs with more than one poll; manual runs (no tick) are
left out, as they are meant to overlap.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobwatch.adapters.http.upstream import HttpUpstream
from jobwatch.app.fanout import ShardOrder, read_order
from jobwatch.domain.cadence import tick_margin_s
from jobwatch.ports import ShardLeases, Upstream
from jobwatch.settings import UpstreamSettings
from jobwatch.sources.base import HttpRequest, HttpResponse

from ..fakes import FakeClock
from .injectors import Container, RunFaults

if TYPE_CHECKING:
    from .rounds import CyclePlan, Round, RunResult
    from .schedules import Schedule

__all__ = [
    "FanoutCycle",
    "FaultLeases",
    "OrderQueue",
    "PollLedger",
    "RunUpstream",
    "run_upstream",
]


class PollLedger:
    """Every upstream poll, by job story and by the tick of the run that made it (None: no tick).
    Thread-safe; API keys are only looked up, never kept in anything reported."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_secret: dict[str, Schedule] = {}
        self.polls: Counter[tuple[str, float | None]] = Counter()
        """(story, tick) -> polls."""
        self.unknown = 0
        """Requests carrying no key of a tracked story (none expected)."""

    def register(self, schedule: Schedule) -> None:
        with self._lock:
            self._by_secret[schedule.secret] = schedule

    def record(self, request: HttpRequest, tick: float | None) -> None:
        with self._lock:
            schedule = self._find(request)
            if schedule is None:
                self.unknown += 1
                return
            self.polls[(schedule.story, tick)] += 1

    def _find(self, request: HttpRequest) -> Schedule | None:
        for value in request.headers.values():
            token = value.rsplit(" ", 1)[-1]
            if (found := self._by_secret.get(token)) is not None:
                return found
        return None

    def twice(self) -> list[tuple[str, float, int]]:
        """(story, tick, polls) of every story polled more than once by the scheduled runs of a tick."""
        with self._lock:
            return sorted(
                (story, tick, n) for (story, tick), n in self.polls.items() if tick is not None and n > 1
            )

    def ticked_polls(self) -> int:
        with self._lock:
            return sum(n for (_, tick), n in self.polls.items() if tick is not None)


class RunUpstream:
    """The upstream one run sees: each request noted in the ledger under the run's tick. For a poll
    worker (`faults`), a fault point on each side of every request (a crash lands between polls, or
    after a request went out and before its answer was recorded), and `kill_after`: the run is killed
    when its n-th answer arrives, as Lambda kills a function at its timeout."""

    def __init__(
        self,
        inner: Upstream,
        ledger: PollLedger,
        tick: float | None,
        faults: RunFaults | None = None,
        kill_after: int | None = None,
    ) -> None:
        self.inner = inner
        self.ledger = ledger
        self.tick = tick
        self.faults = faults
        self.kill_after = kill_after
        self._answers = 0
        self._lock = threading.Lock()

    async def fetch(self, request: HttpRequest) -> HttpResponse:
        faults = self.faults
        if faults is not None:
            faults.point("fetch:before", "")
        self.ledger.record(request, self.tick)
        response = await self.inner.fetch(request)
        if faults is not None:
            with self._lock:
                self._answers += 1
                killed = self._answers == self.kill_after
            if killed:
                faults.kill("poll-in-flight")
            faults.point("fetch:after", "")
        return response


@contextlib.asynccontextmanager
async def run_upstream(
    settings: UpstreamSettings,
    ledger: PollLedger,
    tick: float | None,
    faults: RunFaults | None = None,
    kill_after: int | None = None,
) -> AsyncIterator[Upstream]:
    """`PollerDeps.upstream` of one lab run: the real HTTP upstream behind a `RunUpstream`."""
    async with HttpUpstream(settings) as inner:
        yield RunUpstream(inner, ledger, tick, faults, kill_after)


class FaultLeases:
    """`ports.ShardLeases` with a fault point on each side of the conditional put: a run may die
    before it took a shard's lease, or after it took it and before it polled anything."""

    def __init__(self, leases: ShardLeases, faults: RunFaults) -> None:
        self.leases = leases
        self.faults = faults

    def take(self, shard: int, tick_s: float, holder: str) -> bool:
        return self.faults.around("lease", str(shard), lambda: self.leases.take(shard, tick_s, holder), 0.0)


class OrderQueue:
    """`ports.ShardOrders` in process: what the coordinators queued, handed to the workers."""

    def __init__(self) -> None:
        self._sent = threading.Condition()
        self.bodies: list[str] = []
        self.sends = 0

    def send(self, bodies: Sequence[str]) -> int:
        with self._sent:
            self.bodies.extend(bodies)
            self.sends += 1
            self._sent.notify_all()
        return len(bodies)

    def wait_for(self, sends: int, done: Callable[[], bool], timeout_s: float = 120.0) -> list[str]:
        """The bodies once `sends` coordinators have sent theirs (or `done()`: they all ended)."""
        with self._sent:
            self._sent.wait_for(lambda: self.sends >= sends or done(), timeout=timeout_s)
            return list(self.bodies)


@dataclass
class Work:
    """One delivery of one order to a poll worker."""

    order: ShardOrder
    role: str
    """`worker`, `redelivery` or `late`."""
    faults: RunFaults
    kill_after: int | None = None
    deadline_after: int | None = None
    clock: FakeClock | None = None
    """The worker's own view of time (a late order that still thinks its cycle is on)."""


class FanoutCycle:
    """One fan-out cycle of a round (see the module docstring); `run` returns every run's result."""

    def __init__(self, round_: Round, containers: Sequence[Container]) -> None:
        self.round = round_
        self.containers = list(containers)
        self.previous: list[ShardOrder] = []
        """The orders of the last fan-out tick: late orders are drawn from them."""

    def run(self, plan: CyclePlan, cycle: int, tick: float, worker_hint: int) -> list[RunResult]:
        lab_round = self.round
        queue = OrderQueue()
        coordinators = plan.coordinators
        faults = [lab_round.run_faults(plan, cycle, run, 8) for run in range(coordinators)]
        with ThreadPoolExecutor(
            max_workers=coordinators + len(self.containers), thread_name_prefix="faultlab-fanout"
        ) as pool:
            started = [
                pool.submit(lab_round.invoke, lab_round.containers[run], faults[run], None, plan, tick, queue)
                for run in range(coordinators)
            ]
            bodies = queue.wait_for(coordinators, lambda: all(f.done() for f in started))
            orders = [read_order(body) for body in bodies]
            work = self._first_deliveries(plan, cycle, orders, worker_hint)
            delivered = self._deliver(pool, work, tick)
            results = [f.result(timeout=600) for f in started]
        if coordinators > 1:
            lab_round.result.overlapping_coordinators += 1
            lab_round.result.faults_injected["overlap:coordinators"] += 1
        again = self._redeliveries(plan, cycle, delivered)
        results.extend(result for _, result in delivered)
        results.extend(result for _, result in again)
        late = self._late(plan, cycle, tick)
        results.extend(result for _, result in late)
        self._check(delivered, again, late)
        self.previous = [o for o in orders if o.tick == tick][: lab_round.layout.shards]
        return results

    # -- who gets which order, with which faults ----------------------------------------------------

    def _first_deliveries(
        self, plan: CyclePlan, cycle: int, orders: list[ShardOrder], worker_hint: int
    ) -> list[Work]:
        lab_round, rng = self.round, self.round.plan_rng
        rng.shuffle(orders)
        per_shard = max(1, lab_round.active_jobs() // lab_round.layout.shards)
        work: list[Work] = []
        faulted: set[int] = set()
        for index, order in enumerate(orders):
            first = order.shard not in faulted
            faulted.add(order.shard)
            faults = lab_round.run_faults(plan, cycle, 10 + index, 0)
            item = Work(order, "worker", faults)
            if first and order.shard in plan.worker_crashes:
                faults.crash_at = rng.randint(1, max(4, worker_hint))
            if first and order.shard in plan.worker_kills:
                item.kill_after = rng.randint(1, per_shard)
            if first and order.shard in plan.worker_deadlines:
                item.deadline_after = rng.randint(0, per_shard)
            work.append(item)
        return work

    def _deliver(
        self, pool: ThreadPoolExecutor, work: list[Work], tick: float
    ) -> list[tuple[Work, RunResult]]:
        futures = [(item, pool.submit(self._work, item, tick)) for item in work]
        return [(item, future.result(timeout=600)) for item, future in futures]

    def _work(self, item: Work, tick: float) -> RunResult:
        lab_round = self.round
        container = self.containers[item.order.shard % len(self.containers)]
        return lab_round.work(container, item, tick)

    def _redeliveries(
        self, plan: CyclePlan, cycle: int, delivered: list[tuple[Work, RunResult]]
    ) -> list[tuple[Work, RunResult]]:
        """A worker that died (crashed, killed, or an error escaped) failed its order: SQS delivers it
        again, here in the same tick, to a clean worker."""
        again: list[tuple[Work, RunResult]] = []
        for index, (item, result) in enumerate(delivered):
            if not (result.crashed or result.aborted):
                continue
            faults = self.round.run_faults(plan, cycle, 100 + index, 0)
            faults.crash_at = None
            faults.store_error_p = faults.outbox_error_p = 0.0
            retry = Work(item.order, "redelivery", faults)
            again.append((retry, self._work(retry, item.order.tick)))
            self.round.result.redelivered_orders += 1
        return again

    def _late(self, plan: CyclePlan, cycle: int, tick: float) -> list[tuple[Work, RunResult]]:
        """An order of an earlier tick, delivered after this tick's orders ran."""
        if plan.late_order is None or not self.previous:
            return []
        lab_round = self.round
        order = lab_round.plan_rng.choice(self.previous)
        faults = lab_round.run_faults(plan, cycle, 200, 0)
        faults.crash_at = None
        faults.store_error_p = faults.outbox_error_p = 0.0
        item = Work(order, "late", faults)
        if plan.late_order == "raced":
            settings = lab_round.settings
            margin = tick_margin_s(settings.upstream_deadline_s, settings.poll_period_s)
            item.clock = FakeClock(order.tick + settings.poll_period_s - margin - 0.5)
        lab_round.result.late_orders += 1
        lab_round.result.faults_injected[f"late-order:{plan.late_order}"] += 1
        return [(item, self._work(item, tick))]

    # -- what a lease must have stopped ------------------------------------------------------------

    def _check(
        self,
        delivered: list[tuple[Work, RunResult]],
        again: list[tuple[Work, RunResult]],
        late: list[tuple[Work, RunResult]],
    ) -> None:
        """Each shard polled by one completed run at most; a redelivered order whose first worker
        took the lease, and every late order, polls nothing."""
        result = self.round.result
        polled_by: Counter[int] = Counter()
        for item, run in [*delivered, *again, *late]:
            if run.report is not None and run.report.shards_polled:
                polled_by[item.order.shard] += 1
            if run.report is not None and run.report.shards_skipped:
                result.orders_skipped += 1
        for shard, n in sorted(polled_by.items()):
            if n > 1:
                result.lease_violations += 1
                result.problems.append(
                    f"round {self.round.number}: shard {shard} polled by {n} runs in one tick"
                )
        for item, run in again:
            dead_at = next((r.faults.crashed_at for w, r in delivered if w.order is item.order), None)
            took_lease = dead_at is not None and dead_at != "lease:before"
            if took_lease and (run.report is None or run.report.shards_polled or run.report.polled):
                result.lease_violations += 1
                result.problems.append(
                    f"round {self.round.number}: order for shard {item.order.shard} redelivered after its "
                    f"worker died at {dead_at} polled again"
                )
        for item, run in late:
            if run.report is None or run.report.shards_polled or run.report.polled:
                result.lease_violations += 1
                result.problems.append(
                    f"round {self.round.number}: late order for shard {item.order.shard} "
                    f"({item.order.tick:.3f}) was not refused"
                )


def draw_fanout(rng: random.Random, shards: int, p: float) -> tuple[int, ...]:
    """One shard with chance `p` (a fault that hits one worker), else none."""
    return (rng.randrange(shards),) if rng.random() < p else ()
