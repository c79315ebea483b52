"""Fault injection: random job stories under faults must lose, double and invent nothing.

The first test is the bounded run of `jobwatch_devkit.faultlab` that `make test` includes (`make soak`
runs the long one): random schedules over several sources with upstream faults, SNS failures before and
after the publish, crashes at random points of the cycle, DynamoDB errors, overlapping poller runs, a
Lambda deadline, fan-out ticks (coordinators and poll workers over K shards with leases: workers that
crash or time out, duplicated coordinators, late orders; no job polled twice in a tick), Slack failures
(including posts that went through although the client saw an error) and SQS redeliveries, checked
against ground truth computed from the scripts alone. The lab stores routes that send transitions to
every destination type (Slack webhook and app channels, a signed webhook, an EventBridge bus, e-mail),
each with faults of its own, and checks each destination against where the routes send the ground truth
(lost, duplicated, false, out of order). See the module docstring of `jobwatch_devkit.faultlab` for the
rules and the invariants.

The tests after it pin down, deterministically, problems the random runs found: per-job order at the
Slack edge, an outbox-drain error that aborted the cycle, a transition held back for order that the
queue's redrive policy dead-lettered before its predecessor came back, and a fresh transition published
ahead of an owed one when the outbox could not be read.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from jobwatch.adapters import aws
from jobwatch.adapters.dynamodb.jobs import DynamoJobStore
from jobwatch.adapters.http.upstream import HttpUpstream
from jobwatch.adapters.sns import SnsPublisher
from jobwatch.app.poll_cycle import PollerDeps, run_cycle
from jobwatch.domain.model import Phase, Transition
from jobwatch.domain.shards import ShardLayout, layout_of
from jobwatch.entrypoints.wiring import job_store, secret_resolver
from jobwatch.ports import PendingTransition
from jobwatch_devkit.fakes import FakeClock
from jobwatch_devkit.faultlab import FaultLab, LabConfig, lab_env
from jobwatch_devkit.harness import LocalDeployment
from jobwatch_devkit.simulator import UpstreamSimulator, state
from jobwatch_devkit.slack_sink import SlackSink

pytestmark = pytest.mark.integration

EXPORT = "weaviate-export"
SEED = 20260611
ROUNDS = 2
SCHEDULES_PER_ROUND = 110


def test_random_schedules_under_faults_lose_double_and_invent_nothing(
    make_deployment: Callable[..., LocalDeployment], sink: SlackSink
) -> None:
    lab = FaultLab(
        LabConfig(seed=SEED, rounds=ROUNDS, schedules_per_round=SCHEDULES_PER_ROUND, simulators=4),
        make_deployment,
        sink,
    )
    summary = lab.run()
    print(json.dumps(summary))
    why = "\n".join(lab.problems[:30])

    assert summary["schedules"] == ROUNDS * SCHEDULES_PER_ROUND
    assert summary["transitions"] > 2 * summary["schedules"]
    assert summary["lost"] == 0, why
    assert summary["duplicated"] == 0, why
    assert summary["false_alerts"] == 0, why
    assert summary["delivered"] == summary["deliveries_expected"] > summary["transitions"], why
    assert summary["lost_sns"] == 0, why
    assert summary["state_mismatches"] == 0, why
    assert summary["outbox_left"] == 0, why
    assert summary["slack_queue_left"] == 0, why
    assert summary["stuck_jobs"] == 0, why
    assert summary["slack_refused"] == 0, why
    assert summary["out_of_order_sns"] == 0, why
    assert summary["out_of_order_slack"] == 0, why
    assert summary["slack_deferred"] >= 1  # some transitions really waited for their predecessor
    # E-mail: every routed transition (FAILED, CANCELED) once; repeats only after a lost answer.
    assert (summary["email_lost"], summary["email_duplicated"], summary["email_false"]) == (0, 0, 0), why
    assert summary["emailed"] == summary["emails_expected"] >= 10

    # The run really went through the faults it is meant to survive.
    injected = summary["faults_injected"]
    assert summary["crashes"] >= 1 and summary["overlaps"] >= 2
    assert summary["sns_redeliveries"] >= 1  # publishes that SNS accepted but the caller saw fail
    assert injected.get("publish-error-after", 0) >= 1 and injected.get("publish-error-before", 0) >= 1
    assert sum(n for kind, n in injected.items() if kind.startswith("upstream:")) > summary["schedules"]
    assert sum(n for kind, n in injected.items() if kind.startswith("slack:")) >= 5
    assert (
        injected.get("email:publish-error-before", 0) >= 1
        and injected.get("email:publish-error-after", 0) >= 1
    )
    assert sum(n for kind, n in injected.items() if kind.startswith("sqs:")) >= 3
    for event in ("STARTED", "SUCCEEDED", "FAILED", "LOST", "UNREACHABLE", "AUTH_FAILED", "RECOVERED"):
        assert summary["events"].get(event, 0) >= 1, event

    # Fan-out (issue 14): scheduled runs take each shard's lease for their tick; no job is polled twice
    # in a tick, whatever dies, runs late or runs twice.
    assert summary["polled_twice_in_cycle"] == 0, why
    assert summary["lease_violations"] == 0, why
    assert summary["unattributed_polls"] == 0, why
    assert summary["ticked_polls"] > summary["schedules"]
    assert summary["shards_used"] >= 2 * ROUNDS  # the jobs really sit on several index shards
    assert summary["fanout_cycles"] >= 5
    assert summary["worker_crashes"] >= 1 and summary["redelivered_orders"] >= 1
    assert summary["worker_timeouts"] >= 1
    assert injected.get("kill:poll-in-flight", 0) + injected.get("worker-deadline", 0) >= 1
    assert summary["overlapping_coordinators"] >= 1
    assert summary["late_orders"] >= 1
    assert summary["orders_skipped"] >= summary["overlapping_coordinators"] + summary["late_orders"]

    # Stored routes: every destination type, each with its own invariants and its own faults.
    destinations = summary["destinations"]
    assert set(destinations) == {
        "slack-webhook",
        "slack-app:C0FLSEARCH1",
        "slack-app:C0FLONCALL1",
        "webhook",
        "eventbridge",
        "email",
    }
    for name, tally in destinations.items():
        assert tally["ok"], (name, tally, why)
        assert (tally["lost"], tally["duplicated"], tally["false"]) == (0, 0, 0), (name, why)
        assert tally["delivered"] == tally["expected"] >= 10, (name, tally)
        assert tally["refused"] == 0, (name, why)
        if tally["ordered"]:
            assert tally["out_of_order"] == 0, (name, why)
    # The routes do not send everything everywhere (label and event matches, continue: false).
    assert destinations["slack-webhook"]["expected"] < summary["transitions"]
    assert destinations["eventbridge"]["expected"] < summary["transitions"]
    for prefix in ("slack-app:", "eventbridge:", "webhook:"):
        assert sum(n for kind, n in injected.items() if kind.startswith(prefix)) >= 3, prefix


# -- found by the random runs ----------------------------------------------------------------------------


def _slack_transition_ids(sink: SlackSink) -> list[str]:
    out = []
    for message in sink.messages():
        text = json.dumps(message.payload)
        out.append(text.split("Transition `", 1)[1].split("`", 1)[0])
    return out


def test_a_failed_slack_post_does_not_let_the_jobs_next_transition_overtake_it(
    make_deployment: Callable[..., LocalDeployment], sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    # A failed post is retried after JOBWATCH_DELIVERY_RETRY_BASE_S (30 s in production); 1 s here.
    deployment = make_deployment(
        {
            "JOBWATCH_ADAPTIVE_POLLING": "false",
            "JOBWATCH_DELIVERY_ORDER_RETRY_S": "1",
            "JOBWATCH_DELIVERY_RETRY_BASE_S": "1",
        }
    )
    sim.add_job(EXPORT, "exp-ordered", [state("STARTED"), state("SUCCESS")], backend="s3")
    deployment.track(source=EXPORT, endpoint=sim_url, job_id="exp-ordered", backend="s3")
    deployment.poll()
    deployment.poll()
    published = [t.transition_id for t in deployment.published()]
    assert [t.event for t in deployment.published()] == ["STARTED", "SUCCEEDED"]

    sink.script(["server_error"])  # Slack fails the first post once (a retryable 500)
    deployment.deliver()
    deadline = time.monotonic() + 15
    while len(sink.messages()) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        deployment.deliver()

    assert sorted(_slack_transition_ids(sink)) == sorted(published)  # each posted once: no loss, no dup
    # The reader sees "export finished" before "export started".
    assert _slack_transition_ids(sink) == published


def test_a_transition_waiting_for_its_predecessor_is_not_dead_lettered(
    make_deployment: Callable[..., LocalDeployment],
    sim: UpstreamSimulator,
    sim_url: str,
    sink: SlackSink,
) -> None:
    """One Slack 500 on a job's first message must cost the job neither its order nor its next one.

    The first message is retried after JOBWATCH_DELIVERY_RETRY_BASE_S (30 s in production, 6 s here);
    its successor looks again every 1 s, 2 s, 4 s, ... (5 s, 10 s, ... in production). Each look is a
    delayed copy, not a batch-item failure, so none of them counts towards the redrive policy's
    maxReceiveCount (5, as in the template) that once sent such a successor to the dead-letter queue.
    """
    deployment = make_deployment(
        {
            "JOBWATCH_ADAPTIVE_POLLING": "false",
            "JOBWATCH_DELIVERY_ORDER_RETRY_S": "1",
            "JOBWATCH_DELIVERY_RETRY_BASE_S": "6",
        }
    )
    sim.add_job(EXPORT, "exp-waiting", [state("STARTED"), state("SUCCESS")], backend="s3")
    deployment.track(source=EXPORT, endpoint=sim_url, job_id="exp-waiting", backend="s3")

    deployment.poll()  # STARTED on the notify queue
    sink.script(["server_error"])
    first = deployment.deliver()  # Slack answers 500: STARTED is tried again in 6 s
    assert (first.delivered, first.retried) == (0, 1)
    deployment.poll()  # SUCCEEDED on the notify queue, waiting for STARTED
    published = [t.transition_id for t in deployment.published()]
    assert [t.event for t in deployment.published()] == ["STARTED", "SUCCEEDED"]

    deferred = 0
    deadline = time.monotonic() + 30
    while len(sink.messages()) < 2 and time.monotonic() < deadline:
        deferred += deployment.deliver().deferred
        time.sleep(0.5)

    dlq = aws.sqs().get_queue_attributes(
        QueueUrl=deployment.settings.notify_dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert dlq["ApproximateNumberOfMessages"] == "0"
    assert deferred >= 3  # SUCCEEDED really waited (1 s + 2 s + 4 s) while STARTED was retried at 6 s
    assert _slack_transition_ids(sink) == published


class _TransientOutboxError(DynamoJobStore):
    """A DynamoJobStore whose first `mark_published` fails as DynamoDB throttling would (nothing applied)."""

    def __init__(self, client: Any, table: str, layout: ShardLayout) -> None:
        super().__init__(client, table, layout=layout)
        self.failures = 1

    def mark_published(self, transition: Transition, message_id: str, now_s: float) -> None:
        if self.failures:
            self.failures -= 1
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "Rate exceeded"}},
                "UpdateItem",
            )
        super().mark_published(transition, message_id, now_s)


class _FailingFor:
    """The real SNS publisher, except for one job id."""

    def __init__(self, real: SnsPublisher, job_id: str) -> None:
        self.real = real
        self.job_id = job_id

    def publish(self, transition: Transition) -> str:
        if transition.job_id == self.job_id:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "SNS unavailable"}}, "Publish")
        return self.real.publish(transition)


def test_a_transient_error_while_draining_the_outbox_does_not_stop_the_cycle(
    make_deployment: Callable[..., LocalDeployment], sim: UpstreamSimulator, sim_url: str
) -> None:
    deployment = make_deployment(lab_env(LabConfig()))
    settings = deployment.settings
    sim.add_job(EXPORT, "exp-owed", [state("STARTED")], backend="s3")
    sim.add_job(EXPORT, "exp-finishing", [state("STARTED"), state("SUCCESS")], backend="s3")
    for job_id in ("exp-owed", "exp-finishing"):
        deployment.track(source=EXPORT, endpoint=sim_url, job_id=job_id, backend="s3")
    clock = FakeClock(time.time())
    real = SnsPublisher(aws.sns(), settings.topic_arn)
    store = job_store(settings)

    def deps(store: DynamoJobStore, publisher: Any) -> PollerDeps:
        return PollerDeps(
            settings=settings,
            store=store,
            publisher=publisher,
            secrets=secret_resolver(settings.secret_cache_s),
            upstream=lambda: HttpUpstream(settings),
            clock=clock,
        )

    # Cycle 1: SNS fails for one job, so its STARTED stays owed in the outbox.
    first = asyncio.run(run_cycle(deps(store, _FailingFor(real, "exp-owed"))))
    assert (first.transitions, first.published, first.publish_failures) == (2, 1, 1)

    # Cycle 2: republishing the owed transition works, but recording that hits one throttling error.
    clock.advance(600)  # past the outbox backoff after one failed attempt
    flaky = _TransientOutboxError(aws.dynamodb(), settings.table, layout_of(settings))
    second = asyncio.run(run_cycle(deps(flaky, real)))  # today: raises, and nothing is polled

    assert second.polled == 2  # every job is still polled
    finishing = store.get_job(next(j.key for j in deployment.jobs() if j.spec.job_id == "exp-finishing"))
    assert finishing is not None and finishing.snapshot is not None
    assert finishing.snapshot.phase is Phase.SUCCEEDED


class _UnreadableOutbox(DynamoJobStore):
    """A DynamoJobStore whose first read of the outbox fails as DynamoDB throttling would."""

    def __init__(self, client: Any, table: str, layout: ShardLayout) -> None:
        super().__init__(client, table, layout=layout)
        self.failures = 1

    def pending_transitions(self) -> list[PendingTransition]:
        if self.failures:
            self.failures -= 1
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "Rate exceeded"}},
                "Query",
            )
        return super().pending_transitions()


def test_when_the_outbox_cannot_be_read_a_newer_transition_does_not_overtake_an_owed_one(
    make_deployment: Callable[..., LocalDeployment], sim: UpstreamSimulator, sim_url: str
) -> None:
    """A failed outbox read leaves `blocked_jobs` empty; the job item itself must say what it owes."""
    deployment = make_deployment(lab_env(LabConfig()))
    settings = deployment.settings
    sim.add_job(EXPORT, "exp-owed", [state("STARTED"), state("SUCCESS")], backend="s3")
    deployment.track(source=EXPORT, endpoint=sim_url, job_id="exp-owed", backend="s3")
    clock = FakeClock(time.time())
    real = SnsPublisher(aws.sns(), settings.topic_arn)
    store = job_store(settings)

    def cycle(store: DynamoJobStore, publisher: Any) -> None:
        deps = PollerDeps(
            settings=settings,
            store=store,
            publisher=publisher,
            secrets=secret_resolver(settings.secret_cache_s),
            upstream=lambda: HttpUpstream(settings),
            clock=clock,
        )
        asyncio.run(run_cycle(deps))
        clock.advance(600)  # past the outbox backoff

    cycle(store, _FailingFor(real, "exp-owed"))  # STARTED recorded; SNS fails, so it is owed
    unreadable = _UnreadableOutbox(aws.dynamodb(), settings.table, layout=layout_of(settings))
    cycle(unreadable, real)  # SUCCEEDED recorded
    cycle(store, real)  # the outbox can be read again: whatever is owed goes out

    assert store.pending_transitions() == []
    assert [t.event for t in deployment.published()] == ["STARTED", "SUCCEEDED"]
