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
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from jobwatch.adapters.secrets import SecretUnavailableError
from jobwatch.adapters.store import ConflictError, JobStore
from jobwatch.errors import PollError, PollErrorKind
from jobwatch.model import JobSpec, Snapshot, TrackedJob, Transition, bounded
from jobwatch.observability import MetricUnit, job_fields, logger, metrics
from jobwatch.settings import Settings
from jobwatch.sources import UnknownSourceError, get_source
from jobwatch.sources.base import HttpRequest, HttpResponse
from jobwatch.transitions import Outcome, decide

USER_AGENT = "jobwatch/0.1 (+status poller)"
OUTBOX_GRACE_S = 60.0
"""A transition younger than this may still be in the hands of the run that recorded it."""
OUTBOX_MAX_ATTEMPTS = 8


class Publisher(Protocol):
    def publish(self, transition: Transition) -> str: ...


class Secrets(Protocol):
    def get(self, name: str) -> str: ...


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
    duration_s: float = 0.0
    events: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def counts(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("events", "errors")}


CONNECTIONS_PER_LANE = 8
"""httpcore's pool scans every connection (with a socket syscall each) for every queued request;
its cost grows with pool size squared (encode/httpcore#1035). Lanes of 8 keep it flat."""


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Loading the CA bundle costs ~20 ms; every client of the process shares one context."""
    return httpx.create_ssl_context()


def make_http_client(settings: Settings, concurrency: int) -> httpx.AsyncClient:
    """An httpx client with bounded pool, timeouts and keep-alive; no redirects (endpoints are vetted)."""
    return httpx.AsyncClient(
        verify=_tls_context(),
        timeout=httpx.Timeout(
            connect=settings.connect_timeout_s,
            read=settings.read_timeout_s,
            write=settings.read_timeout_s,
            pool=settings.read_timeout_s,
        ),
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    )


async def fetch(client: httpx.AsyncClient, request: HttpRequest) -> HttpResponse:
    """Send one request; transport failures become PollErrors that name the cause."""
    try:
        response = await client.request(
            request.method, request.url, params=request.params, headers=request.headers, json=request.json
        )
    except httpx.TimeoutException as exc:
        raise PollError(PollErrorKind.TIMEOUT, f"no answer in time ({type(exc).__name__})") from None
    except httpx.HTTPError as exc:
        raise PollError(PollErrorKind.CONNECTION, f"{type(exc).__name__}: {exc}") from None
    headers = {"content-type": response.headers.get("content-type", "")}
    retry_after = response.headers.get("retry-after")
    if retry_after is not None:
        headers["retry-after"] = retry_after
    return HttpResponse(status_code=response.status_code, body=response.content, headers=headers)


async def poll_spec(client: httpx.AsyncClient, spec: JobSpec, api_key: str | None) -> Snapshot:
    """Poll one job once: the whole upstream side of a cycle, also used by `jobwatch check`."""
    try:
        source = get_source(spec.source)
    except UnknownSourceError as exc:
        raise PollError(PollErrorKind.CONFIG, str(exc)) from None
    request = source.build_request(spec, api_key)
    response = await fetch(client, request)
    return bounded(source.parse(response))


_Lane = tuple[httpx.AsyncClient, asyncio.Semaphore]


async def open_lanes(stack: contextlib.AsyncExitStack, settings: Settings, jobs: int) -> list[_Lane]:
    """Split the cycle's concurrency into lanes of a few keep-alive connections each.

    Each lane is one client with its own small pool and a semaphore of the same size, so no request
    ever queues inside httpcore; together the lanes give `poll_concurrency` polls in flight.
    """
    concurrency = max(1, min(settings.poll_concurrency, jobs))
    lane_count = math.ceil(concurrency / CONNECTIONS_PER_LANE)
    per_lane = math.ceil(concurrency / lane_count)
    lanes: list[_Lane] = []
    for _ in range(lane_count):
        client = await stack.enter_async_context(make_http_client(settings, per_lane))
        lanes.append((client, asyncio.Semaphore(per_lane)))
    return lanes


class _Cycle:
    """State of one run; split out so the per-job coroutine stays small and readable."""

    def __init__(self, deps: PollerDeps, remaining_s: Callable[[], float]) -> None:
        self.deps = deps
        self.settings = deps.settings
        self.remaining_s = remaining_s
        self.report = CycleReport()
        self.executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="jobwatch-io")

    async def in_thread(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn)

    def api_key_for(self, spec: JobSpec) -> str | None:
        if spec.secret_name is None:
            return None
        try:
            return self.deps.secrets.get(spec.secret_name)
        except SecretUnavailableError as exc:
            raise PollError(PollErrorKind.CONFIG, str(exc)) from None

    async def poll_one(self, lane: _Lane, job: TrackedJob) -> None:
        """One job; anything unexpected is logged against the job and never aborts the cycle."""
        try:
            await self._poll_one(lane, job)
        except Exception as exc:
            self.report.crashed += 1
            self.report.errors.append({"jobKey": job.key, "jobId": job.spec.job_id, "error": repr(exc)[:300]})
            logger.exception("unexpected error for this job; cycle goes on", extra=job_fields(job.spec))

    async def _poll_one(self, lane: _Lane, job: TrackedJob) -> None:
        client, gate = lane
        async with gate:
            if self.remaining_s() < self.settings.deadline_margin_s:
                self.report.deferred += 1
                return
            self.report.polled += 1
            try:
                seen = await poll_spec(client, job.spec, self.api_key_for(job.spec))
            except PollError as exc:
                self.report.poll_errors += 1
                self.report.errors.append({"jobKey": job.key, "jobId": job.spec.job_id, "error": str(exc)})
                logger.warning(
                    "poll failed; job state unchanged",
                    extra=job_fields(job.spec, error=str(exc), errorKind=exc.kind.value),
                )
                return
        await self.apply(job, seen)

    async def apply(self, job: TrackedJob, seen: Snapshot) -> None:
        now = self.deps.now_iso()
        decision = decide(job, seen, now)
        if decision.outcome is Outcome.UNCHANGED:
            self.report.unchanged += 1
            return
        if decision.outcome is Outcome.IGNORED:
            self.report.ignored += 1
            self.report.errors.append({"jobKey": job.key, "jobId": job.spec.job_id, "error": decision.reason})
            logger.warning(
                "poll result ignored; job state unchanged",
                extra=job_fields(job.spec, reason=decision.reason, status=seen.status),
            )
            return
        transition = decision.transition
        try:
            now_s = self.deps.clock()
            await self.in_thread(lambda: self.deps.store.save_snapshot(job, seen, now, transition, now_s))
        except ConflictError:
            self.report.conflicts += 1
            logger.info("another run advanced this job first; not notifying", extra=job_fields(job.spec))
            return
        if transition is None:
            self.report.updated += 1
            return
        self.report.transitions += 1
        logger.info(
            "transition recorded",
            extra=job_fields(
                job.spec,
                transitionId=transition.transition_id,
                event=transition.event,
                previousPhase=transition.previous.phase.value if transition.previous else None,
                phase=seen.phase.value,
            ),
        )
        self.report.events.append(
            {"transitionId": transition.transition_id, "jobKey": job.key, "event": transition.event}
        )
        await self.publish(transition)

    async def publish(self, transition: Transition, *, republish: bool = False) -> None:
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
            return
        if republish:
            self.report.republished += 1
        else:
            self.report.published += 1
        now_s = self.deps.clock()
        await self.in_thread(lambda: store.mark_published(transition, message_id, now_s))

    async def drain_outbox(self) -> None:
        """Publish transitions that were recorded but never published (crash, SNS outage)."""
        store = self.deps.store
        pending = await self.in_thread(store.pending_transitions)
        now = self.deps.clock()
        for item in pending:
            backoff = OUTBOX_GRACE_S * math.pow(2, min(item.attempts, 6))
            if now - item.recorded_at < backoff:
                continue
            if self.remaining_s() < self.settings.deadline_margin_s:
                return
            if item.attempts >= OUTBOX_MAX_ATTEMPTS:
                self.report.dead_lettered += 1
                reason = f"not published after {item.attempts} attempts"
                logger.error(
                    "transition dead-lettered",
                    extra={"jobKey": item.transition.job_key, "transitionId": item.transition.transition_id},
                )
                transition = item.transition
                await self.in_thread(lambda: store.mark_dead_lettered(transition, reason, now))
                continue
            await self.publish(item.transition, republish=True)

    async def run(self) -> CycleReport:
        started = time.perf_counter()
        try:
            await self.drain_outbox()
            jobs = await self.in_thread(self.deps.store.pollable_jobs)
            self.report.jobs = len(jobs)
            async with contextlib.AsyncExitStack() as stack:
                lanes = await open_lanes(stack, self.settings, len(jobs))
                await asyncio.gather(
                    *(self.poll_one(lanes[i % len(lanes)], job) for i, job in enumerate(jobs))
                )
        finally:
            self.executor.shutdown(wait=True)
        self.report.duration_s = round(time.perf_counter() - started, 3)
        return self.report


async def run_cycle(deps: PollerDeps, remaining_s: Callable[[], float] = lambda: math.inf) -> CycleReport:
    report = await _Cycle(deps, remaining_s).run()
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
        ("IgnoredResults", report.ignored),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.add_metric(name="CycleCompleted", unit=MetricUnit.Count, value=1)
    logger.info("poll cycle finished", extra={"cycle": report.counts()})
    return report
