"""Upstream 429s: jobwatch honours `Retry-After` instead of polling through it.

Within a cycle the rate-limited endpoint rests: a short rest is waited out, a long one leaves the
endpoint's remaining polls for a later cycle (nothing written, nothing counted against those jobs),
while other endpoints go on. Across cycles, a `Retry-After` that reaches past the next scheduled poll
is stored on the job, which is not polled again before that time. A 429 is still an ordinary poll
error: no state change, no notification.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import pytest

from jobwatch.adapters import aws
from jobwatch.adapters.http.upstream import HttpUpstream
from jobwatch.adapters.sns import SnsPublisher
from jobwatch.app.poll_cycle import CycleReport, PollerDeps, run_cycle
from jobwatch.domain.model import Health, Phase
from jobwatch.entrypoints.wiring import job_store, secret_resolver
from jobwatch_devkit.fakes import FakeClock
from jobwatch_devkit.harness import LocalDeployment
from jobwatch_devkit.simulator import UpstreamSimulator, fault_rate_limit, state

pytestmark = pytest.mark.integration

EXPORT = "weaviate-export"


def _track(deployment: LocalDeployment, endpoint: str, job_id: str) -> str:
    return deployment.track(source=EXPORT, endpoint=endpoint, job_id=job_id, backend="s3").key


def test_a_long_retry_after_rests_the_endpoint_for_the_rest_of_the_cycle(
    make_deployment: Callable[..., LocalDeployment], sim: UpstreamSimulator, sim_url: str
) -> None:
    deployment = make_deployment({"JOBWATCH_ENDPOINT_CONCURRENCY": "1"})  # one poll at a time
    store = job_store(deployment.settings)
    other = UpstreamSimulator()
    other.start()
    try:
        busy = [f"busy-{i}" for i in range(3)]
        for job_id in busy:
            sim.add_job(EXPORT, job_id, [fault_rate_limit(30), state("STARTED")], backend="s3")
            _track(deployment, sim_url, job_id)
        other.add_job(EXPORT, "elsewhere", [state("STARTED")], backend="s3")
        _track(deployment, other.base_url, "elsewhere")

        report = deployment.poll()

        # The first poll of the busy endpoint met the 429; its two other jobs were not asked at all.
        assert sum(sim.request_count(job_id) for job_id in busy) == 1
        assert (report.polled, report.poll_errors, report.throttled) == (2, 1, 2)
        # The other endpoint was polled as usual.
        assert other.request_count("elsewhere") == 1
        assert [e["event"] for e in report.events] == ["STARTED"]
        left = [
            job
            for job in deployment.jobs()
            if job.spec.job_id in busy and not sim.request_count(job.spec.job_id)
        ]
        assert len(left) == 2
        for job in left:  # untouched: no error counted against a job that was never asked
            stored = store.get_job(job.key)
            assert stored is not None
            assert (stored.version, stored.snapshot, stored.health) == (0, None, Health())
        # 30 s is within the schedule's period: the next scheduled poll honours it, nothing stored.
        limited = next(job for job in busy if sim.request_count(job))
        stored = next(j for j in deployment.jobs() if j.spec.job_id == limited)
        assert stored.health.retry_not_before is None
        assert (stored.health.consecutive_errors, stored.health.last_error_kind) == (1, "RATE_LIMITED")
    finally:
        other.stop()


def test_a_short_retry_after_is_waited_out_within_the_cycle(
    make_deployment: Callable[..., LocalDeployment], sim: UpstreamSimulator, sim_url: str
) -> None:
    deployment = make_deployment({"JOBWATCH_ENDPOINT_CONCURRENCY": "1"})
    for job_id in ("short-a", "short-b"):
        sim.add_job(EXPORT, job_id, [fault_rate_limit(1), state("STARTED")], backend="s3")
        _track(deployment, sim_url, job_id)

    report = deployment.poll()

    # Both were asked, the second only after the first one's Retry-After had passed.
    assert (report.polled, report.poll_errors, report.throttled) == (2, 2, 0)
    assert report.duration_s >= 1.0
    assert (sim.request_count("short-a"), sim.request_count("short-b")) == (1, 1)


def _cycle(deployment: LocalDeployment, clock: FakeClock) -> CycleReport:
    settings = deployment.settings
    deps = PollerDeps(
        settings=settings,
        store=job_store(settings),
        publisher=SnsPublisher(aws.sns(), settings.topic_arn),
        secrets=secret_resolver(settings.secret_cache_s),
        upstream=lambda: HttpUpstream(settings),
        clock=clock,
    )
    return asyncio.run(run_cycle(deps))


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_a_retry_after_past_the_next_scheduled_poll_holds_the_job_until_then(
    make_deployment: Callable[..., LocalDeployment], sim: UpstreamSimulator, sim_url: str, form: str
) -> None:
    deployment = make_deployment({"JOBWATCH_ADAPTIVE_POLLING": "false"})  # due every cycle but for the hold
    retry_after: Any = 300 if form == "seconds" else formatdate(time.time() + 300, usegmt=True)
    sim.add_job(EXPORT, "held", [fault_rate_limit(retry_after), state("STARTED")], backend="s3")
    key = _track(deployment, sim_url, "held")
    store = job_store(deployment.settings)
    clock = FakeClock(time.time())

    first = _cycle(deployment, clock)
    assert (first.polled, first.poll_errors, first.transitions) == (1, 1, 0)
    after_429 = store.get_job(key)
    assert after_429 is not None and after_429.health.retry_not_before is not None
    assert (after_429.version, after_429.snapshot) == (0, None)

    for minutes in (1, 2, 3, 4):  # the scheduled polls inside the 300 s are not sent
        clock.advance(60)
        report = _cycle(deployment, clock)
        assert (report.polled, report.throttled) == (0, 1), minutes
    assert sim.request_count("held") == 1
    assert store.get_job(key) == after_429  # nothing written while held

    clock.advance(61)  # 301 s after the 429
    report = _cycle(deployment, clock)
    assert (report.polled, report.throttled, report.transitions) == (1, 0, 1)
    started = store.get_job(key)
    assert started is not None and started.snapshot is not None
    assert started.snapshot.phase is Phase.RUNNING
    assert started.health.retry_not_before is None
    assert [t.event for t in deployment.published()] == ["STARTED"]
