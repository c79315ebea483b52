"""The poll cycle: read active jobs, poll them concurrently, record and publish real transitions.

Guarantees kept here (and tested): a poll error never changes a job or sends anything; an
unchanged poll writes nothing; a transition is written conditionally on the version read, so of
two overlapping runs only one records, and only that one publishes; a crash after the write loses
nothing, because the transition sits in the outbox until a later cycle publishes it (`app.outbox`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass, field
from typing import Any

from jobwatch.app.gates import RATE_LIMIT_PAUSE_S, EndpointGate, EndpointGates
from jobwatch.app.outbox import Outbox
from jobwatch.app.polling import api_key_for, poll_spec
from jobwatch.domain.cadence import cycle_rotation, held_by_upstream, is_due, rotated, tick_margin_s
from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.domain.model import TrackedJob
from jobwatch.domain.transitions import Decision, Outcome, Policy, decide, decide_error
from jobwatch.observability import Metric, MetricUnit, job_fields, logger, metrics
from jobwatch.ports import (
    Clock,
    ConflictError,
    JobStore,
    Publisher,
    Secrets,
    ShardLeases,
    ShardOrders,
    Upstream,
    WatchStore,
)
from jobwatch.settings import PollerSettings

UpstreamFactory = Callable[[], AbstractAsyncContextManager[Upstream]]
"""Opens the upstream side for one cycle (its connections close when the cycle ends)."""


@dataclass
class PollerDeps:
    settings: PollerSettings
    store: JobStore
    publisher: Publisher
    secrets: Secrets
    upstream: UpstreamFactory
    clock: Clock
    watches: WatchStore | None = None
    """Auto-discovery: when set, each cycle first lists every watch and tracks new jobs."""
    leases: ShardLeases | None = None
    """Scheduled runs take each shard's lease for their tick before polling it (D44); None: no lease
    (manual runs, tests of the cycle alone)."""
    orders: ShardOrders | None = None
    """Fan-out (D44): the scheduled run sends one order per shard to the poll workers instead of
    polling; None: it polls every shard itself."""


@dataclass(frozen=True)
class CycleScope:
    """What one run covers: the shards it polls, the share of each endpoint's limits it holds, and
    whether it also does the once-per-tick housekeeping (discovery, the outbox)."""

    shards: Sequence[int] | None = None
    """None: every shard of the layout."""
    endpoint_share: int = 1
    """Each endpoint's concurrency and rate are divided by this (a worker holding one sub-shard)."""
    housekeeping: bool = True


@dataclass
class CycleReport:
    jobs: int = 0
    polled: int = 0
    unchanged: int = 0
    updated: int = 0
    transitions: int = 0
    published: int = 0
    republished: int = 0
    publish_failures: int = 0
    dead_lettered: int = 0
    crashed: int = 0
    poll_errors: int = 0
    ignored: int = 0
    conflicts: int = 0
    deferred: int = 0
    skipped: int = 0
    """Not due this period (adaptive polling)."""
    throttled: int = 0
    """Not polled because upstream asked to wait (429 Retry-After): the job's stored hold, or its
    endpoint resting for longer than `upstream_retry_wait_s` within this cycle."""
    health_writes: int = 0
    """Poll-error counters recorded (phase, snapshot and version untouched)."""
    discovered: int = 0
    """New jobs tracked through watches this cycle."""
    shards_polled: int = 0
    """Shards this run held the lease of (or all of them, for a run without a tick) and polled."""
    shards_skipped: int = 0
    """Shards left alone: another run held this tick's lease, or the order came after its tick."""
    orders_sent: int = 0
    """Fan-out: shard orders queued for the poll workers."""
    duration_s: float = 0.0
    events: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def counts(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("events", "errors")}

    def note_error(self, job: TrackedJob, error: str) -> None:
        self.errors.append({"jobKey": job.key, "jobId": job.spec.job_id, "error": error})


def policy_from(settings: PollerSettings) -> Policy:
    return Policy(
        unreachable_after=settings.unreachable_after,
        lost_after=settings.lost_after,
        stall_after_s=settings.stall_after_s,
        max_duration_s=settings.max_duration_s,
        poll_period_s=settings.poll_period_s,
        retry_after_max_s=settings.upstream_retry_after_max_s,
        progress_write_interval_s=settings.progress_write_interval_s,
    )


class _Cycle:
    """State of one run; split out so the per-job coroutine stays small and readable."""

    def __init__(
        self,
        deps: PollerDeps,
        remaining_s: Callable[[], float],
        upstream: Upstream,
        next_tick_s: float | None = None,
        scope: CycleScope = CycleScope(),
    ) -> None:
        self.deps = deps
        self.scope = scope
        self.settings = deps.settings
        self.remaining_s = remaining_s
        self.next_tick_s = next_tick_s
        """When the schedule fires again (epoch s): no new work starts past `tick_margin_s` before it,
        so cycles never overlap (None: no schedule, only the Lambda deadline)."""
        self.tick_margin_s = tick_margin_s(self.settings.upstream_deadline_s, self.settings.poll_period_s)
        """A poll started this long before the tick ends before it (the deadline bounds every answer)."""
        self.upstream = upstream
        self.report = CycleReport()
        self.executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="jobwatch-io")
        self.slots = asyncio.Semaphore(self.settings.poll_concurrency)
        self.gates = EndpointGates(self.settings, scope.endpoint_share)
        self.policy = policy_from(self.settings)
        self.outbox = Outbox(deps.store, deps.publisher, deps.clock, self.report, self.executor)

    def budget_s(self) -> float:
        """Seconds during which new work may still start: before the Lambda deadline's margin and
        before the next scheduled tick's."""
        budget = self.remaining_s() - self.settings.deadline_margin_s
        if self.next_tick_s is not None:
            budget = min(budget, self.next_tick_s - self.tick_margin_s - self.deps.clock.now())
        return budget

    def time_left(self) -> bool:
        return self.budget_s() >= 0

    async def in_thread(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn)

    async def poll_one(self, job: TrackedJob) -> None:
        """One job; anything unexpected is logged against the job and never aborts the cycle."""
        try:
            await self._poll_one(job)
        except Exception as exc:
            self.report.crashed += 1
            self.report.note_error(job, repr(exc)[:300])
            logger.exception("unexpected error for this job; cycle goes on", extra=job_fields(job.spec))

    async def _poll_one(self, job: TrackedJob) -> None:
        gate = self.gates.for_job(job.spec.endpoint, job.spec.source)
        async with gate.slots:
            if not await self.endpoint_ready(gate):
                self.report.throttled += 1
                logger.info(
                    "endpoint rate-limited us; poll left for a later cycle",
                    extra=job_fields(job.spec, restingForS=round(gate.resting_for(), 3)),
                )
                return
            async with self.slots:
                if not self.time_left():
                    self.report.deferred += 1
                    return
                await gate.rate.wait()
                self.report.polled += 1
                try:
                    seen = await poll_spec(self.upstream, job.spec, api_key_for(self.deps.secrets, job.spec))
                except PollError as exc:
                    await self.poll_failed(job, gate, exc)
                    return
        decision = decide(job, seen, self.deps.clock.now_iso(), self.policy)
        if decision.outcome is Outcome.IGNORED:
            self.report.ignored += 1
            self.report.note_error(job, decision.reason)
            logger.warning(
                "poll result ignored; job state unchanged",
                extra=job_fields(job.spec, reason=decision.reason, status=seen.status),
            )
            return
        await self.apply(job, decision)

    async def endpoint_ready(self, gate: EndpointGate) -> bool:
        """Wait out a short rest of a rate-limited endpoint; False when the rest is too long."""
        while (wait := gate.resting_for()) > 0:
            too_long = wait > self.settings.upstream_retry_wait_s
            if too_long or wait > self.budget_s():
                return False
            await asyncio.sleep(wait)
        return True

    async def poll_failed(self, job: TrackedJob, gate: EndpointGate, exc: PollError) -> None:
        self.report.poll_errors += 1
        self.report.note_error(job, str(exc))
        fields = job_fields(job.spec, error=str(exc), errorKind=exc.kind.value)
        if exc.retry_after_s is not None:
            fields["retryAfterS"] = exc.retry_after_s
        logger.warning("poll failed; job phase unchanged", extra=fields)
        if exc.kind is PollErrorKind.RATE_LIMITED:
            asked = RATE_LIMIT_PAUSE_S if exc.retry_after_s is None else exc.retry_after_s
            gate.rest(min(asked, self.settings.upstream_retry_after_max_s))
        decision = decide_error(
            job, exc.kind, str(exc), self.deps.clock.now_iso(), self.policy, retry_after_s=exc.retry_after_s
        )
        await self.apply(job, decision)

    async def apply(self, job: TrackedJob, decision: Decision) -> None:
        """Write what the decision says (one conditional write), then publish what it owes."""
        if decision.outcome is not Outcome.WRITE or decision.health is None:
            if decision.outcome is Outcome.UNCHANGED and decision.reason == "":
                self.report.unchanged += 1
            return
        try:
            await self.write(job, decision)
        except ConflictError:
            self.report.conflicts += 1
            logger.info("another run advanced this job first; not notifying", extra=job_fields(job.spec))
            return
        if not decision.transitions:
            if decision.snapshot != job.snapshot:
                self.report.updated += 1
            return
        self.note_transitions(job, decision)
        await self.outbox.publish_fresh(job.key, job.owes_transitions, decision.transitions)

    async def write(self, job: TrackedJob, decision: Decision) -> None:
        store, health = self.deps.store, decision.health
        assert health is not None
        if not decision.transitions and decision.snapshot == job.snapshot:
            # poll-error bookkeeping: version and snapshot stay as they are
            await self.in_thread(lambda: store.save_health(job, health))
            self.report.health_writes += 1
            return
        now_iso, now_s = self.deps.clock.now_iso(), self.deps.clock.now()
        await self.in_thread(
            lambda: store.save_state(
                job,
                decision.snapshot,
                health,
                decision.snapshot_changed,
                decision.transitions,
                now_iso,
                now_s,
            )
        )

    def note_transitions(self, job: TrackedJob, decision: Decision) -> None:
        for transition in decision.transitions:
            self.report.transitions += 1
            logger.info(
                "transition recorded",
                extra=job_fields(
                    job.spec,
                    transitionId=transition.transition_id,
                    event=transition.event,
                    previousPhase=transition.previous.phase.value if transition.previous else None,
                    phase=transition.current.phase.value,
                    note=transition.note,
                ),
            )
            self.report.events.append(
                {"transitionId": transition.transition_id, "jobKey": job.key, "event": transition.event}
            )

    async def discover(self) -> None:
        """Track the new jobs of every watch before polling, so they are polled in this same cycle."""
        if self.deps.watches is None:
            return
        from jobwatch.app.discovery import run_discovery  # only deployments with watches pay for it

        found = await run_discovery(
            self.deps.store,
            self.deps.watches,
            self.upstream,
            self.deps.secrets,
            self.settings,
            self.deps.clock,
        )
        self.report.discovered = found.tracked
        self.report.errors.extend(found.errors)

    def due(self, job: TrackedJob) -> bool:
        if not self.settings.adaptive_polling:
            return True
        return is_due(job, self.deps.clock.now(), self.settings.poll_period_s)

    async def drain_outbox(self) -> None:
        try:
            await self.outbox.drain(self.time_left)
        except Exception:  # the outbox is retried next cycle; polling must go on now
            logger.exception("outbox drain failed; pending transitions stay for the next cycle")
            self.report.crashed += 1

    async def poll_all(self) -> None:
        """Every due job, in this cycle's rotated order: when time runs out before the fleet does, the
        jobs left are others next cycle (`cycle_rotation`)."""
        shards = self.scope.shards
        if shards is not None and not shards:
            return
        pages = self.deps.store.pollable_pages(shards)
        jobs: list[TrackedJob] = []
        while (page := await self.in_thread(lambda: next(pages, None))) is not None:
            jobs.extend(page)
        self.report.jobs += len(jobs)
        tick = self.next_tick_s if self.next_tick_s is not None else self.deps.clock.now()
        rotation = cycle_rotation(tick, self.settings.poll_period_s)
        tasks: list[asyncio.Task[None]] = []
        for job in rotated(jobs, lambda j: j.key, rotation):
            if held_by_upstream(job, self.deps.clock.now()):
                self.report.throttled += 1
            elif self.due(job):
                tasks.append(asyncio.create_task(self.poll_one(job)))
            else:
                self.report.skipped += 1
        await asyncio.gather(*tasks)

    async def run(self) -> CycleReport:
        started = time.perf_counter()
        try:
            if self.scope.housekeeping:
                await self.discover()
                await self.drain_outbox()
            await self.poll_all()
        finally:
            self.executor.shutdown(wait=True)
        self.report.duration_s = round(time.perf_counter() - started, 3)
        return self.report


_CYCLE_METRICS: tuple[tuple[Metric, Callable[[CycleReport], int]], ...] = (
    (Metric.JOBS_POLLED, lambda r: r.polled),
    (Metric.POLL_ERRORS, lambda r: r.poll_errors),
    (Metric.TRANSITIONS, lambda r: r.transitions),
    (Metric.PUBLISHED, lambda r: r.published + r.republished),
    (Metric.PUBLISH_FAILURES, lambda r: r.publish_failures),
    (Metric.OUTBOX_DEAD_LETTERED, lambda r: r.dead_lettered),
    (Metric.JOB_CRASHES, lambda r: r.crashed),
    (Metric.WRITE_CONFLICTS, lambda r: r.conflicts),
    (Metric.DEFERRED, lambda r: r.deferred),
    (Metric.NOT_DUE, lambda r: r.skipped),
    (Metric.THROTTLED_POLLS, lambda r: r.throttled),
    (Metric.IGNORED_RESULTS, lambda r: r.ignored),
)


async def run_cycle(
    deps: PollerDeps,
    remaining_s: Callable[[], float] = lambda: math.inf,
    next_tick_s: float | None = None,
    scope: CycleScope = CycleScope(),
) -> CycleReport:
    """One cycle over `scope`; with `next_tick_s`, it takes no new work once the next scheduled cycle
    is near (what it leaves is that cycle's: jobs not started are `deferred`, never polled twice at
    once)."""
    async with deps.upstream() as upstream:
        report = await _Cycle(deps, remaining_s, upstream, next_tick_s, scope).run()
    for metric, value in _CYCLE_METRICS:
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=value(report))
    metrics.add_metric(name=Metric.CYCLE_COMPLETED, unit=MetricUnit.Count, value=1)
    logger.info("poll cycle finished", extra={"cycle": report.counts()})
    return report
