"""Slack delivery from the SQS queue: at most one post per transition, honest retries, one dead letter.

Transitions reach the notifier's queue the real way (a poll cycle publishes to SNS, SNS fans out to
SQS). With no route stored, the notifier sends every transition to the deployment's default Slack
webhook (destination `slack`, whose claims are `DELIVERY#slack#<transitionId>`). It runs through
`drain_notify_queue` (the local stand-in for the SQS event source mapping: records reported as
failures stay on the queue) or, for redeliveries, straight through the notifier function's
`Notifier.deliver` (`jobwatch_tools.local.notify()`) with the records SQS would hand to the Lambda
function again.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from jobwatch_tools.local import notify

from jobwatch.adapters import aws
from jobwatch.adapters.sns import SnsPublisher
from jobwatch.delivery.envelope import transition_from_sqs_body
from jobwatch.delivery.records import BatchReport, record_from_message
from jobwatch.domain.model import Transition
from jobwatch.entrypoints.wiring import delivery_ledger
from jobwatch.ports import Claim
from jobwatch.settings import NotifierSettings, load_settings
from jobwatch_devkit.harness import LocalDeployment
from jobwatch_devkit.simulator import UpstreamSimulator, state
from jobwatch_devkit.slack_sink import SinkResponse, SlackSink

pytestmark = pytest.mark.integration

EXPORT = "weaviate-export"


@pytest.fixture
def deployment(make_deployment: Callable[..., LocalDeployment]) -> LocalDeployment:
    """A 429 goes straight back to the queue instead of being slept on in process."""
    return make_deployment({"JOBWATCH_DELIVERY_MAX_RETRY_AFTER_S": "0"})


# -- helpers ---------------------------------------------------------------------------------------------


def _transition(
    deployment: LocalDeployment,
    sim: UpstreamSimulator,
    endpoint: str,
    job_id: str,
    *,
    error: str | None = None,
) -> Transition:
    """Track a job and poll once: one transition lands on the Slack queue through SNS."""
    step = state("FAILED", error=error) if error else state("STARTED")
    sim.add_job(EXPORT, job_id, [step], backend="s3")
    deployment.track(source=EXPORT, endpoint=endpoint, job_id=job_id, backend="s3")
    report = deployment.poll()
    assert (report.transitions, report.published) == (1, 1)
    (transition,) = [t for t in deployment.published() if t.job_id == job_id]
    return transition


def _depth(queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages on a queue."""
    attributes = aws.sqs().get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def _delayed(queue_url: str) -> int:
    """Messages sent with DelaySeconds that are not visible yet (the notifier's deferred copies)."""
    attributes = aws.sqs().get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesDelayed"])


def _deliver_until(
    deployment: LocalDeployment, done: Callable[[BatchReport], bool], timeout: float = 6.0
) -> tuple[BatchReport, float]:
    """Drain repeatedly until a drain's report satisfies `done` (delayed copies come back later)."""
    started = time.monotonic()
    while True:
        report = deployment.deliver()
        if done(report) or time.monotonic() - started > timeout:
            return report, time.monotonic() - started
        time.sleep(0.2)


def _peek_later(queue_url: str, timeout: float = 6.0) -> list[dict[str, Any]]:
    """The visible messages once a delayed one has become visible."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        found = _peek(queue_url)
        if found:
            return found
        time.sleep(0.2)
    return []


def _take(queue_url: str, timeout: float = 6.0) -> dict[str, Any]:
    """Receive and delete the next message (waiting for a delayed one), as a Lambda record."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        messages = (
            aws.sqs()
            .receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=1,
                MessageAttributeNames=["All"],
                AttributeNames=["All"],
            )
            .get("Messages", [])
        )
        if messages:
            aws.sqs().delete_message(QueueUrl=queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
            return record_from_message(dict(messages[0]))
        time.sleep(0.2)
    raise AssertionError("no message came")


def _peek(queue_url: str) -> list[dict[str, Any]]:
    """The visible messages as Lambda records, left visible (receive with a zero visibility timeout)."""
    messages = (
        aws.sqs()
        .receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        .get("Messages", [])
    )
    return [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m.get("Attributes", {}),
            "messageAttributes": m.get("MessageAttributes", {}),
            "eventSource": "aws:sqs",
        }
        for m in messages
    ]


def _claim_state(transition_id: str) -> str | None:
    """The state of the Slack delivery claim of one transition (None: no claim)."""
    key = {"pk": {"S": f"DELIVERY#slack#{transition_id}"}, "sk": {"S": "CLAIM"}}
    response = aws.dynamodb().get_item(
        TableName=load_settings(NotifierSettings).table, Key=key, ConsistentRead=True
    )
    item = response.get("Item")
    return None if item is None else str(item["state"]["S"])


def _counts(report: BatchReport) -> tuple[int, int, int, int, int]:
    return report.delivered, report.duplicates, report.retried, report.dead_lettered, len(report.failures)


def _deliver_until_posted(deployment: LocalDeployment, timeout: float = 6.0) -> tuple[BatchReport, float]:
    """Drain repeatedly until something is posted (a deferred copy comes back after its delay)."""
    return _deliver_until(deployment, lambda report: report.delivered > 0, timeout)


# -- duplicates ------------------------------------------------------------------------------------------


def test_sqs_redelivery_of_a_posted_transition_never_posts_twice(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    transition = _transition(deployment, sim, sim_url, "exp-redelivered")
    queue = deployment.settings.notify_queue_url
    (record,) = _peek(queue)
    assert transition_from_sqs_body(record["body"]) == transition
    notifier = notify()

    # The same record twice in one batch (SQS at-least-once), then again in a later batch.
    report = notifier.deliver({"Records": [record, record]})
    assert _counts(report) == (1, 1, 0, 0, 0)
    assert _claim_state(transition.transition_id) == "DELIVERED"
    report = notifier.deliver({"Records": [record]})
    assert _counts(report) == (0, 1, 0, 0, 0)
    # The original message is still on the queue: draining it is one more duplicate, not a post.
    assert _counts(deployment.deliver()) == (0, 1, 0, 0, 0)
    assert _depth(queue) == (0, 0)

    (message,) = sink.messages()
    assert f"`{transition.transition_id}`" in json.dumps(message.payload)
    assert sink.rejected() == []


def test_a_transition_published_twice_is_posted_once(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    transition = _transition(deployment, sim, sim_url, "exp-published-twice")
    # The outbox republishes a transition whose publish looked failed: SNS then fans it out again.
    publisher = SnsPublisher(aws.sns(), deployment.settings.topic_arn)
    publisher.publish(transition)
    assert _depth(deployment.settings.notify_queue_url) == (2, 0)

    assert _counts(deployment.deliver()) == (1, 1, 0, 0, 0)
    publisher.publish(transition)
    assert _counts(deployment.deliver()) == (0, 1, 0, 0, 0)
    assert len(sink.messages()) == 1
    assert _depth(deployment.settings.notify_queue_url) == (0, 0)


def test_a_claim_held_by_another_worker_defers_the_post_until_its_lease_ends(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    transition = _transition(deployment, sim, sim_url, "exp-claimed")
    queue = deployment.settings.notify_queue_url
    (record,) = _peek(queue)
    ledger = delivery_ledger(deployment.settings)
    notifier = notify()

    # Another notifier is posting this transition right now (live lease): do not post it a second time.
    # The record is deferred (a delayed copy; the original is acknowledged), spending no receive.
    assert ledger.claim("slack", transition.transition_id, 120, time.time()) is Claim.CLAIMED
    report = notifier.deliver({"Records": [record]})
    assert _counts(report) == (0, 0, 0, 0, 0) and report.deferred == 1
    assert _delayed(queue) == 1
    assert sink.messages() == [] and sink.rejected() == []
    assert _claim_state(transition.transition_id) == "IN_PROGRESS"  # still the other notifier's

    # That notifier died without finishing: once its lease has run out, the redelivery posts.
    assert ledger.claim("slack", transition.transition_id, -1, time.time()) is Claim.BUSY
    aws.dynamodb().update_item(
        TableName=deployment.settings.table,
        Key={"pk": {"S": f"DELIVERY#slack#{transition.transition_id}"}, "sk": {"S": "CLAIM"}},
        UpdateExpression="SET leaseUntil = :past",
        ExpressionAttributeValues={":past": {"N": f"{time.time() - 1:.3f}"}},
    )
    report = notifier.deliver({"Records": [record]})
    assert _counts(report) == (1, 0, 0, 0, 0)
    assert len(sink.messages()) == 1
    assert _claim_state(transition.transition_id) == "DELIVERED"


# -- retryable answers -----------------------------------------------------------------------------------


def test_rate_limited_post_is_deferred_and_posted_after_retry_after(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    transition = _transition(deployment, sim, sim_url, "exp-rate-limited")
    queue = deployment.settings.notify_queue_url
    sink.script(["rate_limited"])  # 429, Retry-After: 1

    report = deployment.deliver()
    # Deferred: a copy delayed by Retry-After, so a throttled message spends no SQS receive (and
    # cannot be redriven to the DLQ untried); the original is acknowledged.
    assert _counts(report) == (0, 0, 0, 0, 0) and report.deferred == 1
    assert [(m.status, m.response) for m in sink.rejected()] == [(429, "rate_limited")]
    assert sink.messages() == []
    assert _claim_state(transition.transition_id) is None  # released, so the retry can post
    assert _depth(queue) == (0, 0) and _delayed(queue) == 1
    assert _depth(deployment.settings.notify_dlq_url) == (0, 0)

    report, waited = _deliver_until_posted(deployment)
    assert _counts(report) == (1, 0, 0, 0, 0)
    assert waited >= 0.5  # it came back after its visibility delay, not at once
    (message,) = sink.messages()
    assert f"`{transition.transition_id}`" in json.dumps(message.payload)
    assert _claim_state(transition.transition_id) == "DELIVERED"
    assert _depth(queue) == (0, 0)
    assert len(sink.rejected()) == 1


def test_a_rate_limit_after_a_post_never_shows_that_post_twice(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    """Slack takes the first message of a batch, then answers 429: whatever SQS hands back (the
    deferred copy, or the whole batch again after a crashed invocation) posts the first one never again."""
    first = _transition(deployment, sim, sim_url, "exp-before-429")
    second = _transition(deployment, sim, sim_url, "exp-after-429")
    queue = deployment.settings.notify_queue_url
    records = sorted(_peek(queue), key=lambda r: transition_from_sqs_body(r["body"]).job_id)
    assert [transition_from_sqs_body(r["body"]).job_id for r in records] == [
        "exp-after-429",
        "exp-before-429",
    ]
    records.reverse()  # exp-before-429 first
    sink.script(["ok", "rate_limited"])
    notifier = notify()

    report = notifier.deliver({"Records": records})
    assert (report.delivered, report.deferred, report.failures) == (1, 1, [])
    # The invocation dies before Lambda deletes anything: the whole batch comes again.
    report = notifier.deliver({"Records": records})
    assert (report.delivered, report.duplicates) == (1, 1)
    assert _counts(deployment.deliver())[:2] == (0, 2)  # the originals and the deferred copy: no post
    time.sleep(1.1)
    assert _counts(deployment.deliver())[:2] == (0, 1)

    shown = [json.dumps(m.payload) for m in sink.messages()]
    assert len(shown) == 2
    assert sum(f"`{first.transition_id}`" in text for text in shown) == 1
    assert sum(f"`{second.transition_id}`" in text for text in shown) == 1


def test_a_short_retry_after_is_waited_out_in_process(
    make_deployment: Callable[..., LocalDeployment], sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    deployment = make_deployment()  # default JOBWATCH_DELIVERY_MAX_RETRY_AFTER_S (5 s) >= Retry-After (1 s)
    transition = _transition(deployment, sim, sim_url, "exp-short-429")
    sink.script(["rate_limited"])

    started = time.monotonic()
    report = deployment.deliver()
    assert _counts(report) == (1, 0, 0, 0, 0)
    assert time.monotonic() - started >= 0.9  # it honoured Retry-After: 1 before posting again
    assert [(m.status, m.response) for m in sink.rejected()] == [(429, "rate_limited")]
    (message,) = sink.messages()
    assert f"`{transition.transition_id}`" in json.dumps(message.payload)
    assert _depth(deployment.settings.notify_queue_url) == (0, 0)


def test_server_error_is_retried_with_backoff_then_posted(
    make_deployment: Callable[..., LocalDeployment], sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    # The first retry waits JOBWATCH_DELIVERY_RETRY_BASE_S (30 s in production), doubling after each
    # failure; one second here. Retries are delayed copies, so they spend no SQS receive.
    deployment = make_deployment({"JOBWATCH_DELIVERY_RETRY_BASE_S": "1"})
    queue = deployment.settings.notify_queue_url
    transition = _transition(deployment, sim, sim_url, "exp-slack-500")
    sink.script(["server_error", "drop"])  # 500, then a connection closed without an answer

    for attempt, expected in enumerate(((500, "internal_error"), (0, "")), start=1):
        report, _ = _deliver_until(deployment, lambda r: r.retried > 0)
        failed_at = time.monotonic()
        assert _counts(report) == (0, 0, 1, 0, 0) and report.deferred == 1
        assert (sink.rejected()[-1].status, sink.rejected()[-1].response) == expected
        assert _claim_state(transition.transition_id) is None
        assert _depth(queue) == (0, 0) and _delayed(queue) == 1
        (copy,) = _peek_later(queue)
        assert copy["messageAttributes"]["jobwatchAttempts"]["StringValue"] == str(attempt)
        assert (
            copy["messageAttributes"]["jobwatchDestination"]["StringValue"] == "slack"
        )  # retried there only
        assert sink.messages() == []

    report, _ = _deliver_until_posted(deployment)
    assert _counts(report) == (1, 0, 0, 0, 0)
    assert time.monotonic() - failed_at >= 1.5  # the second retry waited twice the base (2 s)
    assert len(sink.messages()) == 1 and len(sink.rejected()) == 2
    assert _claim_state(transition.transition_id) == "DELIVERED"
    assert _depth(queue) == (0, 0)
    assert _depth(deployment.settings.notify_dlq_url) == (0, 0)


def test_a_post_that_keeps_failing_is_dead_lettered_after_the_attempt_cap(
    make_deployment: Callable[..., LocalDeployment], sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    deployment = make_deployment(
        {"JOBWATCH_DELIVERY_MAX_ATTEMPTS": "3", "JOBWATCH_DELIVERY_RETRY_BASE_S": "1"}
    )
    queue, dlq = deployment.settings.notify_queue_url, deployment.settings.notify_dlq_url
    transition = _transition(deployment, sim, sim_url, "exp-slack-down")
    sink.script(["server_error", "service_unavailable", "server_error"])
    notifier = notify()

    outcomes = []
    for _ in range(3):  # the original, then each deferred copy as it comes back
        record = _take(queue)
        report = notifier.deliver({"Records": [record]})
        outcomes.append((report.retried, report.deferred, report.dead_lettered, report.failures))
    assert outcomes == [(1, 1, 0, []), (1, 1, 0, []), (0, 0, 1, [])]
    assert _claim_state(transition.transition_id) == "FAILED_PERMANENT"
    (dead,) = _peek(dlq)
    assert dead["messageAttributes"]["reason"]["StringValue"] == (
        "gave up after 3 attempts; last: HTTP 500: internal_error"
    )
    # A duplicate still in flight never posts, and the job's next transition does not wait for it.
    assert _counts(notifier.deliver({"Records": [record]}))[:2] == (0, 1)
    assert sink.messages() == [] and len(sink.rejected()) == 3
    assert _depth(queue) == (0, 0) and _delayed(queue) == 0


# -- permanent answers -----------------------------------------------------------------------------------


PERMANENT = {
    "400-invalid_blocks": SinkResponse(400, "invalid_blocks"),
    "403-action_prohibited": SinkResponse(403, "action_prohibited"),
    "404-no_service": SinkResponse(404, "no_service"),
    "410-channel_is_archived": SinkResponse(410, "channel_is_archived"),
}


@pytest.mark.parametrize("answer", list(PERMANENT.values()), ids=list(PERMANENT))
def test_permanent_refusal_is_dead_lettered_once_and_never_retried(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, sink: SlackSink, answer: SinkResponse
) -> None:
    transition = _transition(deployment, sim, sim_url, "exp-refused")
    queue, dlq = deployment.settings.notify_queue_url, deployment.settings.notify_dlq_url
    (record,) = _peek(queue)
    sink.script([answer])

    report = deployment.deliver()
    assert _counts(report) == (0, 0, 0, 1, 0)  # not a batch item failure: SQS must not retry it
    assert _depth(queue) == (0, 0)
    assert [(m.status, m.response) for m in sink.rejected()] == [(answer.status, answer.body)]
    assert sink.messages() == []
    assert _claim_state(transition.transition_id) == "FAILED_PERMANENT"

    (dead,) = _peek(dlq)
    assert dead["body"] == record["body"]
    assert transition_from_sqs_body(dead["body"]).transition_id == transition.transition_id
    assert dead["messageAttributes"]["reason"]["StringValue"] == f"HTTP {answer.status}: {answer.body}"

    # A redelivery of the same message (SQS duplicate, or a redrive from the DLQ) does not post.
    report = notify().deliver({"Records": [record]})
    assert _counts(report) == (0, 1, 0, 0, 0)
    assert len(sink.rejected()) == 1 and sink.messages() == []
    assert _depth(dlq) == (1, 0)  # still dead-lettered exactly once
    assert _counts(deployment.deliver()) == (0, 0, 0, 0, 0)


UNREADABLE = {
    "not-json": "this is not JSON {",
    "json-array": "[1, 2, 3]",
    "sns-envelope-of-something-else": json.dumps(
        {"Type": "Notification", "MessageId": "m-1", "Message": json.dumps({"event": "FAILED"})}
    ),
    "future-schema": json.dumps({"schema": "jobwatch.transition/v9", "event": "FAILED"}),
    "v1-event-missing-fields": json.dumps({"schema": "jobwatch.transition/v1", "event": "FAILED"}),
}


@pytest.mark.parametrize("body", list(UNREADABLE.values()), ids=list(UNREADABLE))
def test_unreadable_sqs_body_is_dead_lettered(
    deployment: LocalDeployment, sink: SlackSink, body: str
) -> None:
    queue, dlq = deployment.settings.notify_queue_url, deployment.settings.notify_dlq_url
    aws.sqs().send_message(QueueUrl=queue, MessageBody=body)

    report = deployment.deliver()
    assert _counts(report) == (0, 0, 0, 1, 0)
    assert _depth(queue) == (0, 0)
    (dead,) = _peek(dlq)
    assert dead["body"] == body
    reason = dead["messageAttributes"]["reason"]["StringValue"]
    assert reason.startswith("unreadable: ") and len(reason) <= 256
    assert sink.messages() == [] and sink.rejected() == []


# -- hostile upstream text ---------------------------------------------------------------------------------


def test_mentions_and_markup_in_an_upstream_error_never_reach_slack_unescaped(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    error = (
        "disk full <!channel> <!here|here> <!everyone> <@U024BE7LH> <#C024BE7LR> @channel @here "
        "<https://evil.example/login|click to fix> & ``` closing the fence ``` *bold*"
    )
    transition = _transition(deployment, sim, sim_url, "exp-hostile", error=error)
    assert transition.current.error == error  # the event itself keeps the upstream text as it was

    assert deployment.deliver().delivered == 2  # the default Slack webhook and the alert e-mail (FAILED)
    (message,) = sink.messages()
    raw = message.raw
    for hostile in ("<!channel>", "<!here", "<!everyone>", "<@U024BE7LH>", "<#C024BE7LR>", "<https://"):
        assert hostile not in raw
    assert "<" not in raw and ">" not in raw  # no Slack control sequence of any kind
    assert re.findall(r"&(?!amp;|lt;|gt;)", raw) == []  # every & is an entity
    assert "@channel" not in raw and "@here" not in raw and "@everyone" not in raw
    assert "&lt;!channel&gt;" in raw and "&lt;@U024BE7LH&gt;" in raw

    (error_block,) = [
        block["text"]["text"]
        for block in message.blocks
        if block.get("type") == "section" and block.get("text", {}).get("text", "").startswith("*Error*")
    ]
    assert error_block.count("```") == 2  # the upstream text cannot close the code block
    assert error_block.startswith("*Error*\n```\ndisk full &lt;!channel&gt;")
    assert error_block.endswith("*bold*\n```")


def test_mentions_in_collection_and_file_names_and_labels_are_escaped_too(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    sim.add_job(
        "zilliz-import-v1",
        "job-hostile",
        [
            state(
                ready=0, files=["<!here>.parquet", "b.parquet"], error_message="row 7: <!channel> bad vector"
            )
        ],
        cluster_id="in01-hostile",
        collection="<!channel>_articles",
    )
    deployment.track(
        source="zilliz-import-v1",
        endpoint=sim_url,
        job_id="job-hostile",
        cluster_id="in01-hostile",
        labels={"owner": "<!subteam^S123|@oncall> @here"},
    )
    report = deployment.poll()
    assert (report.transitions, report.published) == (1, 1)
    (event,) = deployment.published()
    assert event.current.details["collectionName"] == "<!channel>_articles"

    assert deployment.deliver().delivered == 2  # the default Slack webhook and the alert e-mail (FAILED)
    (message,) = sink.messages()
    raw = message.raw
    assert "<" not in raw and ">" not in raw
    assert "@here" not in raw and "@channel" not in raw
    assert re.findall(r"&(?!amp;|lt;|gt;)", raw) == []
    assert "&lt;!channel&gt;_articles" in raw and "&lt;!here&gt;.parquet" in raw
    assert "&lt;!subteam^S123|@oncall&gt; @\u2060here" in raw
