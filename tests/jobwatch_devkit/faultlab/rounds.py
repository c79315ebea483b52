"""One round: register random schedules, run planned poll cycles until every story is told, settle,
then check the invariants.

Each job is registered as an operator would: its API key is a secret in Secrets Manager (the
simulator refuses any other key), and it is tracked through the registration API's operations
(`Operations.track`, the code behind `POST /jobs`). Each cycle has a plan (`CyclePlan`: an overlap
with or without rendezvous, crashing runs, store and outbox errors, a Lambda deadline, an SNS outage)
drawn from the round's plan stream; each run gets its `RunFaults`. After a cycle, a job polled and
recorded cleanly is advanced to its next step (a job on a hostile step must have been recorded as a
poll error of that step's kind); a job in a crashed, aborted or failed run is *tainted* and served the
same step again in a clean cycle. Between cycles the senders run (`Drains`).

Re-tracking (every `retrack_every`-th round): a job whose story ended and owes nothing is, by chance,
untracked (`Operations.untrack`, as `DELETE /jobs/{key}`) and tracked again with a new story, a new
key in Secrets Manager and a new script upstream under the same job id. Its stored state is checked
when it is untracked; the new life is a separate story whose transitions (new ids, D28) must all
reach Slack and e-mail. A second life is drawn only if its script is no longer than what the round
still has to tell, so re-tracking does not lengthen a round.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import boto3
from jobwatch_tools import local

from jobwatch.adapters.dynamodb.jobs import DynamoJobStore
from jobwatch.adapters.http.upstream import HttpUpstream
from jobwatch.adapters.sns import SnsPublisher
from jobwatch.app.poll_cycle import CycleReport, PollerDeps, run_cycle
from jobwatch.app.registration import parse_job_registration
from jobwatch.domain.errors import PollErrorKind
from jobwatch.domain.model import JobSpec, TrackedJob
from jobwatch.domain.routing import DEFAULT_EMAIL, DEFAULT_SLACK, Route
from jobwatch.entrypoints.notifier import defaults_of
from jobwatch.observability import metrics
from jobwatch.ports import JobStore

from ..fakes import FakeClock
from .config import lab_env
from .destinations import destination_names
from .drains import DeadLetter, Drains
from .injectors import CLIENT_CONFIG, Container, Crash, FaultStore, FlakyPublisher, RunFaults, dynamodb_client
from .invariants import (
    RoundResult,
    check_emails,
    check_false_alerts,
    check_jobs,
    check_slack,
    check_stored,
    count_sns,
    story_of,
)
from .rig import RouteRig
from .routed import Ground, Seen, Tally, ground_truth, mark_ambiguous, tally_destinations
from .schedules import Schedule, make_schedule, make_secret

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_secretsmanager.client import SecretsManagerClient
    from mypy_boto3_sqs.client import SQSClient

    from .lab import FaultLab

__all__ = ["POLL_ERROR_KINDS", "CyclePlan", "Round", "RunResult"]

POLL_ERROR_KINDS = frozenset(kind.value for kind in PollErrorKind)
UNORDERED = frozenset({"eventbridge", "email"})
"""Destination types whose channels keep no per-job order (their out-of-order count is a diagnostic)."""


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
        self.secret_rng = random.Random(f"{self.config.seed}:secrets:{number}")
        self.retrack_rng = random.Random(f"{self.config.seed}:retrack:{number}")
        every = self.config.retrack_every
        self.retracking = every > 0 and number % every == every - 1
        self.retrack_decided: set[str] = set()
        self.scanner = lab.scanner

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
        self.dynamodb: DynamoDBClient = dynamodb_client(session)
        self.secretsmanager: SecretsManagerClient = session.client("secretsmanager", config=CLIENT_CONFIG)
        self.reader = DynamoJobStore(self.dynamodb, self.settings.table)
        self.operations = local.operations()  # the registration API's own wiring (POST/DELETE /jobs)
        leaks, scanned, examples = self.scanner.leaks, self.scanner.scanned, len(self.scanner.examples)
        where = Counter(self.scanner.where)
        self.rig = self._rig(session)
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
            scanner=self.scanner,
            rig=self.rig,
        )
        try:
            self.schedules = self._register()
            self._cycles()
            self._settle()
            self._check()
        finally:
            self.drains.close()
        self.result.secrets_leaked = self.scanner.leaks - leaks
        self.result.texts_scanned = self.scanner.scanned - scanned
        self.result.problems.extend(self.scanner.examples[examples:])
        if self.result.secrets_leaked:
            leaked = dict(self.scanner.where - where)
            self.result.problems.append(f"round {self.number}: API keys leaked in {leaked}")
        return self.result

    def _rig(self, session: boto3.session.Session) -> RouteRig | None:
        """With `LabConfig.routes`: the lab's routes stored, every destination type behind them."""
        if not self.config.routes:
            return None
        rig = RouteRig(
            number=self.number,
            config=self.config,
            session=session,
            settings=self.settings,
            dynamodb=self.dynamodb,
            app_sink=self.lab.app_sink,
            receiver=self.lab.receiver,
        )
        rig.install()
        return rig

    def _register(self) -> list[Schedule]:
        config = self.config
        schedules = []
        for index in range(config.schedules_per_round):
            sim_index = index % len(self.lab.simulators)
            sim = self.lab.simulators[sim_index]
            job_id = f"fl{self.number:02d}-{index:04d}"
            schedule = make_schedule(self.rng, index, job_id, sim.url, sim_index, config)
            schedule.secret = make_secret(self.secret_rng, schedule.spec.source)
            schedules.append(schedule)
            self._count_upstream_faults(schedule)
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(self._track, schedules))
        self.result.schedules = len(schedules)
        self.by_key = {s.key: s for s in schedules}
        return schedules

    def _track(self, schedule: Schedule) -> None:
        """Its key in Secrets Manager, its script (and key) upstream, then tracked as `POST /jobs` does."""
        spec = schedule.spec
        name = f"jobwatch/faultlab/r{self.number:02d}/{spec.job_id}/life{schedule.generation}"
        self.secretsmanager.create_secret(Name=name, SecretString=schedule.secret)
        sim = self.lab.simulators[schedule.simulator]
        sim.add_job(
            spec.source, spec.job_id, [s.step.held() for s in schedule.steps], api_key=schedule.secret
        )
        fields = _registration(spec.model_copy(update={"secret_name": name}))
        resource, created = self.operations.track(parse_job_registration(fields), actor="faultlab")
        self.scanner.scan("the answer to a registration", json.dumps(resource.to_wire()))
        job = self.reader.get_job(resource.key)
        if not created or job is None or job.key != schedule.key:
            raise RuntimeError(f"tracking {spec.job_id} did not create {schedule.key}: {resource.key}")
        schedule.spec, schedule.life = job.spec, job.life

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
                self.scanner.scan("a cycle report", json.dumps(run.report.as_dict()))

    def _machine_errors(self, results: list[RunResult], hostile_timeouts: set[str], dead: bool) -> set[str]:
        """Jobs whose poll failed although the step served was an answer (a machine too slow), or whose
        hostile step timed out before it could misbehave; their step is served again.

        Ground truth assumes every good answer is seen; a timeout here is a real poll error to jobwatch
        (it counts towards UNREACHABLE), so the schedule counts it too (`Schedule.count_machine_error`):
        exactly when one run recorded it cleanly, as "health events unknown" otherwise.
        """
        spurious: set[str] = set(hostile_timeouts)
        for run in results:
            for error in [] if run.report is None else run.report.errors:
                schedule = self.by_key.get(error.get("jobKey", ""))
                text = error.get("error", "")
                if schedule is None or text.split(" ", 1)[0].rstrip(":") not in POLL_ERROR_KINDS:
                    continue
                if schedule.current.kind in ("state", "unknown"):
                    spurious.add(schedule.key)
                    self.result.diagnostics.append(f"{schedule.key}: poll of a good answer failed: {text}")
                elif text.startswith("TIMEOUT") and schedule.current.fault_class in ("not-found", "auth"):
                    # an error of another class than the step's: it breaks a not-found run, or names
                    # the wrong alert; an `other` fault timing out instead counts just the same
                    spurious.add(schedule.key)
                    self.result.diagnostics.append(f"{schedule.key}: {schedule.current.kind} failed: {text}")
        failed = set().union(*(r.faults.failed_keys for r in results))
        for key in spurious:
            exact = len(results) == 1 and not dead and key not in failed
            self.by_key[key].count_machine_error(self.config, exact=exact)
            self.result.spurious_counted_exactly += exact
        self.result.spurious_poll_errors += len(spurious)
        return spurious

    def _cycles(self) -> None:
        config = self.config
        clean = True  # the first cycle sees every job for the first time: keep it plain
        points_hint = len(self.schedules)
        for cycle in range(config.max_cycles):
            if all(s.ended for s in self.schedules):
                return
            plan = self._plan(clean, cycle)
            results, polled = self._cycle(cycle, plan, points_hint)
            dead = any(r.crashed or r.aborted for r in results)
            hostile_timeouts = self._check_hostile(results, polled, dead)
            spurious = self._machine_errors(results, hostile_timeouts, dead)
            self._advance(plan, results, polled, dead, spurious)
            if self.retracking:
                self._retrack()
            clean = any(s.tainted and not s.settled for s in self.schedules)
            if not dead:
                points_hint = max(4, max(r.faults.points for r in results))
            self._deliver_between_cycles()
        self.result.problems.append(
            f"round {self.number}: scripts not exhausted after {config.max_cycles} cycles"
        )

    def _advance(
        self, plan: CyclePlan, results: list[RunResult], polled: set[str], dead: bool, spurious: set[str]
    ) -> None:
        """Move each job whose poll was recorded cleanly to its next step; settle the ones not polled."""
        # A run that left polls for later (an upstream Retry-After resting an endpoint) did not
        # poll every pollable job, so "not polled" no longer means "terminal in the store".
        throttled = any(r.report is not None and r.report.throttled for r in results)
        failed = set().union(*(r.faults.failed_keys for r in results)) | spurious
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

    def _check_hostile(self, results: list[RunResult], polled: set[str], dead: bool) -> set[str]:
        """Each job polled on a hostile step (a body past the cap, endless, slow or deep, an error
        echoing its key) was recorded as a poll error of that step's kind, and only as that.

        Returns the jobs whose poll timed out instead (the loaded machine's): see `_machine_errors`."""
        timed_out: set[str] = set()
        if dead:
            return timed_out  # its job is served the same step again in a clean cycle, and checked then
        kinds: dict[str, list[str]] = defaultdict(list)
        for run in results:
            for error in [] if run.report is None else run.report.errors:
                kind = error.get("error", "").split(" ", 1)[0].rstrip(":")
                if kind in POLL_ERROR_KINDS:  # not an injected store error noted against the job
                    kinds[error.get("jobKey", "")].append(kind)
        for schedule in self.schedules:
            expected = schedule.current.error_kind
            if expected is None or schedule.ended or schedule.key not in polled:
                continue
            self.result.hostile_polls += 1
            seen = kinds.get(schedule.key, [])
            # A TIMEOUT next to (or instead of) the expected kind is the loaded machine's, as for good
            # answers: a missing bound would show as another kind (TOO_SLOW for an endless body read
            # to the deadline, INVALID_BODY for a deep one), never as a connect or read timeout.
            timeouts = [kind for kind in seen if kind == "TIMEOUT" and expected != "TIMEOUT"]
            seen = [kind for kind in seen if kind not in timeouts]
            if timeouts:
                timed_out.add(schedule.key)
                self.result.diagnostics.append(f"{schedule.key}: {schedule.current.kind} timed out first")
            if timeouts and not seen:
                continue
            if not seen or any(kind != expected for kind in seen):
                self.result.poll_error_mismatches += 1
                self.result.problems.append(
                    f"{schedule.key}: {schedule.current.kind} recorded as {seen or 'no poll error'}, "
                    f"expected {expected}"
                )
        return timed_out

    # -- re-tracking ----------------------------------------------------------------------------------

    def _retrack(self) -> None:
        """Jobs whose story ended may be untracked and tracked again with a new story (see above)."""
        span = max((len(s.steps) - s.cursor for s in self.schedules if not s.ended), default=0)
        for schedule in list(self.schedules):
            eligible = schedule.generation == 1 and schedule.ended and not schedule.retired
            if not eligible or schedule.tainted or schedule.key in self.retrack_decided:
                continue
            job = self.reader.get_job(schedule.key)
            if job is None or job.owes_transitions:
                continue  # the outbox still holds its transitions: untracking would drop them
            self.retrack_decided.add(schedule.key)
            if self.retrack_rng.random() >= self.config.p_retrack:
                continue
            fresh = make_schedule(
                self.retrack_rng,
                len(self.schedules),
                schedule.spec.job_id,
                schedule.spec.endpoint,
                schedule.simulator,
                self.config,
                source=schedule.spec.source,
            )
            if len(fresh.steps) <= span:
                self._second_life(schedule, job, fresh)

    def _second_life(self, schedule: Schedule, job: TrackedJob, fresh: Schedule) -> None:
        """Untrack `schedule`'s job (`DELETE /jobs/{key}`), then track it again with `fresh`'s story."""
        check_stored(schedule, job, self.result)
        self.scanner.scan("a job item", job.model_dump_json())
        if not self.operations.untrack(schedule.key, actor="faultlab"):
            raise RuntimeError(f"untrack {schedule.key}: not found")
        schedule.retired = schedule.settled = True
        fresh.generation = schedule.generation + 1
        fresh.secret = make_secret(self.secret_rng, fresh.spec.source)
        self._track(fresh)
        self.schedules.append(fresh)
        self.by_key[fresh.key] = fresh
        self.result.retracked += 1
        self._count_upstream_faults(fresh)

    def _deliver_between_cycles(self) -> None:
        """The senders until the next cycle; sometimes they lag (0-2 batches only)."""
        config = self.config
        next_cycle = self.clock.at + config.cycle_s
        lag = None if self.rng.random() < config.p_drain else self.rng.randint(0, 2)
        self.drains.drain(until=next_cycle, faults=True, max_batches=lag)
        self.clock.at = max(self.clock.at, next_cycle)

    def _settle(self) -> None:
        """Publish faults for a few more cycles, then none, until the outbox and the queue are empty."""
        config = self.config
        for extra in range(60):
            faulty = extra < config.settle_fault_cycles
            plan = CyclePlan(publish_errors=faulty)
            self._cycle(config.max_cycles + extra, plan, 1)
            next_cycle = self.clock.at + 3600 + 64 * 60  # past the longest outbox backoff
            self.drains.drain(until=next_cycle, faults=faulty)
            self.clock.at = max(self.clock.at, next_cycle)
            if not faulty and not self.reader.pending_transitions() and not self.drains.queue_depth():
                return
        self.result.problems.append(f"round {self.number}: outbox or notify queue not empty after settling")

    # -- invariants -------------------------------------------------------------------------------------

    def _check(self) -> None:
        """A last drain without faults, then what every destination received against the scripts."""
        self.drains.drain(until=None, faults=False)
        result = self.result
        result.outbox_left = len(self.reader.pending_transitions())
        result.slack_queue_left = self.drains.queue_depth()
        letters = self.drains.read_dlq(self.settings.notify_dlq_url)
        sns = count_sns(self.drains.sns_seen, result)
        slack = check_slack(self.lab.sink, result)
        matched = check_jobs(self.schedules, sns, self._stored_jobs(), result)
        check_false_alerts(sns, matched, result)
        routes = self.rig.routes if self.rig is not None else defaults_of(self.settings)
        ground = ground_truth(routes, self.schedules, matched, sns.first_seen)
        seen = self._seen(slack)
        self._tally(routes, ground, seen, letters)
        later_lives = frozenset(s.story for s in self.schedules if s.generation > 1)
        self._second_lives(ground, seen, later_lives)
        email_dead = sum(1 for letter in letters if letter[2] == DEFAULT_EMAIL)
        self._check_emails(ground.routed.get(DEFAULT_EMAIL, set()), later_lives, email_dead)
        self._scan_kept()

    def _seen(self, slack: list[Seen]) -> dict[str, list[Seen]]:
        """What each destination received, by destination id."""
        emails = [e.transition_id for e in self.deployment.emails()]
        seen = {
            DEFAULT_SLACK: slack,
            DEFAULT_EMAIL: mark_ambiguous(emails, self.drains.email_topic.ambiguous),
        }
        if self.rig is not None:
            seen.update(self.rig.seen(self.result.problems))
        return seen

    def _tally(
        self, routes: list[Route], ground: Ground, seen: dict[str, list[Seen]], letters: list[DeadLetter]
    ) -> None:
        """Per-destination tallies, and the round's totals from them."""
        names = destination_names(routes)
        unordered = frozenset(d.id for r in routes for d in r.destinations if d.type in UNORDERED)
        tallies = tally_destinations(ground, names, seen, unordered, self.result.problems)
        if self.rig is not None:
            refused = self.rig.refused()
            for destination_id, name in names.items():
                tallies[name].refused = refused.get(destination_id, 0)
            self.result.faults_injected.update(self.rig.bus.injected)
        self._dead_letters(letters, names, tallies)
        self.result.destinations = tallies
        _totals(self.result, tallies, names.get(DEFAULT_SLACK, ""))

    def _dead_letters(
        self, letters: list[DeadLetter], names: dict[str, str], tallies: dict[str, Tally]
    ) -> None:
        """Each dead letter against the destination it names (a loss, unless another copy arrived)."""
        for tid, why, destination_id in letters:
            name = names.get(destination_id)
            if name is None:
                self.result.dead_letters_unnamed += 1
            else:
                tallies[name].dead_lettered += 1
            self.result.problems.append(
                f"DLQ: {tid} ({why}) for {name or destination_id or 'no destination'}"
            )
        self.result.slack_dead_lettered = sum(1 for letter in letters if letter[2] == DEFAULT_SLACK)

    def _second_lives(self, ground: Ground, seen: dict[str, list[Seen]], later_lives: frozenset[str]) -> None:
        """Transitions of later lives delivered to every destination they were routed to."""
        shown = {destination_id: {s.tid for s in copies} for destination_id, copies in seen.items()}
        later: dict[str, bool] = {}
        for destination_id, tids in ground.routed.items():
            for tid in tids:
                if story_of(tid) in later_lives:
                    here = tid in shown.get(destination_id, set())
                    later[tid] = later.get(tid, True) and here
        self.result.second_life_delivered = sum(later.values())

    def _scan_kept(self) -> None:
        """Every item in the table and every Slack post (accepted or refused) is searched for keys;
        log lines, events, queue bodies, cycle reports and e-mails were searched as they came."""
        paginator = self.dynamodb.get_paginator("scan")
        for page in paginator.paginate(TableName=self.settings.table):
            for item in page.get("Items", []):
                self.scanner.scan("a DynamoDB item", json.dumps(item))
        for message in [*self.lab.sink.messages(), *self.lab.sink.rejected()]:
            self.scanner.scan("a Slack post", json.dumps(message.payload, default=str))

    def _check_emails(self, routed: set[str], later_lives: frozenset[str], dead_lettered: int) -> None:
        emails = self.deployment.emails()
        for email in emails:
            self.scanner.scan("an e-mail", f"{email.subject}\n{email.body}")
        sent = Counter(email.transition_id for email in emails)
        check_emails(routed, sent, self.drains.email_topic, dead_lettered, self.result, later_lives)

    def _stored_jobs(self) -> dict[str, TrackedJob]:
        keys = sorted({s.key for s in self.schedules})
        with ThreadPoolExecutor(max_workers=8) as pool:
            found = pool.map(self.reader.get_job, keys)
            return {job.key: job for job in found if job is not None}


def _totals(result: RoundResult, tallies: dict[str, Tally], slack: str) -> None:
    """The round's totals over every destination (`slack`: the Slack webhook's name)."""
    result.deliveries_expected = sum(t.expected for t in tallies.values())
    result.delivered = sum(t.delivered for t in tallies.values())
    result.lost = sum(t.lost for t in tallies.values())
    result.duplicated = sum(t.duplicated for t in tallies.values())
    result.false_alerts += sum(t.false for t in tallies.values())
    result.out_of_order_slack = tallies[slack].out_of_order if slack in tallies else 0


def _registration(spec: JobSpec) -> dict[str, Any]:
    """The fields of `POST /jobs` (snake_case, as the CLI passes them) that register `spec`."""
    fields: dict[str, Any] = {
        "source": spec.source,
        "endpoint": spec.endpoint,
        "job_id": spec.job_id,
        "labels": dict(spec.labels),
        "secret_name": spec.secret_name,
    }
    if spec.backend is not None:
        fields["backend"] = spec.backend
    if spec.cluster_id is not None:
        fields["cluster_id"] = spec.cluster_id
    if spec.notify is not None:
        fields["notify"] = spec.notify.model_dump(exclude_none=True)
    return fields
