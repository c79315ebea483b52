"""The notifier on fakes: routing, then the one engine per destination (claims, order, retries,
dead-letters), with no sockets."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from jobwatch.delivery.engine import FAILED_PERMANENT
from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.domain.routing import DEFAULT_SLACK, Route
from jobwatch_devkit.component import WEBHOOK_SECRET, World, export_spec, export_status
from jobwatch_devkit.fakes import json_answer, record


def _world_with_story(*statuses: str, **labels: str) -> World:
    """One job whose polls see `statuses` in turn; one cycle per status, all published."""
    world = World()
    world.track(export_spec("nightly", labels=labels))
    world.upstream.script("nightly", [json_answer(export_status("nightly", s)) for s in statuses])
    for _ in statuses:
        world.cycle()
    return world


def _route(**document: object) -> Route:
    return Route.model_validate(document)


# -- the deployment defaults (no route stored): exactly what jobwatch did before routes --------------


def test_each_transition_is_posted_once_however_often_sqs_delivers_it() -> None:
    world = _world_with_story("STARTED", "SUCCESS")
    notifier = world.notifier()
    records = world.published_records()

    first = notifier.deliver({"Records": records})
    again = notifier.deliver({"Records": [record(r["body"]) for r in records]})

    assert (first.delivered, again.delivered, again.duplicates) == (2, 0, 2)
    assert len(world.slack_hook.posts) == 2
    assert world.email_topic.sent == []  # STARTED and SUCCEEDED are not alert e-mail events


def test_failures_reach_slack_and_the_alert_email_once_each() -> None:
    world = _world_with_story("STARTED", "FAILED", error="disk full")
    notifier = world.notifier()

    world.deliver_all(notifier, world.published_records())
    world.deliver_all(notifier, world.published_records())  # SNS delivered everything twice

    assert [t.event for t in world.email_topic.sent] == ["FAILED"]
    assert world.email_topic.destinations == ["email"]  # the standing subscribers' filter value
    assert len(world.slack_hook.posts) == 2


def test_a_job_successor_waits_for_its_predecessor_across_batches() -> None:
    world = _world_with_story("STARTED", "SUCCESS")
    notifier = world.notifier()
    started, succeeded = world.published_records()

    early = notifier.deliver({"Records": [succeeded]})
    assert (early.delivered, early.deferred) == (0, 1)
    world.deliver_all(notifier, [started])

    texts = world.slack_hook.texts()
    assert len(texts) == 2
    assert "STARTED" in texts[0] and "SUCCEEDED" in texts[1]


def test_a_long_rate_limit_defers_the_rest_of_the_batch_without_spending_attempts() -> None:
    world = _world_with_story("STARTED", "SUCCESS")
    world.slack_hook.answer(429, retry_after=120)
    notifier = world.notifier()

    report = notifier.deliver({"Records": world.published_records()})
    assert (report.delivered, report.deferred, report.retried) == (0, 2, 0)
    world.deliver_all(notifier, [])

    assert len(world.slack_hook.posts) == 2
    assert world.notify_queue.dead_letters == []


def test_server_errors_are_retried_with_backoff_until_the_attempt_cap() -> None:
    world = _world_with_story("STARTED")
    world.slack_hook.answer(500, times=3)
    notifier = world.notifier(JOBWATCH_DELIVERY_MAX_ATTEMPTS="3")
    started = world.clock.now()

    world.deliver_all(notifier, world.published_records())

    assert world.slack_hook.posts == []
    ((_, reason),) = world.notify_queue.dead_letters
    assert reason.startswith("gave up after 3 attempts; last: HTTP 500")
    assert world.clock.now() - started >= 30 + 60  # two delays: 30 s, then doubled
    (transition,) = world.publisher.published
    assert world.ledger.state(DEFAULT_SLACK, transition.transition_id) == FAILED_PERMANENT


def test_a_revoked_webhook_is_dead_lettered_once_and_its_successor_does_not_wait() -> None:
    world = _world_with_story("STARTED", "SUCCESS")
    world.slack_hook.answer(404)
    notifier = world.notifier()

    world.deliver_all(notifier, world.published_records())

    assert len(world.notify_queue.dead_letters) == 1
    assert world.notify_queue.dead_letters[0][1].startswith("HTTP 404")
    (post,) = world.slack_hook.posts
    assert "SUCCEEDED" in str(post["text"])


def test_an_unreadable_webhook_secret_pauses_the_batch_then_delivers() -> None:
    world = _world_with_story("STARTED")
    del world.secrets.values[WEBHOOK_SECRET]
    notifier = world.notifier()

    report = notifier.deliver({"Records": world.published_records()})
    assert (report.delivered, report.retried) == (0, 1)
    world.secrets.values[WEBHOOK_SECRET] = "https://hooks.test/x"
    world.deliver_all(notifier, [])

    assert len(world.slack_hook.posts) == 1


def test_two_notifiers_on_one_batch_deliver_each_transition_once() -> None:
    world = _world_with_story("STARTED", "FAILED")
    records = world.published_records()
    notifiers = [world.notifier(), world.notifier()]

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda n: n.deliver({"Records": records}), notifiers))
    world.deliver_all(notifiers[0], [])

    assert len(world.slack_hook.posts) == 2
    assert [t.event for t in world.email_topic.sent] == ["FAILED"]


def test_a_failed_email_publish_is_retried_later_and_sent_once() -> None:
    world = _world_with_story("STARTED", "FAILED")
    notifier = world.notifier()
    failed = world.published_records()[1]
    world.email_topic.fail_next()

    world.deliver_all(notifier, world.published_records()[:1])
    first = notifier.deliver({"Records": [failed]})
    assert (first.retried, first.deferred, first.failures) == (1, 1, [])
    world.deliver_all(notifier, [record(failed["body"])])

    assert [t.event for t in world.email_topic.sent] == ["FAILED"]


def test_an_unreadable_record_is_dead_lettered_with_its_reason() -> None:
    world = World()
    report = world.notifier().deliver({"Records": [record("{not json")]})

    assert (report.dead_lettered, report.failures) == (1, [])
    ((body, reason),) = world.notify_queue.dead_letters
    assert body == "{not json" and reason.startswith("unreadable:")


# -- stored routes ----------------------------------------------------------------------------------


def test_routes_replace_the_defaults_and_send_each_transition_where_it_matches() -> None:
    world = _world_with_story("STARTED", "FAILED", team="search")
    world.routes.put(
        _route(
            name="search",
            match={"labels": [{"key": "team", "value": "search"}]},
            destinations=[{"type": "eventbridge", "bus": "jobs"}],
        )
    )
    world.routes.put(
        _route(
            name="oncall",
            match={"events": ["FAILED", "LOST"]},
            destinations=[{"type": "email", "addresses": ["oncall@example.com"]}],
            position=1,
        )
    )
    world.deliver_all(world.notifier(), world.published_records())

    assert world.slack_hook.posts == []  # the default Slack route no longer applies
    assert [entry["DetailType"] for entry in world.events.events] == [
        "Vector DB Job State Change",
        "Vector DB Job State Change",
    ]
    assert [t.event for t in world.email_topic.sent] == ["FAILED"]
    assert world.email_topic.destinations[0].startswith("email.")


def test_an_ordered_destination_does_not_wait_for_a_predecessor_it_was_never_sent() -> None:
    """The on-call webhook only gets FAILED: it must not hold FAILED for STARTED, which went elsewhere."""
    world = _world_with_story("STARTED", "FAILED")
    world.routes.put(
        _route(
            name="failures",
            match={"events": ["FAILED"]},
            destinations=[{"type": "slack-webhook", "webhookSecret": "(deployment default)"}],
            mentions={"FAILED": ["<!subteam^S0ONCALL1>"]},
        )
    )
    started, failed = world.published_records()
    notifier = world.notifier()
    notifier.deliver({"Records": [started]})  # routed: no destination wants STARTED

    report = notifier.deliver({"Records": [failed]})

    assert (report.delivered, report.deferred) == (1, 0)
    (post,) = world.slack_hook.posts
    assert str(post["text"]).startswith("<!subteam^S0ONCALL1>")


def test_a_transition_keeps_the_destinations_it_was_first_routed_to() -> None:
    """A retry goes where the first routing sent it, even if the routes changed meanwhile."""
    world = _world_with_story("STARTED")
    world.slack_hook.answer(500)
    notifier = world.notifier()
    notifier.deliver({"Records": world.published_records()})  # default Slack: fails, copy waits
    world.routes.put(_route(name="bus-only", destinations=[{"type": "eventbridge"}]))

    world.deliver_all(notifier, [])

    assert len(world.slack_hook.posts) == 1  # the retried copy still went to Slack
    assert world.events.events == []  # the new route never saw this transition


def test_a_destination_waits_for_its_own_predecessor_across_a_transition_routed_elsewhere() -> None:
    """UNREACHABLE goes to the on-call Slack and its first post fails; RECOVERED goes elsewhere;
    FAILED goes to the on-call Slack again and must wait for UNREACHABLE there, not only for
    RECOVERED (the job's immediate predecessor, which never went to that Slack)."""
    world = World()
    world.track(export_spec("nightly"))
    timeout = PollError(PollErrorKind.TIMEOUT, "no answer in time")
    world.upstream.script(
        "nightly",
        [json_answer(export_status("nightly", "STARTED"))]
        + [timeout] * 3
        + [json_answer(export_status("nightly", "STARTED")), json_answer(export_status("nightly", "FAILED"))],
    )
    for _ in range(6):
        world.cycle(JOBWATCH_ADAPTIVE_POLLING="false")
    world.routes.put(
        _route(
            name="incidents",
            match={"events": ["UNREACHABLE", "FAILED"]},
            destinations=[{"type": "slack-webhook", "webhookSecret": "(deployment default)"}],
        )
    )
    world.routes.put(
        _route(name="health", match={"events": ["RECOVERED"]}, destinations=[{"type": "eventbridge"}])
    )
    records = world.published_records()
    events = [world.publisher.published[i].event for i in range(len(records))]
    assert events == ["STARTED", "UNREACHABLE", "RECOVERED", "FAILED"]
    world.slack_hook.answer(500)  # the first post (UNREACHABLE) fails and is retried later

    world.deliver_all(world.notifier(), records)

    posted = [text for text in world.slack_hook.texts() if "UNREACHABLE" in text or "FAILED" in text]
    assert len(posted) == 2 and "UNREACHABLE" in posted[0] and "FAILED" in posted[1]
    assert len(world.events.events) == 1  # RECOVERED, on the bus
