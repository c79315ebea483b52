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
import dataclasses
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
from jobwatch.adapters.dynamodb.leases import DynamoShardLeases
from jobwatch.adapters.sns import SnsPublisher
from jobwatch.app.fanout import run_order, run_tick
from jobwatch.app.poll_cycle import CycleReport, PollerDeps
from jobwatch.app.registration import parse_job_registration
from jobwatch.domain.cadence import next_tick
from jobwatch.domain.errors import PollErrorKind
from jobwatch.domain.model import JobSpec, TrackedJob
from jobwatch.domain.routing import DEFAULT_EMAIL, DEFAULT_SLACK, Route
from jobwatch.domain.shards import layout_of
from jobwatch.entrypoints.notifier import defaults_of
from jobwatch.observability import metrics
from jobwatch.ports import JobStore, ShardOrders

from ..fakes import FakeClock
from .config import lab_env
from .destinations import destination_names
from .drains import DeadLetter, Drains
from .fanout import FanoutCycle, FaultLeases, PollLedger, Work, draw_fanout, run_upstream
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
    role: str = "poller"
    """`poller` (scheduled, with the cycle's tick), `manual` (no tick), `coordinator`, or a poll
    worker's `worker`, `redelivery`, `late`."""
    shard: int | None = None
    """A poll worker's shard."""


@dataclass(frozen=True)
class CyclePlan:
    overlap: str | None = None
    """None, `rendezvous` or `staggered` (two manual runs, no tick, no lease: every job polled twice),
    or `scheduled` (two scheduled runs for one tick, sharing the shards through their leases)."""
    crash_runs: tuple[int, ...] = ()
    store_errors: bool = False
    outbox_errors: bool = False
    deadline_after: int | None = None
    """`remaining_s` falls below the margin after this many calls."""
    publish_errors: bool = True
    sns_down: bool = False
    fanout: bool = False
    """Coordinator(s) and poll workers (`fanout.FanoutCycle`); `crash_runs` are coordinators then."""
    coordinators: int = 1
    """2: a duplicated schedule, both coordinators ordering every shard for the same tick."""
    worker_crashes: tuple[int, ...] = ()
    """Shards whose (first) worker dies at a random fault point; its order is delivered again."""
    worker_kills: tuple[int, ...] = ()
    """Shards whose worker is killed after a random number of answers (a Lambda timeout)."""
    worker_deadlines: tuple[int, ...] = ()
    """Shards whose worker's remaining time falls under the margin after a random number of looks."""
    late_order: str | None = None
    """`expired` or `raced`: an order of the last fan-out tick delivered after this tick's orders."""

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
        self.ledger = PollLedger()
        """Every upstream poll by story and tick: the "polled twice in a cycle" invariant."""

    # -- set-up ---------------------------------------------------------------------------------------

    def run(self) -> RoundResult:
        config = self.config
        self.deployment = self.lab.factory(lab_env(config))
        self.settings = self.deployment.settings
        self.layout = layout_of(self.settings)
        for sim in self.lab.simulators:
            sim.reset()
        self.lab.sink.reset()
        self.containers = (Container.create(), Container.create())
        fanning = self.layout.shards > 1 and config.p_fanout > 0
        workers = [Container.create() for _ in range(self.layout.shards if fanning else 0)]
        self.fanout = FanoutCycle(self, workers)
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
        self._count_shards()
        return schedules

    def _count_shards(self) -> None:
        """How many of the K shards the registered jobs landed on, read from the index itself."""
        sizes = [
            sum(len(page) for page in self.reader.pollable_pages([s])) for s in range(self.layout.shards)
        ]
        self.result.shards_used += sum(1 for n in sizes if n)

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
        self.ledger.register(schedule)

    def _count_upstream_faults(self, schedule: Schedule) -> None:
        for planned in schedule.steps:
            if planned.kind != "state":
                self.result.faults_injected[f"upstream:{planned.kind}"] += 1
            elif planned.step.delay_ms:
                self.result.faults_injected["upstream:slow-answer"] += 1

    # -- cycles ---------------------------------------------------------------------------------------

    def _plan(self, clean: bool, cycle: int) -> CyclePlan:
        rng, config = self.plan_rng, self.config
        fanout = self.layout.shards > 1 and config.p_fanout > 0 and rng.random() < config.p_fanout
        plan = self._fanout_plan(clean) if fanout else self._inline_plan(clean)
        if self.outage_left:
            self.outage_left -= 1
        elif rng.random() < config.p_sns_outage:
            self.outage_left = rng.randint(2, 4)
            self.result.faults_injected["sns-outage"] += 1
        return dataclasses.replace(plan, sns_down=self.outage_left > 0)

    def _inline_plan(self, clean: bool) -> CyclePlan:
        """One scheduled run, or two: manual ones racing on every write, or scheduled ones sharing
        the tick's shards through their leases."""
        rng, config = self.plan_rng, self.config
        overlap: str | None = None
        if rng.random() < config.p_overlap:
            overlap = "staggered" if (not clean and rng.random() < config.p_staggered) else "rendezvous"
            if (
                overlap == "rendezvous"
                and self.layout.shards > 1
                and rng.random() < config.p_scheduled_overlap
            ):
                overlap = "scheduled"
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
        return CyclePlan(overlap, crash_runs, store_errors, outbox_errors, deadline_after)

    def _fanout_plan(self, clean: bool) -> CyclePlan:
        """Coordinator(s) and poll workers. Worker crashes and kills only where a crash may happen
        (not in a clean cycle); a worker running out of time leaves jobs unpolled, never half-recorded,
        so it may come any time."""
        rng, config, shards = self.plan_rng, self.config, self.layout.shards
        coordinators = 2 if rng.random() < config.p_coordinators else 1
        crash_runs: tuple[int, ...] = ()
        worker_crashes: tuple[int, ...] = ()
        worker_kills: tuple[int, ...] = ()
        store_errors = outbox_errors = False
        if not clean:
            if rng.random() < config.p_crash / 2:
                crash_runs = (rng.randrange(coordinators),)
            worker_crashes = draw_fanout(rng, shards, config.p_worker_crash)
            worker_kills = draw_fanout(rng, shards, config.p_worker_kill)
            store_errors = rng.random() < config.p_store_errors
            outbox_errors = rng.random() < config.p_outbox_errors
        worker_deadlines = draw_fanout(rng, shards, config.p_worker_deadline)
        late_order = rng.choice(("expired", "raced")) if rng.random() < config.p_late_order else None
        return CyclePlan(
            crash_runs=crash_runs,
            store_errors=store_errors,
            outbox_errors=outbox_errors,
            fanout=True,
            coordinators=coordinators,
            worker_crashes=worker_crashes,
            worker_kills=worker_kills,
            worker_deadlines=worker_deadlines,
            late_order=late_order,
        )

    def active_jobs(self) -> int:
        return sum(1 for s in self.schedules if not s.ended)

    def run_faults(self, plan: CyclePlan, cycle: int, run: int, points_hint: int) -> RunFaults:
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

    def _deps(
        self,
        container: Container,
        faults: RunFaults,
        tick: float | None,
        *,
        barrier: threading.Barrier | None = None,
        worker: Work | None = None,
        orders: ShardOrders | None = None,
    ) -> PollerDeps:
        """One run's adapters: the sharded job store, leases and publisher behind their fault points,
        the upstream noting each poll under `tick` (a worker's with fault points of its own)."""
        settings, ledger = self.settings, self.ledger
        store = DynamoJobStore(container.dynamodb, settings.table, layout=self.layout)
        kill_after = None if worker is None else worker.kill_after
        upstream_faults = None if worker is None else faults
        return PollerDeps(
            settings=settings,
            store=cast("JobStore", FaultStore(store, faults, barrier)),
            publisher=FlakyPublisher(SnsPublisher(container.sns, settings.topic_arn), faults),
            secrets=container.secrets,
            upstream=lambda: run_upstream(settings, ledger, tick, upstream_faults, kill_after),
            clock=self.clock if worker is None or worker.clock is None else worker.clock,
            leases=FaultLeases(DynamoShardLeases(container.dynamodb, settings.table), faults),
            orders=orders,
        )

    @staticmethod
    def _remaining(deadline_after: int | None) -> Callable[[], float]:
        """The Lambda's remaining time: plenty, or under the margin after `deadline_after` looks."""
        if deadline_after is None:
            return lambda: math.inf
        calls = iter(range(10**9))
        return lambda: math.inf if next(calls) < deadline_after else 1.0

    def invoke(
        self,
        container: Container,
        faults: RunFaults,
        barrier: threading.Barrier | None,
        plan: CyclePlan,
        tick: float | None,
        orders: ShardOrders | None = None,
    ) -> RunResult:
        """One scheduled run for `tick` (a coordinator with `orders`), or a manual one (None)."""
        deps = self._deps(container, faults, tick, barrier=barrier, orders=orders)
        role = "coordinator" if orders is not None else "poller" if tick is not None else "manual"
        following = next_tick(self.clock.now(), tick, self.settings.poll_period_s)
        holder = f"faultlab-{faults.tag}"
        return self._run(
            RunResult(faults, role=role),
            lambda: run_tick(deps, self._remaining(plan.deadline_after), tick, following, holder),
            barrier,
        )

    def work(self, container: Container, item: Work, tick: float) -> RunResult:
        """One delivery of a shard order to a poll worker."""
        deps = self._deps(container, item.faults, item.order.tick, worker=item)
        holder = f"faultlab-{item.faults.tag}-{item.role}"
        return self._run(
            RunResult(item.faults, role=item.role, shard=item.order.shard),
            lambda: run_order(deps, item.order, self._remaining(item.deadline_after), holder),
            None,
        )

    @staticmethod
    def _run(result: RunResult, start: Callable[[], Any], barrier: threading.Barrier | None) -> RunResult:
        try:
            result.report = asyncio.run(start())
        except Crash:
            result.crashed = True
        except Exception as exc:  # an error that escaped the run: the invocation failed
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

    def _cycle(
        self, cycle: int, plan: CyclePlan, points_hint: int, worker_hint: int = 4
    ) -> tuple[list[RunResult], dict[str, int]]:
        """Run one cycle (one tick of the schedule) as planned; returns the run results and how many
        times each job was polled (jobs polled only)."""
        before = self._request_counts()
        tick = self.clock.now()  # the schedule's time for this cycle: the clock moves between cycles
        if plan.fanout:
            results = self.fanout.run(plan, cycle, tick, worker_hint)
            self.result.fanout_cycles += 1
        else:
            runs = 2 if plan.overlap else 1
            faults = [self.run_faults(plan, cycle, run, points_hint) for run in range(runs)]
            if plan.overlap is None:
                results = [self.invoke(self.containers[0], faults[0], None, plan, tick)]
            else:
                results = self._overlap(plan, faults, tick)
        after = self._request_counts()
        polled: dict[str, int] = {}
        for s in self.schedules:
            where = f"{s.simulator}:{s.spec.job_id}"
            if (n := after.get(where, 0) - before.get(where, 0)) > 0:
                polled[s.key] = n
        self._tally_runs(results)
        if plan.deadline_after is not None:
            self.result.faults_injected["lambda-deadline"] += 1
        self.result.cycles += 1
        return results, polled

    def _overlap(self, plan: CyclePlan, faults: list[RunFaults], tick: float) -> list[RunResult]:
        """Two runs at once: manual runs (no tick, no lease) with a rendezvous or the second a little
        later, or two scheduled runs of one tick (a duplicated schedule) taking the shards' leases."""
        barrier = threading.Barrier(2) if plan.overlap == "rendezvous" else None
        delay = self.plan_rng.uniform(0.0, 0.3) if plan.overlap == "staggered" else 0.0
        run_tick_s = tick if plan.overlap == "scheduled" else None
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="faultlab-run") as pool:
            first = pool.submit(self.invoke, self.containers[0], faults[0], barrier, plan, run_tick_s)
            if delay:
                time.sleep(delay)
            second = pool.submit(self.invoke, self.containers[1], faults[1], barrier, plan, run_tick_s)
            results = [first.result(timeout=600), second.result(timeout=600)]
        self.result.overlaps += 1
        self.result.faults_injected[f"overlap:{plan.overlap}"] += 1
        if plan.overlap == "scheduled":
            polled = sum(r.report.shards_polled for r in results if r.report is not None)
            if polled > self.layout.shards:
                self.result.lease_violations += 1
                self.result.problems.append(
                    f"round {self.number}: two scheduled runs of one tick polled {polled} of "
                    f"{self.layout.shards} shards"
                )
        return results

    def _tally_runs(self, results: list[RunResult]) -> None:
        workers = ("worker", "redelivery", "late")
        for run in results:
            self.result.faults_injected.update(run.faults.injected)
            killed = (run.faults.crashed_at or "").startswith("kill:")
            if run.crashed and run.role in workers:
                if killed:
                    self.result.worker_timeouts += 1
                else:
                    self.result.worker_crashes += 1
            elif run.crashed:
                self.result.crashes += 1
            if run.role in workers and run.report is not None and run.report.deferred:
                self.result.worker_timeouts += 1
                self.result.faults_injected["worker-deadline"] += 1
            if run.aborted:
                self.result.aborted_cycles += 1
                self.result.faults_injected["cycle-aborted"] += 1
            if run.report is not None:
                self.result.conflicts += run.report.conflicts
                self.result.outbox_dead_lettered += run.report.dead_lettered
                self.scanner.scan("a cycle report", json.dumps(run.report.as_dict()))

    def _machine_errors(
        self,
        results: list[RunResult],
        hostile_timeouts: set[str],
        dead: bool,
        polled: dict[str, int],
        overlap: str | None,
    ) -> set[str]:
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
            # one poll of it in the cycle, by a run that neither died nor failed to write it
            single = polled.get(key, 0) == 1 and overlap in (None, "scheduled")
            exact = single and not dead and key not in failed
            self.by_key[key].count_machine_error(self.config, exact=exact)
            self.result.spurious_counted_exactly += exact
        self.result.spurious_poll_errors += len(spurious)
        return spurious

    def _cycles(self) -> None:
        config = self.config
        clean = True  # the first cycle sees every job for the first time: keep it plain
        points_hint = len(self.schedules)
        worker_hint = max(4, points_hint // self.layout.shards)
        for cycle in range(config.max_cycles):
            if all(s.ended for s in self.schedules):
                return
            plan = self._plan(clean, cycle)
            results, polled = self._cycle(cycle, plan, points_hint, worker_hint)
            dead = any(r.crashed or r.aborted for r in results)
            hostile_timeouts = self._check_hostile(results, polled, dead)
            spurious = self._machine_errors(results, hostile_timeouts, dead, polled, plan.overlap)
            self._advance(plan, results, polled, dead, spurious)
            if self.retracking:
                self._retrack()
            clean = any(s.tainted and not s.settled for s in self.schedules)
            if not dead and plan.fanout:
                worker_hint = max(4, max(r.faults.points for r in results if r.shard is not None))
            elif not dead:
                points_hint = max(4, max(r.faults.points for r in results))
            self._deliver_between_cycles()
        self.result.problems.append(
            f"round {self.number}: scripts not exhausted after {config.max_cycles} cycles"
        )

    def _covered(self, plan: CyclePlan, results: list[RunResult]) -> bool:
        """Every shard of the layout was polled to the end by some run of this tick."""
        shards = self.layout.shards
        reports = [(r, r.report) for r in results if r.report is not None]
        if plan.fanout:
            done = {r.shard for r, report in reports if r.shard is not None and report.shards_polled}
            return len(done) == shards
        return sum(report.shards_polled for _, report in reports) >= shards

    def _advance(
        self,
        plan: CyclePlan,
        results: list[RunResult],
        polled: dict[str, int],
        dead: bool,
        spurious: set[str],
    ) -> None:
        """Move each job whose poll was recorded cleanly to its next step; settle the ones not polled."""
        # A run that left polls for later (an upstream Retry-After resting an endpoint, time running
        # out, a shard nobody polled this tick) did not poll every pollable job, so "not polled" no
        # longer means "terminal in the store".
        throttled = any(r.report is not None and (r.report.throttled or r.report.deferred) for r in results)
        failed = set().union(*(r.faults.failed_keys for r in results)) | spurious
        unpolled_is_terminal = (
            plan.deadline_after is None and not dead and not throttled and self._covered(plan, results)
        )
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

    def _check_hostile(self, results: list[RunResult], polled: dict[str, int], dead: bool) -> set[str]:
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
        self._polled_twice()
        routes = self.rig.routes if self.rig is not None else defaults_of(self.settings)
        ground = ground_truth(routes, self.schedules, matched, sns.first_seen)
        seen = self._seen(slack)
        self._tally(routes, ground, seen, letters)
        later_lives = frozenset(s.story for s in self.schedules if s.generation > 1)
        self._second_lives(ground, seen, later_lives)
        email_dead = sum(1 for letter in letters if letter[2] == DEFAULT_EMAIL)
        self._check_emails(ground.routed.get(DEFAULT_EMAIL, set()), later_lives, email_dead)
        self._scan_kept()

    def _polled_twice(self) -> None:
        """No job story polled twice by the scheduled runs (coordinators, workers) of one tick."""
        twice = self.ledger.twice()
        self.result.polled_twice_in_cycle = len(twice)
        self.result.ticked_polls = self.ledger.ticked_polls()
        for story, tick, n in twice[:20]:
            self.result.problems.append(f"{story}: polled {n} times in the tick at {tick:.3f}")
        self.result.unattributed_polls = self.ledger.unknown
        if self.ledger.unknown:
            self.result.problems.append(f"round {self.number}: {self.ledger.unknown} polls of no known story")

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
