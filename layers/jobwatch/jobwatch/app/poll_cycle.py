"""The poll cycle: read active jobs, poll them concurrently, record and publish real transitions.

Guarantees kept here (and tested): a poll error never changes a job or sends anything; an
unchanged poll writes nothing; a transition is written conditionally on the version read, so of
two overlapping runs only one records, and only that one publishes; a crash after the write loses
nothing, because the transition sits in the outbox until a later cycle publishes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from jobwatch.adapters.dynamodb.jobs import ConflictError, JobStore
from jobwatch.adapters.http.client import CONNECTIONS_PER_LANE, fetch, make_http_client
from jobwatch.adapters.secrets import SecretUnavailableError
from jobwatch.domain.cadence import held_by_upstream, is_due
from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.domain.model import JobSpec, Snapshot, TrackedJob, Transition, bounded
from jobwatch.domain.transitions import Decision, Outcome, Policy, decide, decide_error
from jobwatch.observability import MetricUnit, job_fields, logger, metrics
from jobwatch.ports import Publisher, Secrets
from jobwatch.settings import Settings
from jobwatch.sources import UnknownSourceError, get_source

if TYPE_CHECKING:
    from jobwatch.adapters.dynamodb.watches import WatchStore

OUTBOX_GRACE_S = 60.0
"""A transition younger than this may still be in the hands of the run that recorded it."""
OUTBOX_MAX_ATTEMPTS = 8
RATE_LIMIT_PAUSE_S = 1.0
"""How long an endpoint rests within a cycle after a rate-limit answer that names no Retry-After."""


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class PollerDeps:
    settings: Settings
    store: JobStore
    publisher: Publisher
    secrets: Secrets
    now_iso: Callable[[], str] = utc_now_iso
    clock: Callable[[], float] = time.time
    """Epoch seconds for outbox bookkeeping; tests move it forward instead of sleeping."""
    watches: WatchStore | None = None
    """Auto-discovery: when set, each cycle first lists every watch and tracks new jobs."""


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
    duration_s: float = 0.0
    events: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def counts(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("events", "errors")}


async def poll_spec(client: httpx.AsyncClient, spec: JobSpec, api_key: str | None) -> Snapshot:
    """Poll one job once: the whole upstream side of a cycle, also used by `jobwatch check`."""
    try:
        source = get_source(spec.source)
    except UnknownSourceError as exc:
        raise PollError(PollErrorKind.CONFIG, str(exc)) from None
    request = source.build_request(spec, api_key)
    response = await fetch(client, request)
    return bounded(source.parse(response))


class RateLimiter:
    """Spaces requests to one endpoint at least 1/rps apart (a token bucket of size one)."""

    def __init__(self, rps: float | None) -> None:
        self._interval = 0.0 if not rps else 1.0 / rps
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self._interval:
            return
        async with self._lock:
            loop = asyncio.get_running_loop()
            delay = self._next - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next = max(loop.time(), self._next) + self._interval


class EndpointGate:
    """Per-endpoint limits: concurrency, rate, and a few small keep-alive clients (lanes).

    Polls wait here *before* taking a cycle-wide slot, so a slow or saturated endpoint never holds
    slots other endpoints could use. Lanes of a few connections each keep httpcore's pool scan
    (which grows with pool size, encode/httpcore#1035) cheap.
    """

    def __init__(self, stack: contextlib.AsyncExitStack, settings: Settings, rps: float | None) -> None:
        self.slots = asyncio.Semaphore(settings.endpoint_concurrency)
        self.rate = RateLimiter(rps)
        self._resting_until = 0.0
        self._stack = stack
        self._settings = settings
        self._lanes: list[httpx.AsyncClient] = []
        self._next = 0

    def rest(self, seconds: float) -> None:
        """Upstream rate-limited us: send nothing more to this endpoint for `seconds`."""
        until = asyncio.get_running_loop().time() + seconds
        self._resting_until = max(self._resting_until, until)

    def resting_for(self) -> float:
        return max(0.0, self._resting_until - asyncio.get_running_loop().time())

    async def client(self) -> httpx.AsyncClient:
        lanes_wanted = math.ceil(self._settings.endpoint_concurrency / CONNECTIONS_PER_LANE)
        if len(self._lanes) < lanes_wanted:
            per_lane = math.ceil(self._settings.endpoint_concurrency / lanes_wanted)
            lane = await self._stack.enter_async_context(make_http_client(self._settings, per_lane))
            self._lanes.append(lane)
            return lane
        self._next = (self._next + 1) % len(self._lanes)
        return self._lanes[self._next]


def _documented_rps(source_name: str) -> float | None:
    try:
        return get_source(source_name).max_requests_per_second
    except UnknownSourceError:
        return None


def endpoint_of(spec: JobSpec) -> str:
    parts = urlsplit(spec.endpoint)
    return f"{parts.scheme}://{parts.netloc}"


class _Cycle:
    """State of one run; split out so the per-job coroutine stays small and readable."""

    def __init__(
        self, deps: PollerDeps, remaining_s: Callable[[], float], stack: contextlib.AsyncExitStack
    ) -> None:
        self.deps = deps
        self.settings = deps.settings
        self.remaining_s = remaining_s
        self.report = CycleReport()
        self.executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="jobwatch-io")
        self.slots = asyncio.Semaphore(self.settings.poll_concurrency)
        self.stack = stack
        self.gates: dict[str, EndpointGate] = {}
        self.blocked_jobs: set[str] = set()
        self.policy = Policy(
            unreachable_after=self.settings.unreachable_after,
            lost_after=self.settings.lost_after,
            stall_after_s=self.settings.stall_after_s,
            max_duration_s=self.settings.max_duration_s,
            poll_period_s=self.settings.poll_period_s,
            retry_after_max_s=self.settings.upstream_retry_after_max_s,
        )

    async def in_thread(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn)

    def gate_for(self, spec: JobSpec) -> EndpointGate:
        endpoint = endpoint_of(spec)
        gate = self.gates.get(endpoint)
        if gate is None:
            documented = _documented_rps(spec.source)
            configured = self.settings.endpoint_max_rps
            limits = [r for r in (documented, configured) if r]
            gate = self.gates[endpoint] = EndpointGate(
                self.stack, self.settings, min(limits) if limits else None
            )
        return gate

    def api_key_for(self, spec: JobSpec) -> str | None:
        if spec.secret_name is None:
            return None
        try:
            return self.deps.secrets.get(spec.secret_name)
        except SecretUnavailableError as exc:
            raise PollError(PollErrorKind.CONFIG, str(exc)) from None

    async def poll_one(self, job: TrackedJob) -> None:
        """One job; anything unexpected is logged against the job and never aborts the cycle."""
        try:
            await self._poll_one(job)
        except Exception as exc:
            self.report.crashed += 1
            self.report.errors.append({"jobKey": job.key, "jobId": job.spec.job_id, "error": repr(exc)[:300]})
            logger.exception("unexpected error for this job; cycle goes on", extra=job_fields(job.spec))

    async def _poll_one(self, job: TrackedJob) -> None:
        gate = self.gate_for(job.spec)
        async with gate.slots:
            if not await self.endpoint_ready(gate):
                self.report.throttled += 1
                logger.info(
                    "endpoint rate-limited us; poll left for a later cycle",
                    extra=job_fields(job.spec, restingForS=round(gate.resting_for(), 3)),
                )
                return
            async with self.slots:
                if self.remaining_s() < self.settings.deadline_margin_s:
                    self.report.deferred += 1
                    return
                await gate.rate.wait()
                self.report.polled += 1
                client = await gate.client()
                try:
                    seen = await poll_spec(client, job.spec, self.api_key_for(job.spec))
                except PollError as exc:
                    await self.poll_failed(job, gate, exc)
                    return
        now = self.deps.now_iso()
        decision = decide(job, seen, now, self.policy)
        if decision.outcome is Outcome.IGNORED:
            self.report.ignored += 1
            self.report.errors.append({"jobKey": job.key, "jobId": job.spec.job_id, "error": decision.reason})
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
            if too_long or self.remaining_s() - wait < self.settings.deadline_margin_s:
                return False
            await asyncio.sleep(wait)
        return True

    async def poll_failed(self, job: TrackedJob, gate: EndpointGate, exc: PollError) -> None:
        self.report.poll_errors += 1
        self.report.errors.append({"jobKey": job.key, "jobId": job.spec.job_id, "error": str(exc)})
        fields = job_fields(job.spec, error=str(exc), errorKind=exc.kind.value)
        if exc.retry_after_s is not None:
            fields["retryAfterS"] = exc.retry_after_s
        logger.warning("poll failed; job phase unchanged", extra=fields)
        if exc.kind is PollErrorKind.RATE_LIMITED:
            asked = RATE_LIMIT_PAUSE_S if exc.retry_after_s is None else exc.retry_after_s
            gate.rest(min(asked, self.settings.upstream_retry_after_max_s))
        decision = decide_error(
            job, exc.kind, str(exc), self.deps.now_iso(), self.policy, retry_after_s=exc.retry_after_s
        )
        await self.apply(job, decision)

    async def apply(self, job: TrackedJob, decision: Decision) -> None:
        if decision.outcome is not Outcome.WRITE or decision.health is None:
            if decision.outcome is Outcome.UNCHANGED and decision.reason == "":
                self.report.unchanged += 1
            return
        now = self.deps.now_iso()
        now_s = self.deps.clock()
        store = self.deps.store
        health = decision.health
        health_only = not decision.transitions and decision.snapshot == job.snapshot
        try:
            if health_only:  # poll-error bookkeeping: version and snapshot stay as they are
                await self.in_thread(lambda: store.save_health(job, health))
                self.report.health_writes += 1
                return
            await self.in_thread(
                lambda: store.save_state(
                    job,
                    decision.snapshot,
                    health,
                    decision.snapshot_changed,
                    decision.transitions,
                    now,
                    now_s,
                )
            )
        except ConflictError:
            self.report.conflicts += 1
            logger.info("another run advanced this job first; not notifying", extra=job_fields(job.spec))
            return
        if not decision.transitions:
            self.report.updated += 1
            return
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
        if job.key in self.blocked_jobs or job.owes_transitions:
            # An older transition of this job is still owed (maybe by an overlapping run): the outbox
            # drain publishes them all, oldest first.
            self.blocked_jobs.add(job.key)
            return
        for transition in decision.transitions:  # in order: a later one is never published first
            if not await self.publish(transition):
                self.blocked_jobs.add(job.key)
                break

    async def publish(self, transition: Transition, *, republish: bool = False) -> bool:
        store = self.deps.store
        try:
            message_id = await self.in_thread(lambda: self.deps.publisher.publish(transition))
        except Exception as exc:  # any SNS failure leaves the transition in the outbox
            self.report.publish_failures += 1
            logger.error(
                "publish failed; transition stays in the outbox",
                extra={
                    "jobKey": transition.job_key,
                    "transitionId": transition.transition_id,
                    "error": repr(exc),
                },
            )
            await self.in_thread(lambda: store.note_publish_failure(transition))
            return False
        if republish:
            self.report.republished += 1
        else:
            self.report.published += 1
        now_s = self.deps.clock()
        await self.in_thread(lambda: store.mark_published(transition, message_id, now_s))
        return True

    async def drain_outbox(self) -> None:
        """Publish transitions that were recorded but never published (crash, SNS outage).

        Per job, strictly in order: once one of a job's transitions cannot go out yet, its later
        ones wait too (also fresh ones recorded in this cycle), so subscribers never see them swapped.
        """
        store = self.deps.store
        pending = await self.in_thread(store.pending_transitions)
        now = self.deps.clock()
        for item in pending:
            transition = item.transition
            if transition.job_key in self.blocked_jobs:
                continue
            backoff = OUTBOX_GRACE_S * math.pow(2, min(item.attempts, 6))
            if now - item.recorded_at < backoff or self.remaining_s() < self.settings.deadline_margin_s:
                self.blocked_jobs.add(transition.job_key)
                continue
            if item.attempts >= OUTBOX_MAX_ATTEMPTS:
                self.report.dead_lettered += 1
                reason = f"not published after {item.attempts} attempts"
                logger.error(
                    "transition dead-lettered",
                    extra={"jobKey": transition.job_key, "transitionId": transition.transition_id},
                )
                await self.in_thread(functools.partial(store.mark_dead_lettered, transition, reason, now))
                continue
            if not await self.publish(transition, republish=True):
                self.blocked_jobs.add(transition.job_key)

    async def discover(self) -> None:
        """Track the new jobs of every watch before polling, so they are polled in this same cycle."""
        if self.deps.watches is None:
            return
        from jobwatch.app.discovery import run_discovery

        async with make_http_client(self.settings, 4) as client:
            found = await run_discovery(
                self.deps.store,
                self.deps.watches,
                client,
                self.deps.secrets,
                self.settings,
                self.deps.now_iso(),
                self.deps.clock,
            )
        self.report.discovered = found.tracked
        self.report.errors.extend(found.errors)

    def due(self, job: TrackedJob) -> bool:
        if not self.settings.adaptive_polling:
            return True
        return is_due(job, self.deps.clock(), self.settings.poll_period_s)

    async def run(self) -> CycleReport:
        started = time.perf_counter()
        store = self.deps.store
        try:
            await self.discover()
            try:
                await self.drain_outbox()
            except Exception:  # the outbox is retried next cycle; polling must go on now
                logger.exception("outbox drain failed; pending transitions stay for the next cycle")
                self.report.crashed += 1
            pages = store.pollable_pages()
            tasks: list[asyncio.Task[None]] = []
            while True:  # poll the first page while the next one is fetched
                page = await self.in_thread(lambda: next(pages, None))
                if page is None:
                    break
                self.report.jobs += len(page)
                for job in page:
                    if held_by_upstream(job, self.deps.clock()):
                        self.report.throttled += 1
                    elif self.due(job):
                        tasks.append(asyncio.create_task(self.poll_one(job)))
                    else:
                        self.report.skipped += 1
            await asyncio.gather(*tasks)
        finally:
            self.executor.shutdown(wait=True)
        self.report.duration_s = round(time.perf_counter() - started, 3)
        return self.report


async def run_cycle(deps: PollerDeps, remaining_s: Callable[[], float] = lambda: math.inf) -> CycleReport:
    async with contextlib.AsyncExitStack() as stack:
        report = await _Cycle(deps, remaining_s, stack).run()
    for name, value in (
        ("JobsPolled", report.polled),
        ("PollErrors", report.poll_errors),
        ("Transitions", report.transitions),
        ("Published", report.published + report.republished),
        ("PublishFailures", report.publish_failures),
        ("OutboxDeadLettered", report.dead_lettered),
        ("JobCrashes", report.crashed),
        ("WriteConflicts", report.conflicts),
        ("Deferred", report.deferred),
        ("NotDue", report.skipped),
        ("ThrottledPolls", report.throttled),
        ("IgnoredResults", report.ignored),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.add_metric(name="CycleCompleted", unit=MetricUnit.Count, value=1)
    logger.info("poll cycle finished", extra={"cycle": report.counts()})
    return report
