"""One round: register random schedules, run planned poll cycles until every story is told, settle,
then check the invariants.

Each cycle has a plan (`CyclePlan`: an overlap with or without rendezvous, crashing runs, store and
outbox errors, a Lambda deadline, an SNS outage) drawn from the round's plan stream; each run gets its
`RunFaults`. After a cycle, a job polled and recorded cleanly is advanced to its next step; a job in a
crashed, aborted or failed run is *tainted* and served the same step again in a clean cycle. Between
cycles the senders run (`Drains`).
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import boto3

from jobwatch.adapters.dynamodb.jobs import DynamoJobStore
from jobwatch.adapters.http.upstream import HttpUpstream
from jobwatch.adapters.sns import SnsPublisher
from jobwatch.app.poll_cycle import CycleReport, PollerDeps, run_cycle
from jobwatch.domain.errors import PollErrorKind
from jobwatch.domain.model import TrackedJob
from jobwatch.observability import metrics
from jobwatch.ports import JobStore

from ..fakes import FakeClock
from .config import lab_env
from .drains import Drains
from .injectors import CLIENT_CONFIG, Container, Crash, FaultStore, FlakyPublisher, RunFaults, dynamodb_client
from .invariants import (
    RoundResult,
    check_emails,
    check_false_alerts,
    check_jobs,
    check_slack,
    count_sns,
    routed_to_email,
)
from .schedules import Schedule, make_schedule

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

    from .lab import FaultLab

__all__ = ["POLL_ERROR_KINDS", "CyclePlan", "Round", "RunResult"]

POLL_ERROR_KINDS = frozenset(kind.value for kind in PollErrorKind)


@dataclass
class RunResult:
    faults: RunFaults
    report: CycleReport | None = None
    crashed: bool = False
    aborted: str | None = None


@dataclass(frozen=True)
class CyclePlan:
    overlap: str | None = None
    """None, `rendezvous` or `staggered`."""
    crash_runs: tuple[int, ...] = ()
    store_errors: bool = False
    outbox_errors: bool = False
    deadline_after: int | None = None
    """`remaining_s` falls below the margin after this many calls."""
    publish_errors: bool = True
    sns_down: bool = False

    @property
    def disturbing(self) -> bool:
        return bool(self.crash_runs) or self.store_errors or self.outbox_errors


class Round:
    """One round of the lab (see the module docstring); `run()` returns its `RoundResult`."""

    def __init__(self, lab: FaultLab, number: int) -> None:
        self.lab = lab
        self.config = lab.config
        self.number = number
        self.rng = random.Random(f"{self.config.seed}:round:{number}")
        """Schedules and delivery faults."""
        self.plan_rng = random.Random(f"{self.config.seed}:plan:{number}")
        """Cycle plans (overlaps, crashes, errors, deadlines)."""
        self.result = RoundResult()
        self.clock = FakeClock(time.time())
        self.outage_left = 0
        self.email_rng = random.Random(f"{self.config.seed}:email:{number}")

    # -- set-up ---------------------------------------------------------------------------------------

    def run(self) -> RoundResult:
        config = self.config
        self.deployment = self.lab.factory(lab_env(config))
        self.settings = self.deployment.settings
        for sim in self.lab.simulators:
            sim.reset()
        self.lab.sink.reset()
        self.containers = (Container.create(), Container.create())
        session = boto3.session.Session()
        self.sqs: SQSClient = session.client("sqs", config=CLIENT_CONFIG)
        self.reader = DynamoJobStore(dynamodb_client(session), self.settings.table)
        self.drains = Drains(
            config=config,
            number=self.number,
            rng=self.rng,
            email_rng=self.email_rng,
            clock=self.clock,
            result=self.result,
            sink=self.lab.sink,
            deployment=self.deployment,
            containers=self.containers,
            session=session,
            sqs=self.sqs,
        )
        try:
            self.schedules = self._register()
            self._cycles()
            self._settle()
            self._check()
        finally:
            self.drains.close()
        return self.result

    def _register(self) -> list[Schedule]:
        config = self.config
        schedules = []
        for index in range(config.schedules_per_round):
            sim_index = index % len(self.lab.simulators)
            sim = self.lab.simulators[sim_index]
            job_id = f"fl{self.number:02d}-{index:04d}"
            schedule = make_schedule(self.rng, index, job_id, sim.url, sim_index, config)
            sim.add_job(schedule.spec.source, job_id, [s.step.held() for s in schedule.steps])
            schedules.append(schedule)
            self._count_upstream_faults(schedule)
        now = self.clock.now_iso()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda s: self.reader.add_job(s.spec, now), schedules))
        self.result.schedules = len(schedules)
        self.by_key = {s.key: s for s in schedules}
        return schedules

    def _count_upstream_faults(self, schedule: Schedule) -> None:
        for planned in schedule.steps:
            if planned.kind != "state":
                self.result.faults_injected[f"upstream:{planned.kind}"] += 1
            elif planned.step.delay_ms:
                self.result.faults_injected["upstream:slow-answer"] += 1

    # -- cycles ---------------------------------------------------------------------------------------

    def _plan(self, clean: bool, cycle: int) -> CyclePlan:
        rng, config = self.plan_rng, self.config
        overlap: str | None = None
        if rng.random() < config.p_overlap:
            overlap = "staggered" if (not clean and rng.random() < config.p_staggered) else "rendezvous"
        crash_runs: tuple[int, ...] = ()
        store_errors = outbox_errors = False
        deadline_after: int | None = None
        if not clean and overlap != "staggered":
            if rng.random() < config.p_crash:
                crash_runs = (rng.randrange(2 if overlap else 1),)
            store_errors = rng.random() < config.p_store_errors
            outbox_errors = rng.random() < config.p_outbox_errors
        if overlap is None and rng.random() < config.p_deadline:
            deadline_after = rng.randint(0, max(1, len(self.schedules)))
        if self.outage_left:
            self.outage_left -= 1
        elif rng.random() < config.p_sns_outage:
            self.outage_left = rng.randint(2, 4)
            self.result.faults_injected["sns-outage"] += 1
        sns_down = self.outage_left > 0
        return CyclePlan(overlap, crash_runs, store_errors, outbox_errors, deadline_after, sns_down=sns_down)

    def _run_faults(self, plan: CyclePlan, cycle: int, run: int, points_hint: int) -> RunFaults:
        config = self.config
        tag = f"{config.seed}:{self.number}:{cycle}:{run}"
        crash_at = self.plan_rng.randint(1, max(4, points_hint)) if run in plan.crash_runs else None
        return RunFaults(
            tag=tag,
            crash_at=crash_at,
            store_error_p=config.store_error_p if plan.store_errors else 0.0,
            outbox_error_p=config.outbox_error_p if plan.outbox_errors else 0.0,
            publish_error_p=config.publish_error_p if plan.publish_errors else 0.0,
            sns_down=plan.sns_down,
        )

    def _invoke(
        self, container: Container, faults: RunFaults, barrier: threading.Barrier | None, plan: CyclePlan
    ) -> RunResult:
        settings = self.settings
        deps = PollerDeps(
            settings=settings,
            store=cast(
                "JobStore", FaultStore(DynamoJobStore(container.dynamodb, settings.table), faults, barrier)
            ),
            publisher=FlakyPublisher(SnsPublisher(container.sns, settings.topic_arn), faults),
            secrets=container.secrets,
            upstream=lambda: HttpUpstream(settings),
            clock=self.clock,
        )
        remaining: Callable[[], float] = lambda: math.inf  # noqa: E731
        if plan.deadline_after is not None:
            calls = iter(range(10**9))
            limit = plan.deadline_after
            remaining = lambda: math.inf if next(calls) < limit else 1.0  # noqa: E731
        result = RunResult(faults)
        try:
            result.report = asyncio.run(run_cycle(deps, remaining))
        except Crash:
            result.crashed = True
        except Exception as exc:  # an error that escaped run_cycle: the invocation failed
            result.aborted = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            if barrier is not None:
                barrier.abort()  # a run that died before the rendezvous must not hold the other one
            metrics.clear_metrics()
        return result

    def _request_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for index, sim in enumerate(self.lab.simulators):
            for job_id, n in sim.job_counts().items():
                counts[f"{index}:{job_id}"] = n
        return counts

    def _cycle(self, cycle: int, plan: CyclePlan, points_hint: int) -> tuple[list[RunResult], set[str]]:
        """Run one cycle as planned; returns the run results and the keys of jobs polled."""
        before = self._request_counts()
        runs = 2 if plan.overlap else 1
        faults = [self._run_faults(plan, cycle, run, points_hint) for run in range(runs)]
        if plan.overlap is None:
            results = [self._invoke(self.containers[0], faults[0], None, plan)]
        else:
            results = self._overlap(plan, faults)
        after = self._request_counts()
        polled = {
            s.key
            for s in self.schedules
            if after.get(f"{s.simulator}:{s.spec.job_id}", 0)
            > before.get(f"{s.simulator}:{s.spec.job_id}", 0)
        }
        self._tally_runs(results)
        if plan.deadline_after is not None:
            self.result.faults_injected["lambda-deadline"] += 1
        self.result.cycles += 1
        return results, polled

    def _overlap(self, plan: CyclePlan, faults: list[RunFaults]) -> list[RunResult]:
        """Two runs at once (a duplicated invocation): with a rendezvous, or the second a little later."""
        barrier = threading.Barrier(2) if plan.overlap == "rendezvous" else None
        delay = self.plan_rng.uniform(0.0, 0.3) if plan.overlap == "staggered" else 0.0
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="faultlab-run") as pool:
            first = pool.submit(self._invoke, self.containers[0], faults[0], barrier, plan)
            if delay:
                time.sleep(delay)
            second = pool.submit(self._invoke, self.containers[1], faults[1], barrier, plan)
            results = [first.result(timeout=600), second.result(timeout=600)]
        self.result.overlaps += 1
        self.result.faults_injected[f"overlap:{plan.overlap}"] += 1
        return results

    def _tally_runs(self, results: list[RunResult]) -> None:
        for run in results:
            self.result.faults_injected.update(run.faults.injected)
            if run.crashed:
                self.result.crashes += 1
            if run.aborted:
                self.result.aborted_cycles += 1
                self.result.faults_injected["cycle-aborted"] += 1
            if run.report is not None:
                self.result.conflicts += run.report.conflicts
                self.result.outbox_dead_lettered += run.report.dead_lettered

    def _spurious_errors(self, results: list[RunResult]) -> set[str]:
        """Jobs whose poll failed although the step served was an answer (a machine too slow).

        Ground truth assumes every good answer is seen; a timeout here is a real poll error to jobwatch
        (it counts towards UNREACHABLE), so the run reports it and serves the same state again.
        """
        spurious: set[str] = set()
        for run in results:
            for error in [] if run.report is None else run.report.errors:
                schedule = self.by_key.get(error.get("jobKey", ""))
                text = error.get("error", "")
                if schedule is None or text.split(" ", 1)[0].rstrip(":") not in POLL_ERROR_KINDS:
                    continue
                if schedule.current.kind in ("state", "unknown"):
                    spurious.add(schedule.key)
                    self.result.problems.append(f"{schedule.key}: poll of a good answer failed: {text}")
        self.result.spurious_poll_errors += len(spurious)
        return spurious

    def _cycles(self) -> None:
        config = self.config
        clean = True  # the first cycle sees every job for the first time: keep it plain
        points_hint = len(self.schedules)
        for cycle in range(config.max_cycles):
            if all(s.settled or s.cursor >= len(s.steps) for s in self.schedules):
                return
            plan = self._plan(clean, cycle)
            results, polled = self._cycle(cycle, plan, points_hint)
            dead = any(r.crashed or r.aborted for r in results)
            self._advance(plan, results, polled, dead)
            clean = any(s.tainted and not s.settled for s in self.schedules)
            if not dead:
                points_hint = max(4, max(r.faults.points for r in results))
            self._deliver_between_cycles()
        self.result.problems.append(
            f"round {self.number}: scripts not exhausted after {config.max_cycles} cycles"
        )

    def _advance(self, plan: CyclePlan, results: list[RunResult], polled: set[str], dead: bool) -> None:
        """Move each job whose poll was recorded cleanly to its next step; settle the ones not polled."""
        # A run that left polls for later (an upstream Retry-After resting an endpoint) did not
        # poll every pollable job, so "not polled" no longer means "terminal in the store".
        throttled = any(r.report is not None and r.report.throttled for r in results)
        failed = set().union(*(r.faults.failed_keys for r in results)) | self._spurious_errors(results)
        unpolled_is_terminal = plan.deadline_after is None and not dead and not throttled
        for schedule in self.schedules:
            if schedule.settled:
                continue
            if schedule.key not in polled:
                if unpolled_is_terminal:
                    schedule.settled = True  # not pollable any more: terminal in the store
                continue
            if dead or schedule.key in failed:
                schedule.tainted = True  # the same step again, and only in clean cycles
                continue
            self.lab.simulators[schedule.simulator].advance(schedule.spec.job_id, source=schedule.spec.source)
            schedule.cursor += 1
            schedule.tainted = False

    def _deliver_between_cycles(self) -> None:
        """The senders until the next cycle; sometimes they lag (0-2 batches only)."""
        config = self.config
        next_cycle = self.clock.at + config.cycle_s
        lag = None if self.rng.random() < config.p_drain else self.rng.randint(0, 2)
        self.drains.drain_slack(until=next_cycle, faults=True, max_batches=lag)
        self.clock.at = max(self.clock.at, next_cycle)

    def _settle(self) -> None:
        """Publish faults for a few more cycles, then none, until the outbox and the queue are empty."""
        config = self.config
        for extra in range(60):
            faulty = extra < config.settle_fault_cycles
            plan = CyclePlan(publish_errors=faulty)
            self._cycle(config.max_cycles + extra, plan, 1)
            next_cycle = self.clock.at + 3600 + 64 * 60  # past the longest outbox backoff
            self.drains.drain_slack(until=next_cycle, faults=faulty)
            self.clock.at = max(self.clock.at, next_cycle)
            if not faulty and not self.reader.pending_transitions() and not self.drains.queue_depth():
                return
        self.result.problems.append(f"round {self.number}: outbox or Slack queue not empty after settling")

    # -- invariants -------------------------------------------------------------------------------------

    def _check(self) -> None:
        """A last drain without faults, then what every channel received against the scripts."""
        self.drains.drain_slack(until=None, faults=False)
        result = self.result
        result.outbox_left = len(self.reader.pending_transitions())
        result.slack_queue_left = self.drains.queue_depth()
        dead_lettered = self._slack_dead_letters()
        sns = count_sns(self.drains.sns_seen, result)
        slack = check_slack(self.lab.sink, dead_lettered, result)
        matched = check_jobs(self.schedules, sns, slack, self._stored_jobs(), result)
        check_false_alerts(sns, slack, matched, result)
        self._check_emails(routed_to_email(sns, matched))

    def _slack_dead_letters(self) -> list[tuple[str, str]]:
        """Counts the Slack dead-letter queue and reads it: (transition id, why) each."""
        dlq = self.settings.slack_dlq_url
        if not dlq:
            return []
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        self.result.slack_dead_lettered = int(attributes["ApproximateNumberOfMessages"])
        return self.drains.read_dlq(dlq)

    def _check_emails(self, routed: set[str]) -> None:
        sent = Counter(email.transition_id for email in self.deployment.emails())
        dead_lettered = int(
            self.sqs.get_queue_attributes(
                QueueUrl=self.settings.email_dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
        )
        check_emails(routed, sent, self.drains.email_topic, dead_lettered, self.result)

    def _stored_jobs(self) -> dict[str, TrackedJob]:
        with ThreadPoolExecutor(max_workers=8) as pool:
            found = pool.map(self.reader.get_job, [s.key for s in self.schedules])
            return {job.key: job for job in found if job is not None}
