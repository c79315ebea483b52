"""Both senders through the one delivery engine, on fakes: claims, order, retries, dead-letters."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from jobwatch.delivery.engine import FAILED_PERMANENT
from jobwatch_devkit.component import WEBHOOK_SECRET, World, export_spec, export_status
from jobwatch_devkit.fakes import json_answer, record


def _world_with_story(*statuses: str) -> World:
    """One job whose polls see `statuses` in turn; one cycle per status, all published."""
    world = World()
    world.track(export_spec("nightly"))
    world.upstream.script("nightly", [json_answer(export_status("nightly", s)) for s in statuses])
    for _ in statuses:
        world.cycle()
    return world


def test_each_transition_is_posted_once_however_often_sqs_delivers_it() -> None:
    world = _world_with_story("STARTED", "SUCCESS")
    slack = world.slack()
    records = world.published_records()

    first = slack.deliver({"Records": records})
    again = slack.deliver({"Records": [record(r["body"]) for r in records]})

    assert (first.delivered, again.delivered, again.duplicates) == (2, 0, 2)
    assert len(world.slack_hook.posts) == 2


def test_a_job_successor_waits_for_its_predecessor_across_batches() -> None:
    world = _world_with_story("STARTED", "SUCCESS")
    slack = world.slack()
    started, succeeded = world.published_records()

    early = slack.deliver({"Records": [succeeded]})
    assert (early.delivered, early.deferred) == (0, 1)
    world.deliver_all(slack, world.slack_queue, [started])

    texts = world.slack_hook.texts()
    assert len(texts) == 2
    assert "STARTED" in texts[0] and "SUCCEEDED" in texts[1]


def test_a_long_rate_limit_defers_the_rest_of_the_batch_without_spending_attempts() -> None:
    world = _world_with_story("STARTED", "SUCCESS")
    world.slack_hook.answer(429, retry_after=120)
    slack = world.slack()

    report = slack.deliver({"Records": world.published_records()})
    assert (report.delivered, report.deferred, report.retried) == (0, 2, 0)
    world.deliver_all(slack, world.slack_queue, [])

    assert len(world.slack_hook.posts) == 2
    assert world.slack_queue.dead_letters == []


def test_server_errors_are_retried_with_backoff_until_the_attempt_cap() -> None:
    world = _world_with_story("STARTED")
    world.slack_hook.answer(500, times=3)
    slack = world.slack(JOBWATCH_SLACK_MAX_ATTEMPTS="3")
    started = world.clock.now()

    world.deliver_all(slack, world.slack_queue, world.published_records())

    assert world.slack_hook.posts == []
    ((_, reason),) = world.slack_queue.dead_letters
    assert reason.startswith("gave up after 3 attempts; last: HTTP 500")
    assert world.clock.now() - started >= 30 + 60  # two delays: 30 s, then doubled
    (transition,) = world.publisher.published
    assert world.ledger.state("slack", transition.transition_id) == FAILED_PERMANENT


def test_a_revoked_webhook_is_dead_lettered_once_and_its_successor_does_not_wait() -> None:
    world = _world_with_story("STARTED", "SUCCESS")
    world.slack_hook.answer(404)
    slack = world.slack()

    world.deliver_all(slack, world.slack_queue, world.published_records())

    assert len(world.slack_queue.dead_letters) == 1
    assert world.slack_queue.dead_letters[0][1].startswith("HTTP 404")
    (post,) = world.slack_hook.posts
    assert "SUCCEEDED" in str(post["text"])


def test_an_unreadable_webhook_secret_pauses_the_batch_then_delivers() -> None:
    world = _world_with_story("STARTED")
    del world.secrets.values[WEBHOOK_SECRET]
    slack = world.slack()

    report = slack.deliver({"Records": world.published_records()})
    assert (report.delivered, report.retried) == (0, 1)
    world.secrets.values[WEBHOOK_SECRET] = "https://hooks.test/x"
    world.deliver_all(slack, world.slack_queue, [])

    assert len(world.slack_hook.posts) == 1


def test_two_senders_on_one_batch_post_each_transition_once() -> None:
    world = _world_with_story("STARTED", "SUCCESS")
    records = world.published_records()
    senders = [world.slack(), world.slack()]

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda s: s.deliver({"Records": records}), senders))
    world.deliver_all(senders[0], world.slack_queue, [])

    assert len(world.slack_hook.posts) == 2


def test_email_is_sent_once_and_a_failed_publish_is_retried_later() -> None:
    world = _world_with_story("STARTED", "FAILED")
    email = world.email()
    failed = world.published_records()[1]
    world.email_topic.fail_next()

    first = email.deliver({"Records": [failed]})
    assert (first.delivered, first.retried, first.deferred, first.failures) == (0, 1, 1, [])
    world.deliver_all(email, world.email_queue, [record(failed["body"])])

    assert [t.event for t in world.email_topic.sent] == ["FAILED"]


def test_an_unreadable_record_is_dead_lettered_with_its_reason() -> None:
    world = World()
    report = world.email().deliver({"Records": [record("{not json")]})

    assert (report.dead_lettered, report.failures) == (1, [])
    ((body, reason),) = world.email_queue.dead_letters
    assert body == "{not json" and reason.startswith("unreadable:")
