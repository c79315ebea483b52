"""The Slack app channel (bot token, Web API) over real sockets, against the Slack sink's Web API.

The channel is built directly (`slack_sdk` pointed at the sink's `/api/`) and driven through the real
delivery engine with in-memory ledger, queue and clock: every transition of a job edits the job's
root message in place and replies in its thread; FAILED/LOST/STALLED replies are broadcast; each
Slack Web API error is classified (refused for good, rate limited, too long, server trouble) and the
engine does the rest (dead-letter once, defer, retry with backoff).
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from jobwatch.adapters import aws
from jobwatch.adapters.dynamodb.threads import DynamoThreadStore
from jobwatch.channels.base import ChannelLimits, ChannelTuning, Notice
from jobwatch.channels.slack_app import BROADCAST_EVENTS, PERMANENT_ERRORS, SlackAppChannel, SlackAppPayload
from jobwatch.delivery.engine import DELIVERED, FAILED_PERMANENT, DeliveryDeps, deliver_batch
from jobwatch.delivery.records import BatchReport
from jobwatch.domain.model import JobSpec, Phase, Transition
from jobwatch.domain.routing import SlackAppDestination
from jobwatch.ports import ThreadStore
from jobwatch_devkit.fakes import (
    FakeClock,
    FakeQueue,
    FakeSecrets,
    InMemoryLedger,
    drain,
    record,
    sns_envelope,
)
from jobwatch_devkit.fakes_slack import InMemoryThreadStore, Step, job_story
from jobwatch_devkit.harness import LocalDeployment
from jobwatch_devkit.slack_sink import DEFAULT_BOT_TOKEN, ApiMessage, SinkResponse, SlackSink, SlackThread

pytestmark = pytest.mark.integration

CHANNEL = "C0JOBWATCH"
TOKEN_SECRET = "jobwatch/notify/slack-bot"
DESTINATION = SlackAppDestination(channel=CHANNEL, token_secret=TOKEN_SECRET)
TUNING = ChannelTuning(min_interval_s=0.0, max_retry_after_s=0.0, max_attempts=5, retry_base_s=30.0)
"""No pacing and no in-process waiting: a rate limit becomes a deferred copy the test can see."""
SPEC = JobSpec(source="weaviate-export", endpoint="https://w.example.com", job_id="nightly", backend="s3")

STARTED = Step("STARTED", Phase.RUNNING, progress=10.0, details={"objectsExported": 1200})
STALLED = Step(
    "STALLED", Phase.RUNNING, progress=40.0, note="no progress for 30m", details={"objectsExported": 4800}
)
SUCCEEDED = Step("SUCCEEDED", Phase.SUCCEEDED, progress=100.0, details={"objectsExported": 12000})
FAILED = Step("FAILED", Phase.FAILED, progress=40.0, error="disk full")
LOST = Step("LOST", Phase.LOST, note="upstream answered 404 five times")
CANCELED = Step("CANCELED", Phase.CANCELED)
STEPS = {"FAILED": FAILED, "LOST": LOST, "STALLED": STALLED, "SUCCEEDED": SUCCEEDED, "CANCELED": CANCELED}


class _Routed:
    """The channel as the notifier hands it a notice: with the mentions its routes add."""

    def __init__(self, channel: SlackAppChannel, mentions: Sequence[str]) -> None:
        self.channel = channel
        self.mentions = tuple(mentions)

    @property
    def limits(self) -> ChannelLimits:
        return self.channel.limits

    def render(self, notice: Notice) -> SlackAppPayload:
        return self.channel.render(Notice(notice.transition, mentions=self.mentions))

    def problems(self, payload: SlackAppPayload) -> list[str]:
        return self.channel.problems(payload)

    def send(self, payload: SlackAppPayload) -> Any:
        return self.channel.send(payload)


@dataclass
class Rig:
    """One Slack app destination on the sink, its engine dependencies, and ways to look at the result."""

    sink: SlackSink
    threads: ThreadStore
    secrets: FakeSecrets = field(default_factory=lambda: FakeSecrets({TOKEN_SECRET: DEFAULT_BOT_TOKEN}))
    clock: FakeClock = field(default_factory=FakeClock)
    ledger: InMemoryLedger = field(default_factory=InMemoryLedger)
    mentions: tuple[str, ...] = ()
    base_url: str | None = None
    channel: SlackAppChannel = field(init=False)
    queue: FakeQueue = field(init=False)

    def __post_init__(self) -> None:
        self.queue = FakeQueue(self.clock)
        self.channel = SlackAppChannel(
            DESTINATION, self.secrets, self.threads, TUNING, base_url=self.base_url or self.sink.api_url
        )

    @property
    def deps(self) -> DeliveryDeps:
        return DeliveryDeps(
            ledger=self.ledger,
            queue=self.queue,
            clock=self.clock,
            standing=lambda _tid: "PUBLISHED",  # every predecessor went out: order is kept, not given up
            sleep=self.clock.advance,
            monotonic=self.clock.now,
        )

    def deliver(self, records: list[dict[str, Any]]) -> BatchReport:
        channel = _Routed(self.channel, self.mentions) if self.mentions else self.channel
        return deliver_batch({"Records": records}, channel, self.deps)

    def send(self, *transitions: Transition) -> BatchReport:
        """One SQS batch with these transitions, as the SNS subscription delivers them."""
        return self.deliver([record(sns_envelope(t)) for t in transitions])

    def drain(self, *transitions: Transition) -> list[BatchReport]:
        """Deliver, then every deferred copy as it falls due (fake time): what SQS would do."""
        reports: list[BatchReport] = []

        def deliver(event: dict[str, Any]) -> None:
            reports.append(self.deliver(event["Records"]))

        drain(deliver, self.queue, self.clock, [record(sns_envelope(t)) for t in transitions])
        return reports

    def view(self) -> list[SlackThread]:
        return self.sink.channel_view(CHANNEL)

    def thread(self) -> SlackThread:
        threads = self.view()
        assert len(threads) == 1, self.sink.channel_text(CHANNEL)
        return threads[0]

    def methods(self) -> list[str]:
        return [call.method for call in self.sink.api_calls()]


@pytest.fixture
def rig(sink: SlackSink) -> Rig:
    return Rig(sink, InMemoryThreadStore())


def _events(replies: Sequence[ApiMessage]) -> list[str]:
    """The event each reply announces (its header reads `<emoji> <EVENT> · <title>`)."""
    return [reply.visible_text.splitlines()[0].split(" ")[1] for reply in replies]


def _story(*steps: Step) -> list[Transition]:
    return job_story(SPEC, *steps)


def _dead_reasons(rig: Rig) -> list[str]:
    return [reason for _, reason in rig.queue.dead_letters]


# -- the living thread ---------------------------------------------------------------------------------------


def test_the_first_transition_posts_a_root_and_replies_in_its_thread(rig: Rig) -> None:
    (started,) = _story(STARTED)

    report = rig.send(started)

    assert report.delivered == 1
    assert rig.methods() == ["chat.postMessage", "chat.postMessage"]
    thread = rig.thread()
    assert thread.root.edits == 0 and not thread.root.is_reply
    stored = rig.threads.root(DESTINATION.id, SPEC.key)
    assert stored is not None and (stored.channel, stored.ts) == (CHANNEL, thread.root.ts)
    assert _events(thread.replies) == ["STARTED"]
    assert not thread.replies[0].reply_broadcast


def test_the_root_shows_the_job_as_it_stands(rig: Rig) -> None:
    started, stalled = _story(STARTED, STALLED)
    rig.send(started, stalled)

    root = rig.thread().root.visible_text
    lines = root.splitlines()
    assert lines[0] == "🐢 RUNNING (stalled) · Weaviate export"
    assert "*Weaviate export* `nightly`" in root
    assert "▓▓▓▓▓▓▓▓░░░░░░░░░░░░ 40%" in root  # a text progress bar, 8 of 20 cells
    assert "*Objects exported*: 4,800" in root
    assert "*Duration*: 2m 00s (observed)" in root
    assert "*Last change*: stalled · 2026-01-01 00:02:00 UTC" in root
    assert rig.thread().root.text.startswith("🐢 RUNNING (stalled) · Weaviate export nightly · 40%")


def test_later_transitions_edit_the_root_in_place_and_reply_in_its_thread(rig: Rig) -> None:
    started, stalled, succeeded = _story(STARTED, STALLED, SUCCEEDED)

    reports = [rig.send(started), rig.send(stalled), rig.send(succeeded)]

    assert [r.delivered for r in reports] == [1, 1, 1]
    assert rig.methods() == ["chat.postMessage", "chat.postMessage"] + ["chat.update", "chat.postMessage"] * 2
    thread = rig.thread()
    assert thread.root.edits == 2
    assert thread.root.visible_text.splitlines()[0] == "✅ SUCCEEDED · Weaviate export"
    assert "▓" * 20 + " 100%" in thread.root.visible_text
    assert _events(thread.replies) == ["STARTED", "STALLED", "SUCCEEDED"]
    assert [r.reply_broadcast for r in thread.replies] == [False, True, False]


def test_a_batch_of_one_job_is_shown_in_order_in_one_thread(rig: Rig) -> None:
    started, stalled, succeeded = _story(STARTED, STALLED, SUCCEEDED)

    rig.send(succeeded, started, stalled)  # a standard queue hands them over in any order

    thread = rig.thread()
    assert _events(thread.replies) == ["STARTED", "STALLED", "SUCCEEDED"]
    assert thread.root.visible_text.startswith("✅ SUCCEEDED")


@pytest.mark.parametrize("event", ["FAILED", "LOST", "STALLED", "SUCCEEDED", "CANCELED"])
def test_failed_lost_and_stalled_replies_are_broadcast_to_the_channel(rig: Rig, event: str) -> None:
    started, last = _story(STARTED, STEPS[event])

    rig.drain(started, last)

    thread = rig.thread()
    assert _events(thread.replies) == ["STARTED", event]
    assert thread.replies[1].reply_broadcast is (event in BROADCAST_EVENTS)
    (reply_call,) = [c for c in rig.sink.api_calls("chat.postMessage") if c.args.get("thread_ts")][1:]
    assert reply_call.args.get("reply_broadcast", False) is (event in BROADCAST_EVENTS)


def test_a_deleted_root_gets_a_new_root(rig: Rig) -> None:
    started, failed = _story(STARTED, FAILED)
    rig.send(started)
    old = rig.thread().root
    assert rig.sink.delete_message(CHANNEL, old.ts)

    report = rig.send(failed)

    assert report.delivered == 1
    update = rig.sink.api_calls("chat.update")[0]
    assert update.error == "message_not_found"
    thread = rig.thread()  # the old thread is gone with its root; the new one carries on
    assert thread.root.ts != old.ts and thread.root.visible_text.startswith("❌ FAILED")
    assert _events(thread.replies) == ["FAILED"]
    stored = rig.threads.root(DESTINATION.id, SPEC.key)
    assert stored is not None and stored.ts == thread.root.ts


def test_a_transition_delivered_twice_posts_one_reply(rig: Rig) -> None:
    started, failed = _story(STARTED, FAILED)
    body = sns_envelope(failed)
    rig.send(started)

    first = rig.deliver([record(body)])
    again = rig.deliver([record(body)])  # SQS redelivers the same message

    assert (first.delivered, again.delivered, again.duplicates) == (1, 0, 1)
    assert _events(rig.thread().replies) == ["STARTED", "FAILED"]
    assert rig.thread().root.edits == 1


def test_the_thread_store_on_dynamodb_keeps_the_thread(sink: SlackSink, deployment: LocalDeployment) -> None:
    threads = DynamoThreadStore(aws.dynamodb(), deployment.settings.table)
    started, stalled, failed = _story(STARTED, STALLED, FAILED)
    ledger = InMemoryLedger()
    Rig(sink, threads, ledger=ledger).send(started)
    Rig(sink, threads, ledger=ledger).send(stalled)  # another process: the root is found in the table
    rig = Rig(sink, threads, ledger=ledger)
    rig.send(failed)

    thread = rig.thread()
    assert _events(thread.replies) == ["STARTED", "STALLED", "FAILED"]
    assert thread.root.edits == 2


# -- Slack's answers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("error", sorted(PERMANENT_ERRORS))
def test_each_permanent_error_is_dead_lettered_once_and_never_sent_again(rig: Rig, error: str) -> None:
    (started,) = _story(STARTED)
    body = sns_envelope(started)
    rig.sink.script([SinkResponse.api_error(error)])

    report = rig.deliver([record(body)])

    assert (report.delivered, report.dead_lettered, report.retried, report.deferred) == (0, 1, 0, 0)
    (reason,) = _dead_reasons(rig)
    assert reason == f"chat.postMessage: {error} (HTTP 200)"
    assert rig.ledger.state(DESTINATION.id, started.transition_id) == FAILED_PERMANENT
    calls = len(rig.sink.api_calls())
    again = rig.deliver([record(body)])
    assert (again.duplicates, len(rig.sink.api_calls())) == (1, calls)  # nothing sent again
    assert rig.queue.copies == [] and rig.view() == []


def test_a_permanent_error_on_the_reply_is_dead_lettered_and_the_next_transition_goes_on(rig: Rig) -> None:
    started, failed, lost = _story(STARTED, FAILED, LOST)
    rig.send(started)
    rig.sink.script([SinkResponse.api_error("not_in_channel", method="chat.postMessage")])

    rig.drain(failed, lost)

    assert _dead_reasons(rig) == ["chat.postMessage: not_in_channel (HTTP 200)"]
    assert rig.ledger.state(DESTINATION.id, failed.transition_id) == FAILED_PERMANENT
    assert _events(rig.thread().replies) == ["STARTED", "LOST"]


def test_a_permanent_error_on_the_root_update_is_dead_lettered(rig: Rig) -> None:
    started, failed = _story(STARTED, FAILED)
    rig.send(started)
    rig.sink.script([SinkResponse.api_error("is_archived", method="chat.update")])

    report = rig.send(failed)

    assert report.dead_lettered == 1
    assert _dead_reasons(rig) == ["chat.update: is_archived (HTTP 200)"]
    assert _events(rig.thread().replies) == ["STARTED"]


def test_missing_scope_names_the_scope_needed(rig: Rig) -> None:
    (started,) = _story(STARTED)
    rig.sink.script([SinkResponse(200, '{"ok": false, "error": "missing_scope", "needed": "chat:write"}')])

    rig.send(started)

    assert _dead_reasons(rig) == ["chat.postMessage: missing_scope (HTTP 200); needs chat:write"]


@pytest.mark.parametrize("status", [429, 200])
def test_ratelimited_is_deferred_with_retry_after_and_delivered_later(rig: Rig, status: int) -> None:
    started, failed = _story(STARTED, FAILED)
    rig.sink.script([SinkResponse.api_error("ratelimited", status=status, retry_after="7")])
    at = rig.clock.now()

    first = rig.send(started, failed)

    assert (first.delivered, first.deferred, first.retried, first.dead_lettered) == (0, 2, 0, 0)
    assert sorted(copy.due - at for copy in rig.queue.copies) == [7.0, 7.0]
    rig.drain()
    assert rig.queue.dead_letters == []
    assert rig.ledger.state(DESTINATION.id, failed.transition_id) == DELIVERED
    assert _events(rig.thread().replies) == ["STARTED", "FAILED"]


def test_a_rate_limited_reply_is_retried_without_a_second_root(rig: Rig) -> None:
    started, failed = _story(STARTED, FAILED)
    rig.send(started)
    rig.sink.script([SinkResponse.api_error("ratelimited", method="chat.postMessage", retry_after="3")])

    rig.drain(failed)

    thread = rig.thread()
    assert _events(thread.replies) == ["STARTED", "FAILED"]
    assert thread.root.edits == 2  # edited again on the retry: harmless, the same content


def test_msg_too_long_is_shrunk_and_delivered_in_the_same_send(rig: Rig) -> None:
    started, failed = _story(STARTED, FAILED)
    rig.sink.script([SinkResponse.api_error("msg_too_long", method="chat.postMessage")])  # the root post
    rig.send(started)
    rig.sink.script([SinkResponse.api_error("msg_too_long", method="chat.update")])

    report = rig.send(failed)

    assert report.delivered == 1 and rig.queue.copies == [] and rig.queue.dead_letters == []
    thread = rig.thread()
    assert thread.root.blocks == []  # the shrunk update removed the blocks
    assert thread.root.text == "❌ FAILED · Weaviate export nightly · 40%"
    assert _events(thread.replies) == ["STARTED", "FAILED"]
    calls = [(c.method, c.error, "blocks" in c.args) for c in rig.sink.api_calls()]
    assert calls == [
        ("chat.postMessage", "msg_too_long", True),
        ("chat.postMessage", None, False),  # the root, shrunk: a short text without blocks
        ("chat.postMessage", None, True),
        ("chat.update", "msg_too_long", True),
        ("chat.update", None, True),  # blocks: [] so Slack drops the old ones
        ("chat.postMessage", None, True),
    ]


def test_a_reply_too_long_even_when_shrunk_is_dead_lettered(rig: Rig) -> None:
    (started,) = _story(STARTED)
    rig.sink.script([SinkResponse.api_error("msg_too_long")] * 2)

    report = rig.send(started)

    assert report.dead_lettered == 1
    assert _dead_reasons(rig) == ["chat.postMessage: msg_too_long (HTTP 200)"]


@pytest.mark.parametrize("failure", ["server_error", "service_unavailable", "drop", "api:internal_error"])
def test_server_trouble_is_retried_with_backoff(rig: Rig, failure: str) -> None:
    (started,) = _story(STARTED)
    rig.sink.script([failure, failure])
    at = rig.clock.now()

    reports = rig.drain(started)

    assert [(r.delivered, r.retried) for r in reports] == [(0, 1), (0, 1), (1, 0)]
    assert rig.clock.now() - at == 30 + 60  # two delays: the base, then doubled
    assert _events(rig.thread().replies) == ["STARTED"]
    assert rig.queue.dead_letters == []


def test_server_errors_past_the_attempt_cap_are_dead_lettered_with_the_last_error(rig: Rig) -> None:
    (started,) = _story(STARTED)
    rig.sink.script(["server_error"] * TUNING.max_attempts)

    rig.drain(started)

    (reason,) = _dead_reasons(rig)
    assert (
        reason == f"gave up after {TUNING.max_attempts} attempts; last: chat.postMessage: http_500 (HTTP 500)"
    )
    assert rig.view() == []


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_no_answer_at_all_is_retried(sink: SlackSink) -> None:
    rig = Rig(sink, InMemoryThreadStore(), base_url=f"http://127.0.0.1:{_closed_port()}/api/")
    (started,) = _story(STARTED)

    report = rig.send(started)

    assert (report.delivered, report.retried) == (0, 1)
    (copy,) = rig.queue.copies
    assert copy.due - rig.clock.now() == TUNING.retry_base_s


def test_an_unreadable_token_blocks_the_batch_then_delivers(rig: Rig) -> None:
    started, failed = _story(STARTED, FAILED)
    del rig.secrets.values[TOKEN_SECRET]

    report = rig.send(started, failed)
    assert (report.delivered, report.retried, report.deferred) == (0, 1, 2)
    assert rig.sink.api_calls() == []
    rig.secrets.values[TOKEN_SECRET] = DEFAULT_BOT_TOKEN
    rig.drain()

    assert _events(rig.thread().replies) == ["STARTED", "FAILED"]


def test_a_wrong_token_is_refused_and_a_fixed_secret_is_read_again(rig: Rig) -> None:
    started, failed = _story(STARTED, FAILED)
    rig.secrets.values[TOKEN_SECRET] = "xoxb-revoked"

    rig.send(started)
    assert _dead_reasons(rig) == ["chat.postMessage: invalid_auth (HTTP 200)"]
    rig.secrets.values[TOKEN_SECRET] = DEFAULT_BOT_TOKEN  # an operator rotates the secret
    rig.send(failed)

    assert _events(rig.thread().replies) == ["FAILED"]
    assert rig.secrets.reads == [TOKEN_SECRET, TOKEN_SECRET]


# -- mentions ------------------------------------------------------------------------------------------------

HOSTILE = "disk full <!channel> <@U0INTRUDER> <!subteam^S0FAKE> <https://evil.example|click> @here"


def test_mentions_appear_only_where_routes_put_them(sink: SlackSink) -> None:
    rig = Rig(sink, InMemoryThreadStore(), mentions=("<!subteam^S0ONCALL>", "<@U0LEAD>", "not a mention"))
    started, failed = _story(STARTED, Step("FAILED", Phase.FAILED, error=HOSTILE, note=HOSTILE))

    rig.send(started, failed)

    thread = rig.thread()
    assert thread.root.mentions == []  # a root is edited; an edit notifies nobody
    assert [reply.mentions for reply in thread.replies] == [
        ["<!subteam^S0ONCALL>", "<@U0LEAD>"],
        ["<!subteam^S0ONCALL>", "<@U0LEAD>"],
    ]
    seen = thread.replies[1].visible_text
    assert "<!channel> <@U0INTRUDER>" in seen  # upstream's text shows as typed, and notifies nobody
    assert "@\u2060here" in seen


def test_without_route_mentions_nobody_is_mentioned(rig: Rig) -> None:
    started, failed = _story(STARTED, Step("FAILED", Phase.FAILED, error=HOSTILE))

    rig.send(started, failed)

    thread = rig.thread()
    assert [m.mentions for m in (thread.root, *thread.replies)] == [[], [], []]


def test_the_channel_reads_as_a_person_sees_it(rig: Rig) -> None:
    rig.send(*_story(STARTED, STALLED, FAILED))

    text = rig.sink.channel_text(CHANNEL)

    lines = text.splitlines()
    assert lines[0] == f"#{CHANNEL}"
    assert lines[1].startswith("● ") and lines[1].endswith("(edited 2x)")
    assert lines[2] == "  ❌ FAILED · Weaviate export"
    replies = [line for line in lines if line.startswith("  ↳ ")]
    assert [line.endswith("[also sent to the channel]") for line in replies] == [False, True, True]
