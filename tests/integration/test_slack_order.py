"""Per-job order at the Slack edge, with a standard SQS queue that may hand messages over in any order.

Within a batch the notifier sorts a job's records; across batches a transition waits (as delayed
copies that spend no receive) until the one it names as `previousTransitionId` has been posted,
refused for good, or is known never to have left the outbox, for at most `delivery_order_wait_s`.
With no route stored every transition goes to the default Slack webhook (destination `slack`);
the STARTED and SUCCEEDED transitions used here go nowhere else (they are not alert e-mail events).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from jobwatch_tools.local import notify

from jobwatch.adapters import aws
from jobwatch.adapters.dynamodb.jobs import _history_sk
from jobwatch.adapters.http.upstream import HttpUpstream
from jobwatch.app.poll_cycle import PollerDeps, run_cycle
from jobwatch.delivery.engine import MAX_DEFERRALS
from jobwatch.delivery.envelope import transition_from_sqs_body
from jobwatch.delivery.notifier import DESTINATION_ATTRIBUTE
from jobwatch.delivery.records import DEFERRALS_ATTRIBUTE, WAITING_SINCE_ATTRIBUTE, record_from_message
from jobwatch.domain.model import Event, Transition
from jobwatch.entrypoints.wiring import CLOCK, delivery_ledger, job_store, secret_resolver
from jobwatch.ports import Claim
from jobwatch_devkit.harness import LocalDeployment
from jobwatch_devkit.simulator import UpstreamSimulator, state
from jobwatch_devkit.slack_sink import SlackSink

pytestmark = pytest.mark.integration

EXPORT = "weaviate-export"


def _records(queue_url: str) -> list[dict[str, Any]]:
    """Take every visible message off the queue, as Lambda records (with message attributes)."""
    messages: list[dict[str, Any]] = []
    while True:
        batch = aws.sqs().receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0, MessageAttributeNames=["All"]
        )
        received = batch.get("Messages", [])
        if not received:
            return messages
        for message in received:
            messages.append(record_from_message(dict(message)))
            aws.sqs().delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def _two_transitions(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, job_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(STARTED, SUCCEEDED) records of one job, taken off the notifier's queue."""
    sim.add_job(EXPORT, job_id, [state("STARTED"), state("SUCCESS")], backend="s3")
    deployment.track(source=EXPORT, endpoint=sim_url, job_id=job_id, backend="s3")
    deployment.poll()
    deployment.poll()
    by_event = {
        transition_from_sqs_body(r["body"]).event: r for r in _records(deployment.settings.notify_queue_url)
    }
    return by_event[Event.STARTED], by_event[Event.SUCCEEDED]


def _posted_events(sink: SlackSink) -> list[str]:
    return [next(e for e in ("STARTED", "SUCCEEDED") if e in json.dumps(m.payload)) for m in sink.messages()]


def _with_attributes(record: dict[str, Any], **numbers: float) -> dict[str, Any]:
    attributes = {name: {"stringValue": str(value), "dataType": "Number"} for name, value in numbers.items()}
    return {**record, "messageAttributes": attributes}


def test_each_transition_names_its_predecessor_and_a_batch_is_posted_in_job_order(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    sim.add_job("weaviate-export", "exp-order", [state("STARTED"), state("SUCCESS")], backend="s3")
    deployment.track(source="weaviate-export", endpoint=sim_url, job_id="exp-order", backend="s3")
    deployment.poll()
    deployment.poll()
    records = _records(deployment.settings.notify_queue_url)
    by_event = {transition_from_sqs_body(r["body"]).event: r for r in records}
    started, succeeded = by_event["STARTED"], by_event["SUCCEEDED"]
    first = transition_from_sqs_body(started["body"])
    assert first.previous_transition_id is None
    assert transition_from_sqs_body(succeeded["body"]).previous_transition_id == first.transition_id

    # SQS hands them over swapped in one batch: the notifier puts them back in order.
    report = notify().deliver({"Records": [succeeded, started]})
    assert (report.delivered, report.failures) == (2, [])
    posted = [m.raw for m in sink.messages()]
    assert "STARTED" in posted[0] and "SUCCEEDED" in posted[1]


def test_a_transition_that_arrives_before_its_predecessor_waits_for_it_across_batches(
    make_deployment: Callable[..., LocalDeployment], sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    deployment = make_deployment({"JOBWATCH_DELIVERY_ORDER_RETRY_S": "1"})
    started, succeeded = _two_transitions(deployment, sim, sim_url, "exp-cross-batch")
    queue = deployment.settings.notify_queue_url
    notifier = notify()

    # SUCCEEDED comes first, alone in its batch: it is deferred, not posted and not failed.
    report = notifier.deliver({"Records": [succeeded]})
    assert (report.delivered, report.deferred, report.failures) == (0, 1, [])
    assert sink.messages() == []
    time.sleep(1.1)
    (copy,) = _records(queue)  # the delayed copy, carrying how long it has waited
    assert copy["body"] == succeeded["body"]
    assert copy["messageAttributes"][DEFERRALS_ATTRIBUTE]["stringValue"] == "1"
    assert copy["messageAttributes"][DESTINATION_ATTRIBUTE]["stringValue"] == "slack"  # it waits there only
    waiting_since = float(copy["messageAttributes"][WAITING_SINCE_ATTRIBUTE]["stringValue"])
    assert time.time() - 5 < waiting_since <= time.time()

    # Offered again before STARTED is in Slack, it waits again, keeping its first waiting time.
    report = notifier.deliver({"Records": [copy]})
    assert (report.delivered, report.deferred) == (0, 1)
    assert notifier.deliver({"Records": [started]}).delivered == 1
    time.sleep(2.1)
    (second_copy,) = _records(queue)
    assert second_copy["messageAttributes"][DEFERRALS_ATTRIBUTE]["stringValue"] == "2"
    assert float(second_copy["messageAttributes"][WAITING_SINCE_ATTRIBUTE]["stringValue"]) == waiting_since
    report = notifier.deliver({"Records": [second_copy]})
    assert (report.delivered, report.deferred) == (1, 0)
    assert _posted_events(sink) == ["STARTED", "SUCCEEDED"]


def test_a_predecessor_refused_for_good_does_not_hold_its_successor(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    started, succeeded = _two_transitions(deployment, sim, sim_url, "exp-refused-first")
    ledger = delivery_ledger(deployment.settings)
    first = transition_from_sqs_body(started["body"]).transition_id
    assert ledger.claim("slack", first, 120, time.time()) is Claim.CLAIMED
    ledger.finish("slack", first, "FAILED_PERMANENT", "HTTP 400: invalid_blocks", time.time())

    report = notify().deliver({"Records": [succeeded]})
    assert (report.delivered, report.deferred) == (1, 0)
    assert _posted_events(sink) == ["SUCCEEDED"]


class _FailingPublisher:
    def publish(self, transition: Transition) -> str:
        raise ClientError({"Error": {"Code": "InternalError", "Message": "SNS unavailable"}}, "Publish")


def test_transition_standing_follows_a_transition_from_outbox_to_history(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str
) -> None:
    settings = deployment.settings
    store = job_store(settings)
    sim.add_job(EXPORT, "exp-standing", [state("STARTED")], backend="s3")
    deployment.track(source=EXPORT, endpoint=sim_url, job_id="exp-standing", backend="s3")
    deps = PollerDeps(
        settings=settings,
        store=store,
        publisher=_FailingPublisher(),
        secrets=secret_resolver(settings.secret_cache_s),
        upstream=lambda: HttpUpstream(settings),
        clock=CLOCK,
    )
    asyncio.run(run_cycle(deps))
    (owed,) = store.pending_transitions()
    tid = owed.transition.transition_id
    assert store.transition_standing(tid) == "OWED"
    store.mark_dead_lettered(owed.transition, "SNS unavailable 8 times", time.time())
    assert store.transition_standing(tid) == "DEAD_LETTERED"
    store.mark_published(owed.transition, "m-1", time.time())  # a late settle never rewrites history
    assert store.transition_standing(tid) == "DEAD_LETTERED"
    assert store.transition_standing(tid.rsplit("#", 1)[0] + "#99") is None  # never recorded
    assert store.transition_standing(tid.rsplit("#", 1)[0] + "#test-1") is None  # a TEST notification


def test_a_predecessor_that_never_left_the_outbox_does_not_hold_its_successor(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    started, succeeded = _two_transitions(deployment, sim, sim_url, "exp-outbox-gave-up")
    first = transition_from_sqs_body(started["body"])
    # As the outbox records a transition it gave up on after its retry cap (SNS never carried it).
    key = {"pk": {"S": f"JOB#{first.job_key}"}, "sk": {"S": _history_sk(first.transition_id)}}
    aws.dynamodb().update_item(
        TableName=deployment.settings.table,
        Key=key,
        UpdateExpression="SET delivery = :dead",
        ExpressionAttributeValues={":dead": {"S": "DEAD_LETTERED"}},
    )
    assert job_store(deployment.settings).transition_standing(first.transition_id) == "DEAD_LETTERED"

    report = notify().deliver({"Records": [succeeded]})
    assert (report.delivered, report.deferred) == (1, 0)


def test_a_transition_posts_out_of_order_once_it_has_waited_the_longest_allowed(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    _, succeeded = _two_transitions(deployment, sim, sim_url, "exp-waited-too-long")
    wait = deployment.settings.delivery_order_wait_s
    notifier = notify()

    fresh = _with_attributes(succeeded, jobwatchWaitingSince=time.time() - wait + 60, jobwatchDeferrals=30)
    report = notifier.deliver({"Records": [fresh]})
    assert (report.delivered, report.deferred, report.order_waits_expired) == (0, 1, 0)

    stale = _with_attributes(succeeded, jobwatchWaitingSince=time.time() - wait - 1, jobwatchDeferrals=31)
    report = notifier.deliver({"Records": [stale]})
    assert (report.delivered, report.deferred, report.order_waits_expired) == (1, 0, 1)
    assert _posted_events(sink) == ["SUCCEEDED"]


def test_a_message_deferred_too_often_goes_back_to_sqs_where_the_redrive_policy_bounds_it(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    _, succeeded = _two_transitions(deployment, sim, sim_url, "exp-deferred-too-often")
    worn = _with_attributes(succeeded, jobwatchWaitingSince=time.time(), jobwatchDeferrals=MAX_DEFERRALS)
    report = notify().deliver({"Records": [worn]})
    assert (report.delivered, report.deferred, report.failures) == (0, 0, [succeeded["messageId"]])

    garbled = {**succeeded, "messageAttributes": {DEFERRALS_ATTRIBUTE: {"stringValue": "nan"}}}
    report = notify().deliver({"Records": [garbled]})
    assert (report.deferred, report.failures) == (1, [])  # an unreadable count counts as none
    assert sink.messages() == []


def test_a_rate_limit_defers_the_rest_of_the_batch_without_spending_receives(
    make_deployment: Callable[..., LocalDeployment], sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    deployment = make_deployment({"JOBWATCH_DELIVERY_MAX_RETRY_AFTER_S": "0"})
    for job_id in ("exp-throttled-a", "exp-throttled-b", "exp-throttled-c"):
        sim.add_job(EXPORT, job_id, [state("STARTED")], backend="s3")
        deployment.track(source=EXPORT, endpoint=sim_url, job_id=job_id, backend="s3")
    deployment.poll()
    queue = deployment.settings.notify_queue_url
    records = _records(queue)
    assert len(records) == 3
    sink.script(["rate_limited"])  # 429 with Retry-After: 1 on the first post

    report = notify().deliver({"Records": records})
    assert (report.delivered, report.deferred, report.retried, report.failures) == (0, 3, 0, [])
    assert len(sink.rejected()) == 1  # one post tried; the others were not sent into the limit
    time.sleep(1.1)
    copies = _records(queue)
    assert sorted(r["body"] for r in copies) == sorted(r["body"] for r in records)
    assert notify().deliver({"Records": copies}).delivered == 3


def test_duplicates_of_a_waiting_message_collapse_into_one_waiting_copy(
    make_deployment: Callable[..., LocalDeployment], sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    """SQS delivers at least once: without a single standing copy, every duplicate of a waiting
    message would spawn copies of its own, and they would multiply with every look."""
    deployment = make_deployment({"JOBWATCH_DELIVERY_ORDER_RETRY_S": "1"})
    started, succeeded = _two_transitions(deployment, sim, sim_url, "exp-collapse")
    queue = deployment.settings.notify_queue_url
    notifier = notify()

    # The same message handed over twice (one batch, then another): one copy waits, one is dropped.
    first = notifier.deliver({"Records": [succeeded]})
    second = notifier.deliver({"Records": [succeeded]})
    assert (first.deferred, first.collapsed, second.deferred, second.collapsed) == (1, 0, 0, 1)
    time.sleep(1.1)
    (copy,) = _records(queue)

    # The standing copy comes back (twice, as SQS may): it waits again once; its duplicate is dropped.
    again = notifier.deliver({"Records": [copy, copy]})
    assert (again.deferred, again.collapsed, again.failures) == (1, 1, [])
    assert notifier.deliver({"Records": [started]}).delivered == 1
    time.sleep(2.1)
    (last,) = _records(queue)
    assert notifier.deliver({"Records": [last]}).delivered == 1
    assert _posted_events(sink) == ["STARTED", "SUCCEEDED"]
    assert _records(queue) == []


def test_a_predecessor_still_in_hand_is_waited_for_however_long_its_retries_take(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    """The order-wait bound counts only the time a predecessor is out of sight: one that is being
    retried (a standing deferred copy) or posted (a live claim) keeps its successors waiting."""
    started, succeeded = _two_transitions(deployment, sim, sim_url, "exp-in-hand")
    ledger = delivery_ledger(deployment.settings)
    first = transition_from_sqs_body(started["body"]).transition_id
    notifier = notify()
    long_ago = time.time() - deployment.settings.delivery_order_wait_s - 600

    # STARTED has a standing deferred copy (as after a failed post): SUCCEEDED waits, its clock reset.
    assert ledger.hand_wait_to("slack", first, "c0ffee", None, time.time(), 900)
    stale = _with_attributes(succeeded, jobwatchWaitingSince=long_ago, jobwatchDeferrals=40)
    report = notifier.deliver({"Records": [stale]})
    assert (report.delivered, report.deferred, report.order_waits_expired) == (0, 1, 0)

    # Or a notifier is posting it right now (live claim): the same.
    assert ledger.claim("slack", first, 120, time.time()) is Claim.CLAIMED
    report = notifier.deliver({"Records": [stale]})
    assert (report.delivered, report.order_waits_expired) == (0, 0)

    # A claim whose worker died (lease run out) and no standing copy: out of sight, the bound applies.
    aws.dynamodb().update_item(
        TableName=deployment.settings.table,
        Key={"pk": {"S": f"DELIVERY#slack#{first}"}, "sk": {"S": "CLAIM"}},
        UpdateExpression="SET leaseUntil = :past",
        ExpressionAttributeValues={":past": {"N": f"{time.time() - 1:.3f}"}},
    )
    aws.dynamodb().delete_item(
        TableName=deployment.settings.table,
        Key={"pk": {"S": f"DELIVERY#slack#{first}"}, "sk": {"S": "WAIT"}},
    )
    assert ledger.state("slack", first, time.time()) == "STALE"
    report = notifier.deliver({"Records": [stale]})
    assert (report.delivered, report.order_waits_expired) == (1, 1)
    assert _posted_events(sink) == ["SUCCEEDED"]
