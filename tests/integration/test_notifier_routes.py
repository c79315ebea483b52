"""The notifier end to end with routes: upstream simulator -> poller -> SNS -> the notifier's queue ->
every destination, on real sockets (Slack sink, webhook receiver) and moto (e-mail topic, EventBridge).

Routes are stored the way an operator stores them, through the registration API (`PUT /routes`) or
the operations the CLI shares (`jobwatch_tools.local.operations()`); transitions then come from real
poll cycles and are drained by `deployment.deliver()` (the notifier function's code path). Each
destination is observed where a person or a consumer would see it: the sink's webhook posts and its
Slack app channels (`channel_view`), the alert e-mail topic's capture queue, the webhook receiver
(which verifies every signature itself), and an SQS queue behind a rule on the stack's event bus.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from jobwatch_tools.api_server import build_event
from jobwatch_tools.local import api_handler, notify, operations

from jobwatch.adapters import aws
from jobwatch.adapters.dynamodb.threads import DynamoThreadStore
from jobwatch.adapters.sns import SnsPublisher
from jobwatch.api.routes import ROUTES
from jobwatch.delivery.records import BatchReport, record_from_message
from jobwatch.domain.model import Transition
from jobwatch.domain.routing import (
    DEFAULT_EMAIL,
    DEFAULT_SLACK,
    EventBridgeDestination,
    Route,
    SlackAppDestination,
    WebhookDestination,
)
from jobwatch.entrypoints.wiring import delivery_ledger
from jobwatch_devkit.harness import LocalDeployment
from jobwatch_devkit.simulator import UpstreamSimulator, hold, state
from jobwatch_devkit.slack_sink import DEFAULT_BOT_TOKEN, ApiMessage, SlackSink, SlackThread
from jobwatch_devkit.webhook_receiver import Answer, WebhookReceiver

pytestmark = pytest.mark.integration

EXPORT = "weaviate-export"
MILVUS = "milvus-import"
BOT_SECRET = "jobwatch/notify/slack-bot"
HOOK_SECRET = "jobwatch/notify/ci-hook"
SIGNING_KEY = "whsec_notifier_routes_5d2a"
SEARCH_CHANNEL = "C0SEARCH01"
ONCALL_CHANNEL = "C0ONCALL01"
ONCALL_GROUP = "<!subteam^S0ONCALL1>"
LEAD = "<@U0LEAD01>"
STATE_CHANGE = "Vector DB Job State Change"

SEARCH_ROUTE = {
    "name": "search",
    "match": {"labels": [{"key": "team", "value": "search"}]},
    "destinations": [{"type": "slack-app", "channel": SEARCH_CHANNEL, "tokenSecret": BOT_SECRET}],
}
"""Jobs of the search team: their own Slack app channel, one living thread per job."""

ONCALL_ROUTE = {
    "name": "oncall",
    "match": {"events": ["FAILED", "LOST"]},
    "destinations": [{"type": "slack-app", "channel": ONCALL_CHANNEL, "tokenSecret": BOT_SECRET}],
    "mentions": {"FAILED": [ONCALL_GROUP], "LOST": [LEAD]},
}
"""Failures of any job: a second channel, mentioning who must act."""


# -- fixtures and helpers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def _receiver_server() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(SIGNING_KEY)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def receiver(_receiver_server: WebhookReceiver) -> WebhookReceiver:
    """A customer's webhook endpoint that verifies jobwatch's signatures with SIGNING_KEY."""
    _receiver_server.reset()
    return _receiver_server


@pytest.fixture
def make_routed(
    make_deployment: Callable[..., LocalDeployment], sink: SlackSink
) -> Iterator[Callable[..., LocalDeployment]]:
    """Factory: the stack with Slack app destinations pointed at the sink's Web API, routes read
    afresh for every batch (an edit applies at once), and the destination secrets stored under
    jobwatch/notify/ (the bot token the sink accepts, the receiver's signing key)."""

    def make(**extra_env: str) -> LocalDeployment:
        aws.events.cache_clear()  # the harness forgets the other clients; EventBridge's too, here
        deployment = make_deployment(
            {"JOBWATCH_SLACK_API_URL": sink.api_url, "JOBWATCH_ROUTES_CACHE_S": "0", **extra_env}
        )
        secrets = aws.secretsmanager()
        secrets.create_secret(Name=BOT_SECRET, SecretString=DEFAULT_BOT_TOKEN)
        secrets.create_secret(Name=HOOK_SECRET, SecretString=SIGNING_KEY)
        return deployment

    yield make
    aws.events.cache_clear()


@pytest.fixture
def deployment(make_routed: Callable[..., LocalDeployment]) -> LocalDeployment:
    return make_routed()


def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """The registration API handler, as API Gateway invokes it."""
    payload = b"" if body is None else json.dumps(body).encode()
    event = build_event(method, path, [("Content-Type", "application/json")], payload, ROUTES)
    result = api_handler(event, None)
    return result["statusCode"], json.loads(result["body"])


def apply_routes(*routes: dict[str, Any]) -> None:
    status, diff = call("PUT", "/routes", {"routes": list(routes)})
    assert status == 200, diff
    assert diff["added"] == [route["name"] for route in routes]


def track(
    deployment: LocalDeployment,
    sim: UpstreamSimulator,
    sim_url: str,
    job_id: str,
    statuses: Sequence[str],
    **labels: str,
) -> str:
    """A Weaviate export whose polls see `statuses` in turn (the last one repeats)."""
    steps = [state(s, error="disk full on node-2") if s == "FAILED" else state(s) for s in statuses]
    sim.add_job(EXPORT, job_id, steps, backend="s3")
    job = deployment.track(source=EXPORT, endpoint=sim_url, job_id=job_id, backend="s3", labels=labels)
    return job.key


def transitions(deployment: LocalDeployment, job_key: str) -> list[Transition]:
    return [t for t in deployment.published() if t.job_key == job_key]


def reply_events(replies: Sequence[ApiMessage]) -> list[str]:
    """The event each Slack app reply announces (its header reads `<emoji> <EVENT> · <title>`)."""
    return [reply.visible_text.splitlines()[0].split(" ")[1] for reply in replies]


def thread_of(sink: SlackSink, channel: str, job_id: str) -> SlackThread:
    (thread,) = [t for t in sink.channel_view(channel) if f"`{job_id}`" in t.root.visible_text]
    return thread


def posted(sink: SlackSink, published: Sequence[Transition]) -> list[str]:
    """The transition each default-webhook post shows (its id, as code), in posting order."""
    shown = [json.dumps(message.payload) for message in sink.messages()]
    return [t.transition_id for text in shown for t in published if f"`{t.transition_id}`" in text]


def claim(destination_id: str, transition: Transition, deployment: LocalDeployment) -> str | None:
    return delivery_ledger(deployment.settings).state(destination_id, transition.transition_id)


def bus_name() -> str:
    """The stack's JobwatchEventBus (`${AWS::StackName}-jobs`), as the local stack created it."""
    names = [bus["Name"] for bus in aws.events().list_event_buses()["EventBuses"]]
    (name,) = [n for n in names if n != "default"]
    assert name.endswith("-jobs")
    return name


def queue_behind_rule(bus: str, name: str, pattern: dict[str, Any]) -> str:
    """A rule on `bus` with `pattern` whose target is a new SQS queue; returns the queue URL."""
    sqs = aws.sqs()
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = aws.events()
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern), State="ENABLED")
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
    return url


def bus_events(url: str) -> list[dict[str, Any]]:
    """Every event the rule's queue received so far (deleted as read)."""
    sqs, found = aws.sqs(), []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def take_records(queue_url: str) -> list[dict[str, Any]]:
    """Every visible message of the notifier's queue as a Lambda record, deleted from the queue."""
    sqs, records = aws.sqs(), []
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return records
        for message in messages:
            records.append(record_from_message(dict(message)))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def deliver_until(
    deployment: LocalDeployment, done: Callable[[], bool], timeout: float = 8.0
) -> list[BatchReport]:
    """Drain repeatedly until `done()` (delayed copies come back after their delay)."""
    reports, started = [], time.monotonic()
    while True:
        reports.append(deployment.deliver())
        if done() or time.monotonic() - started > timeout:
            return reports
        time.sleep(0.2)


# -- (a) no routes: exactly what jobwatch did before routes ------------------------------------------------


def test_without_routes_every_transition_goes_to_the_default_webhook_and_alerts_to_the_alert_email(
    deployment: LocalDeployment,
    sim: UpstreamSimulator,
    sim_url: str,
    sink: SlackSink,
    receiver: WebhookReceiver,
) -> None:
    keys = {
        job_id: track(deployment, sim, sim_url, job_id, ["STARTED", last], team="search")
        for job_id, last in (("exp-ok", "SUCCESS"), ("exp-failed", "FAILED"), ("exp-canceled", "CANCELED"))
    }
    status, test = call("POST", f"/jobs/{keys['exp-ok']}/test")
    assert status == 202
    deployment.poll()
    deployment.poll()
    published = deployment.published()
    assert sorted(t.event for t in published) == sorted(
        ["TEST", "STARTED", "STARTED", "STARTED", "SUCCEEDED", "FAILED", "CANCELED"]
    )

    report = deployment.deliver()

    # Seven Slack posts, three alert e-mails: a drain's counts add up over the destinations.
    assert (report.delivered, report.duplicates, report.deferred, report.dead_lettered) == (10, 0, 0, 0)
    assert sorted(posted(sink, published)) == sorted(t.transition_id for t in published)
    assert len(sink.messages()) == len(published)
    emailed = {e.transition_id: e.event for e in deployment.emails()}
    assert emailed == {
        test["transitionId"]: "TEST",
        **{t.transition_id: str(t.event) for t in published if t.event in ("FAILED", "CANCELED")},
    }
    for transition in published:
        assert claim(DEFAULT_SLACK, transition, deployment) == "DELIVERED"
        alerted = transition.event in ("FAILED", "CANCELED", "TEST")
        assert claim(DEFAULT_EMAIL, transition, deployment) == ("DELIVERED" if alerted else None)
    # The team label means nothing without a route: no Slack app, no webhook, no event bus.
    assert sink.api_calls() == [] and receiver.received() == []
    assert deployment.deliver().delivered == 0


# -- (b) a team's jobs as living threads in a Slack app channel ----------------------------------------------


def test_a_team_route_keeps_one_living_thread_per_job_in_a_slack_app_channel(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    apply_routes(SEARCH_ROUTE)
    ok = track(deployment, sim, sim_url, "exp-search-ok", ["STARTED", "SUCCESS"], team="search")
    failed = track(deployment, sim, sim_url, "exp-search-failed", ["STARTED", "FAILED"], team="search")
    track(deployment, sim, sim_url, "exp-ads", ["STARTED", "SUCCESS"], team="ads")

    deployment.poll()
    first = deployment.deliver()
    deployment.poll()
    second = deployment.deliver()

    assert (first.delivered, second.delivered) == (2, 2)  # only the search jobs have a route
    assert sink.channels() == [SEARCH_CHANNEL]
    threads = sink.channel_view(SEARCH_CHANNEL)
    assert len(threads) == 2  # one root message per job
    ok_thread, failed_thread = (
        thread_of(sink, SEARCH_CHANNEL, "exp-search-ok"),
        thread_of(sink, SEARCH_CHANNEL, "exp-search-failed"),
    )
    # Each root was posted once and edited for the second transition: it shows the job as it stands.
    assert (ok_thread.root.edits, failed_thread.root.edits) == (1, 1)
    assert ok_thread.root.visible_text.splitlines()[0].startswith("✅ SUCCEEDED")
    assert failed_thread.root.visible_text.splitlines()[0].startswith("❌ FAILED")
    assert "disk full on node-2" in failed_thread.replies[-1].visible_text  # the upstream error, in its reply
    assert reply_events(ok_thread.replies) == ["STARTED", "SUCCEEDED"]
    assert reply_events(failed_thread.replies) == ["STARTED", "FAILED"]
    assert [r.reply_broadcast for r in failed_thread.replies] == [
        False,
        True,
    ]  # a failure shows in the channel
    assert all(m.mentions == [] for t in threads for m in (t.root, *t.replies))  # the route names nobody

    # The roots are kept in the table, per destination and job: the next notifier process finds them.
    store = DynamoThreadStore(aws.dynamodb(), deployment.settings.table)
    destination = SlackAppDestination(channel=SEARCH_CHANNEL, token_secret=BOT_SECRET)
    for key, thread in ((ok, ok_thread), (failed, failed_thread)):
        root = store.root(destination.id, key)
        assert root is not None and (root.channel, root.ts) == (SEARCH_CHANNEL, thread.root.ts)
        for transition in transitions(deployment, key):
            assert claim(destination.id, transition, deployment) == "DELIVERED"
    # Stored routes replace the defaults: no default webhook post, no alert e-mail, even for FAILED.
    assert sink.messages() == [] and deployment.emails() == []


# -- (c) failures of any job to a second channel, with the route's mention -----------------------------------


def test_failures_of_any_job_reach_a_second_channel_with_the_mention_of_their_event(
    make_routed: Callable[..., LocalDeployment], sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    deployment = make_routed(JOBWATCH_LOST_AFTER="2", JOBWATCH_ADAPTIVE_POLLING="false")
    apply_routes(SEARCH_ROUTE, ONCALL_ROUTE)
    failed = track(deployment, sim, sim_url, "exp-search-failed", ["STARTED", "FAILED"], team="search")
    sim.add_job(MILVUS, "4510", [state("Importing", progress=40), hold()])
    lost = deployment.track(source=MILVUS, endpoint=sim_url, job_id="4510").key
    deployment.poll()
    deployment.poll()
    sim.reset()  # the Milvus server forgot its job: "no such job" until jobwatch calls it LOST
    for _ in range(3):
        deployment.poll()
    assert [str(t.event) for t in transitions(deployment, lost)] == ["STARTED", "LOST"]

    report = deployment.deliver()

    # search: STARTED and FAILED of its job; oncall: that FAILED and the Milvus job's LOST.
    assert (report.delivered, report.deferred, report.dead_lettered) == (4, 0, 0)
    assert sorted(sink.channels()) == sorted([SEARCH_CHANNEL, ONCALL_CHANNEL])
    oncall_failed = thread_of(sink, ONCALL_CHANNEL, "exp-search-failed")
    assert reply_events(oncall_failed.replies) == ["FAILED"]
    assert oncall_failed.replies[0].mentions == [ONCALL_GROUP] and oncall_failed.replies[0].reply_broadcast
    oncall_lost = thread_of(sink, ONCALL_CHANNEL, "4510")
    assert reply_events(oncall_lost.replies) == ["LOST"]
    assert oncall_lost.replies[0].mentions == [LEAD]  # each event its own mention
    assert [t.root.mentions for t in sink.channel_view(ONCALL_CHANNEL)] == [
        [],
        [],
    ]  # an edited root notifies nobody
    # The team channel has the whole story of its job, and mentions nobody: its route names no one.
    search = thread_of(sink, SEARCH_CHANNEL, "exp-search-failed")
    assert reply_events(search.replies) == ["STARTED", "FAILED"]
    assert all(reply.mentions == [] for reply in search.replies)
    assert len(sink.channel_view(SEARCH_CHANNEL)) == 1  # the Milvus job is not the search team's
    (failure,) = [t for t in transitions(deployment, failed) if t.event == "FAILED"]
    for channel in (SEARCH_CHANNEL, ONCALL_CHANNEL):
        destination = SlackAppDestination(channel=channel, token_secret=BOT_SECRET)
        assert claim(destination.id, failure, deployment) == "DELIVERED"


# -- (d) a signed webhook ------------------------------------------------------------------------------------


def test_a_signed_webhook_destination_is_received_and_verified_in_job_order(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, receiver: WebhookReceiver
) -> None:
    apply_routes(
        {
            "name": "pipeline",
            "match": {"events": ["STARTED", "SUCCEEDED", "FAILED"]},
            "destinations": [{"type": "webhook", "url": receiver.url, "signingSecret": HOOK_SECRET}],
        }
    )
    key = track(deployment, sim, sim_url, "exp-hooked", ["STARTED", "SUCCESS"])
    deployment.poll()
    deployment.poll()
    started, succeeded = transitions(deployment, key)

    report = deployment.deliver()  # both in one batch: the notifier puts a job's transitions in order

    assert (report.delivered, report.failures, report.dead_lettered) == (2, [], 0)
    hooks = receiver.received()
    assert all(hook.verified and hook.delivered for hook in hooks)  # the receiver checked each signature
    assert [hook.event for hook in hooks] == [started.to_wire(), succeeded.to_wire()]
    assert [hook.transition_id for hook in hooks] == [started.transition_id, succeeded.transition_id]
    assert [hook.headers["x-jobwatch-event"] for hook in hooks] == ["STARTED", "SUCCEEDED"]
    destination = WebhookDestination(url=receiver.url, signing_secret=HOOK_SECRET)
    assert claim(destination.id, succeeded, deployment) == "DELIVERED"


# -- (e) EventBridge on the stack's bus ----------------------------------------------------------------------


def test_an_eventbridge_destination_puts_each_transition_on_the_stacks_bus(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    bus = bus_name()
    everything = queue_behind_rule(bus, "jobwatch-all", {"source": ["jobwatch"]})
    failures = queue_behind_rule(
        bus,
        "jobwatch-failures",
        {"source": ["jobwatch"], "detail-type": [STATE_CHANGE], "detail": {"event": ["FAILED"]}},
    )
    apply_routes({"name": "bus", "destinations": [{"type": "eventbridge", "bus": bus}]})
    ok = track(deployment, sim, sim_url, "exp-bus-ok", ["STARTED", "SUCCESS"], env="prod")
    failed = track(deployment, sim, sim_url, "exp-bus-failed", ["STARTED", "FAILED"], env="prod")
    deployment.poll()
    deployment.poll()

    report = deployment.deliver()

    assert (report.delivered, report.dead_lettered) == (4, 0)
    received = bus_events(everything)
    published = [*transitions(deployment, ok), *transitions(deployment, failed)]
    assert sorted(e["detail"]["transitionId"] for e in received) == sorted(t.transition_id for t in published)
    by_id = {t.transition_id: t for t in published}
    for event in received:
        transition = by_id[event["detail"]["transitionId"]]
        assert (event["source"], event["detail-type"]) == ("jobwatch", STATE_CHANGE)
        assert event["detail"] == transition.to_wire()  # the versioned transition event itself
        assert event["resources"] == [f"jobwatch:job/{transition.job_key}"]
    (failure,) = bus_events(failures)
    assert (failure["detail"]["jobId"], failure["detail"]["event"]) == ("exp-bus-failed", "FAILED")
    destination = EventBridgeDestination(bus=bus)
    assert all(claim(destination.id, t, deployment) == "DELIVERED" for t in published)
    assert sink.messages() == [] and sink.api_calls() == []


# -- (f) exactly once per destination ------------------------------------------------------------------------


def test_each_destination_gets_each_transition_once_however_often_sns_and_sqs_repeat_it(
    deployment: LocalDeployment,
    sim: UpstreamSimulator,
    sim_url: str,
    sink: SlackSink,
    receiver: WebhookReceiver,
) -> None:
    bus = bus_name()
    on_bus = queue_behind_rule(bus, "jobwatch-all", {"source": ["jobwatch"]})
    apply_routes(
        SEARCH_ROUTE,
        {
            "name": "everywhere",
            "destinations": [
                {"type": "slack-webhook", "webhookSecret": "(deployment default)"},
                {"type": "email"},
                {"type": "webhook", "url": receiver.url, "signingSecret": HOOK_SECRET},
                {"type": "eventbridge", "bus": bus},
            ],
        },
    )
    key = track(deployment, sim, sim_url, "exp-repeated", ["STARTED", "FAILED"], team="search")
    deployment.poll()
    deployment.poll()
    published = transitions(deployment, key)
    records = take_records(deployment.settings.notify_queue_url)
    assert len(records) == 2

    first = notify().deliver({"Records": records})
    again = notify().deliver({"Records": records})  # SQS hands the same messages over again
    for transition in published:  # the outbox republishes: SNS fans out new envelopes of the same events
        SnsPublisher(aws.sns(), deployment.settings.topic_arn).publish(transition)
    republished = deployment.deliver()

    destinations = 5  # the search channel, the default webhook, the alert e-mail, the webhook, the bus
    assert (first.delivered, first.duplicates) == (2 * destinations, 0)
    assert (again.delivered, again.duplicates) == (0, 2 * destinations)
    assert (republished.delivered, republished.duplicates) == (0, 2 * destinations)
    tids = sorted(t.transition_id for t in published)
    assert sorted(posted(sink, published)) == tids and len(sink.messages()) == 2
    assert sorted(e.transition_id for e in deployment.emails()) == tids
    assert sorted(hook.transition_id for hook in receiver.received()) == tids
    assert sorted(e["detail"]["transitionId"] for e in bus_events(on_bus)) == tids
    thread = thread_of(sink, SEARCH_CHANNEL, "exp-repeated")
    assert reply_events(thread.replies) == ["STARTED", "FAILED"] and thread.root.edits == 1
    ids = [
        DEFAULT_SLACK,
        DEFAULT_EMAIL,
        SlackAppDestination(channel=SEARCH_CHANNEL, token_secret=BOT_SECRET).id,
        WebhookDestination(url=receiver.url, signing_secret=HOOK_SECRET).id,
        EventBridgeDestination(bus=bus).id,
    ]
    assert len(ids) == destinations
    for destination_id in ids:  # claims are per destination id
        assert [claim(destination_id, t, deployment) for t in published] == ["DELIVERED", "DELIVERED"]


# -- (g) an edited route applies to new transitions; retries keep where they were sent -----------------------


def test_an_edited_route_applies_to_new_transitions_while_retries_keep_their_destinations(
    make_routed: Callable[..., LocalDeployment],
    sim: UpstreamSimulator,
    sim_url: str,
    receiver: WebhookReceiver,
) -> None:
    deployment = make_routed(JOBWATCH_DELIVERY_RETRY_BASE_S="1")  # a failed post is retried after 1 s, not 30
    bus = bus_name()
    on_bus = queue_behind_rule(bus, "jobwatch-all", {"source": ["jobwatch"]})
    hook = {"type": "webhook", "url": receiver.url, "signingSecret": HOOK_SECRET}
    apply_routes(
        {"name": "search", "match": {"labels": [{"key": "team", "value": "search"}]}, "destinations": [hook]}
    )
    key = track(deployment, sim, sim_url, "exp-edited", ["STARTED", "SUCCESS"], team="search")
    receiver.script([Answer(503)])

    deployment.poll()
    first = deployment.deliver()
    assert (first.delivered, first.retried, first.deferred) == (0, 1, 1)  # STARTED waits as a delayed copy
    (started,) = transitions(deployment, key)

    # The operator moves the team's route to the event bus (through the CLI's operations).
    edited = Route.model_validate(
        {
            "name": "search",
            "match": {"labels": [{"key": "team", "value": "search"}]},
            "destinations": [{"type": "eventbridge", "bus": bus}],
        }
    )
    _, created, _ = operations().put_route(edited, actor="test")
    assert not created
    deployment.poll()
    _, succeeded = transitions(deployment, key)
    deliver_until(deployment, lambda: len(receiver.deliveries()) == 1)

    # STARTED was routed before the edit: its retry still went to the webhook, and only there.
    assert [(h.status, h.transition_id) for h in receiver.received()] == [
        (503, started.transition_id),
        (200, started.transition_id),
    ]
    # SUCCEEDED was routed after it: to the bus, and not to the webhook.
    assert [e["detail"]["transitionId"] for e in bus_events(on_bus)] == [succeeded.transition_id]
    webhook = WebhookDestination(url=receiver.url, signing_secret=HOOK_SECRET).id
    assert (claim(webhook, started, deployment), claim(webhook, succeeded, deployment)) == ("DELIVERED", None)
    eventbridge = EventBridgeDestination(bus=bus).id
    assert (claim(eventbridge, started, deployment), claim(eventbridge, succeeded, deployment)) == (
        None,
        "DELIVERED",
    )
    assert deployment.deliver().delivered == 0
