"""Auto-discovery: each watch lists its cluster's or backend's jobs and hands new ones to the job store.

Why: teams that start many imports should not register each one. A watch names a place (Zilliz Cloud
cluster, Milvus instance, Weaviate backup backend); every cycle lists it and starts tracking jobs it
has not handed over before, with the watch's labels, secret and notification settings. From then on
the poller treats them like any registered job (the first observation of a running job is a
transition, so it alerts as usual).

The one special case: a job that had already ended before the watch existed is history, not news.
It is recorded already terminal (never polled, never notified). "Before the watch" is the job's
`completedAt` when the list says it (Weaviate), else "finished in the watch's first successful listing"
(Zilliz and Milvus lists carry no times). Later listings treat a finished newcomer as news: it ended
while the watch was watching, between two cycles, and its first poll notifies it.

The store write for that case is `JobStore.add_job(spec, now, initial_snapshot=...)`: one atomic
write of a job that is terminal and never pollable.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from jobwatch.app.registration import endpoint_refusal
from jobwatch.domain.endpoints import EndpointPolicy
from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.domain.model import JOB_ID_MAX, JobSpec, Phase, Snapshot, TrackedJob, Watch, bounded
from jobwatch.domain.text import unsafe_character
from jobwatch.observability import logger
from jobwatch.ports import Clock, JobStore, Secrets, SecretUnavailableError, Upstream, WatchStore
from jobwatch.settings import EndpointSettings
from jobwatch.sources import listing
from jobwatch.sources.listing import ListedJob

WATCH_SOURCES: dict[str, str] = {
    "zilliz-cloud-v1": "zilliz-import-v1",
    "zilliz-cloud-v2": "zilliz-import-v2",
    "milvus": "milvus-import",
    "weaviate-backups": "weaviate-backup",
}
"""The job source a watch kind's jobs are polled with."""
MAX_PAGES = 20
"""Paginated lists stop after this many pages per cycle (2,000 jobs): a bound on one watch's cost."""
WATCH_CONCURRENCY = 8


@dataclass
class DiscoveryReport:
    watches: int = 0
    listed: int = 0
    tracked: int = 0
    """New jobs handed to the poller."""
    recorded_ended: int = 0
    """Jobs that had ended before their watch: stored terminal, never notified."""
    known: int = 0
    """Listed jobs the watch had handed over before (or that were already tracked)."""
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def spec_for(watch: Watch, job: ListedJob) -> JobSpec:
    """The spec a discovered job is tracked with: the watch's place, secret, labels and notify settings."""
    options = {"dbName": watch.db_name} if watch.kind == "milvus" and watch.db_name else {}
    return JobSpec(
        source=WATCH_SOURCES[watch.kind],
        endpoint=watch.endpoint,
        job_id=job.job_id,
        backend=watch.backend,
        cluster_id=watch.cluster_id,
        options=options,
        secret_name=watch.secret_name,
        labels=watch.labels,
        notify=watch.notify,
    )


def _when(iso: str) -> datetime | None:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None


def ended_before_watch(watch: Watch, job: ListedJob) -> bool:
    """Whether a listed job is history for this watch (recorded silently) rather than news."""
    if not job.status_known or not job.phase.terminal:
        return False
    ended, created = _when(job.completed_at or ""), _when(watch.created_at)
    if ended is not None and created is not None:
        return ended < created
    return watch.primed_at is None


def ended_snapshot(watch: Watch, job: ListedJob) -> Snapshot:
    return bounded(
        Snapshot(
            phase=job.phase,
            status=job.status,
            progress=100.0 if job.phase is Phase.SUCCEEDED else None,
            error=job.error,
            completed_at=job.completed_at,
            details={
                "collections": list(job.collections),
                "discoveredBy": watch.id,
                "endedBeforeWatch": True,
            },
        )
    )


def record_ended(
    store: JobStore, spec: JobSpec, snapshot: Snapshot, now_iso: str, now_s: float
) -> tuple[TrackedJob, bool]:
    """Track a job that is already over without ever notifying it (see the module docstring)."""
    return store.add_job(spec, now_iso, initial_snapshot=snapshot)


async def list_watch(upstream: Upstream, watch: Watch, api_key: str | None) -> list[ListedJob]:
    """Every job the watched place lists (pages followed up to MAX_PAGES), or PollError."""
    if watch.kind == "milvus":
        return listing.parse_milvus_list(
            await upstream.fetch(listing.milvus_request(watch.endpoint, watch.db_name, api_key))
        ).jobs
    if watch.kind == "weaviate-backups":
        request = listing.weaviate_backups_request(watch.endpoint, watch.backend or "", api_key)
        return listing.parse_weaviate_backups(await upstream.fetch(request)).jobs
    v1 = watch.kind == "zilliz-cloud-v1"
    build = listing.zilliz_v1_request if v1 else listing.zilliz_v2_request
    parse = listing.parse_zilliz_v1_list if v1 else listing.parse_zilliz_v2_list
    jobs: list[ListedJob] = []
    for page_number in range(1, MAX_PAGES + 1):
        page = parse(
            await upstream.fetch(build(watch.endpoint, watch.cluster_id or "", api_key, page_number))
        )
        jobs.extend(page.jobs)
        if not page.jobs or len(page.jobs) < listing.PAGE_SIZE:
            break
        if page.total is not None and len(jobs) >= page.total:
            break
    return jobs


class _Discovery:
    def __init__(
        self,
        store: JobStore,
        watches: WatchStore,
        upstream: Upstream,
        secrets: Secrets,
        settings: EndpointSettings,
        clock: Clock,
    ) -> None:
        self.store = store
        self.watches = watches
        self.upstream = upstream
        self.secrets = secrets
        self.policy = EndpointPolicy.from_settings(settings)
        self.now_iso = clock.now_iso()
        self.clock = clock
        self.report = DiscoveryReport()

    def error(self, watch: Watch, message: str) -> None:
        self.report.errors.append({"watchId": watch.id, "error": message})
        logger.warning(
            "watch listing failed; nothing discovered", extra={"watchId": watch.id, "error": message}
        )

    async def one(self, watch: Watch, gate: asyncio.Semaphore) -> None:
        async with gate:
            try:
                await self._one(watch)
            except Exception as exc:  # one broken watch never stops the others (or the poll cycle)
                self.error(watch, repr(exc)[:300])
                logger.exception("unexpected discovery error", extra={"watchId": watch.id})

    async def _one(self, watch: Watch) -> None:
        # Re-checked every cycle: a name that resolved to a public address at registration may not now.
        refusal = await asyncio.to_thread(endpoint_refusal, watch.endpoint, self.policy)
        if refusal is not None:
            self.error(watch, f"{PollErrorKind.CONFIG.value}: {refusal}")
            return
        try:
            api_key = self.secrets.get(watch.secret_name) if watch.secret_name else None
        except SecretUnavailableError as exc:
            self.error(watch, f"{PollErrorKind.CONFIG.value}: {exc}")
            return
        try:
            listed = await list_watch(self.upstream, watch, api_key)
        except PollError as exc:
            self.error(watch, str(exc))
            return
        seen = await asyncio.to_thread(self.watches.seen_job_ids, watch.id)
        for job in {job.job_id: job for job in listed}.values():
            self.report.listed += 1
            if job.job_id in seen:
                self.report.known += 1
                continue
            if len(job.job_id) > JOB_ID_MAX:
                self.error(watch, f"job id longer than {JOB_ID_MAX} characters skipped")
                continue
            if (problem := unsafe_character(job.job_id)) is not None:
                self.error(watch, f"listed job id skipped: it contains {problem}")
                continue
            await asyncio.to_thread(self.hand_over, watch, job)
        if watch.primed_at is None:
            await asyncio.to_thread(self.watches.mark_primed, watch.id, self.now_iso)

    def hand_over(self, watch: Watch, job: ListedJob) -> None:
        spec = spec_for(watch, job)
        silent = ended_before_watch(watch, job)
        if silent:
            _, created = record_ended(
                self.store, spec, ended_snapshot(watch, job), self.now_iso, self.clock.now()
            )
        else:
            _, created = self.store.add_job(spec, self.now_iso)
        # Marked after the job is stored: a crash in between only repeats an idempotent add_job.
        self.watches.mark_seen(watch.id, job.job_id, spec.key, self.now_iso)
        if not created:
            self.report.known += 1
            return
        if silent:
            self.report.recorded_ended += 1
        else:
            self.report.tracked += 1
        logger.info(
            "job discovered",
            extra={
                "watchId": watch.id,
                "jobKey": spec.key,
                "jobId": spec.job_id,
                "source": spec.source,
                "status": job.status,
                "endedBeforeWatch": silent,
            },
        )


async def run_discovery(
    store: JobStore,
    watches: WatchStore,
    upstream: Upstream,
    secrets: Secrets,
    settings: EndpointSettings,
    clock: Clock,
) -> DiscoveryReport:
    """List every watch once and track the jobs they have not handed over yet. Never raises for a watch."""
    discovery = _Discovery(store, watches, upstream, secrets, settings, clock)
    all_watches = await asyncio.to_thread(watches.list)
    discovery.report.watches = len(all_watches)
    gate = asyncio.Semaphore(WATCH_CONCURRENCY)
    await asyncio.gather(*(discovery.one(watch, gate) for watch in all_watches))
    if all_watches:
        logger.info("discovery finished", extra={"discovery": discovery.report.as_dict()})
    return discovery.report
