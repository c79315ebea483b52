"""The Slack app channel with no sockets: rendering, limits, the classification of Slack's answers, and
the send path through the real slack_sdk with its urllib call stubbed (`FakeSlackApi`).

What needs a real HTTP exchange (the living thread on the sink, every error class through the engine)
is in tests/integration/test_slack_app.py; here are the rules that need no socket, plus what the sink
cannot show quickly: timeouts (the channel's is 10 s), the SDK making exactly one request per call
(its own retry handlers are off), the token cache, and the lazy import of slack_sdk.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import urllib.error
from typing import Any

import pytest

from jobwatch.channels.base import ChannelTuning, Notice, SendOutcome, SendResult
from jobwatch.channels.slack_app import (
    BROADCAST_EVENTS,
    CLAIM_LEASE_S,
    SECRET_PAUSE_S,
    TIMEOUT_S,
    SlackAppChannel,
    SlackAppPayload,
    classify,
    error_code,
    progress_bar,
    retry_after_s,
)
from jobwatch.delivery.engine import DeliveryDeps
from jobwatch.domain.model import JobSpec, Phase, Transition
from jobwatch.domain.routing import SlackAppDestination
from jobwatch.render.slack_blocks import render_payload, validate_payload
from jobwatch_devkit.fakes import (
    FakeClock,
    FakeQueue,
    FakeSecrets,
    InMemoryLedger,
    drain,
    record,
    sns_envelope,
)
from jobwatch_devkit.fakes_slack import FAKE_BOT_TOKEN, FakeSlackApi, InMemoryThreadStore, Step, job_story

CHANNEL = "C0COMPNT1"
SECRET = "jobwatch/notify/bot"
DESTINATION = SlackAppDestination(channel=CHANNEL, token_secret=SECRET)
TUNING = ChannelTuning(min_interval_s=0.0, max_retry_after_s=0.0, max_attempts=4, retry_base_s=20.0)
SPEC = JobSpec(source="weaviate-export", endpoint="https://w.example.com", job_id="exp-1", backend="s3")
STARTED = Step("STARTED", Phase.RUNNING, progress=12.5, details={"objectsExported": 1500})
FAILED = Step("FAILED", Phase.FAILED, progress=40.0, error="disk full")


def _channel(secrets: FakeSecrets | None = None) -> SlackAppChannel:
    return SlackAppChannel(
        DESTINATION, secrets or FakeSecrets({SECRET: FAKE_BOT_TOKEN}), InMemoryThreadStore(), TUNING
    )


def _notice(*steps: Step, mentions: tuple[str, ...] = ()) -> Notice:
    return Notice(job_story(SPEC, *steps)[-1], mentions=mentions)


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> FakeSlackApi:
    fake = FakeSlackApi()
    monkeypatch.setattr("slack_sdk.web.base_client.urlopen", fake.urlopen)
    return fake


# -- limits and rendering ----------------------------------------------------------------------------------


def test_limits_come_from_the_destination_and_the_tuning() -> None:
    limits = _channel().limits
    assert (limits.name, limits.metric_prefix, limits.ordered) == ("slack-app.C0COMPNT1", "SlackApp", True)
    assert (limits.claim_lease_s, limits.max_attempts, limits.retry_base_s) == (CLAIM_LEASE_S, 4, 20.0)
    assert (limits.min_interval_s, limits.max_retry_after_s) == (0.0, 0.0)
    assert (limits.order_wait_s, limits.order_retry_s) == (TUNING.order_wait_s, TUNING.order_retry_s)


def test_the_payload_holds_the_root_the_reply_and_the_job() -> None:
    notice = _notice(STARTED, FAILED, mentions=("<!here>",))
    payload = _channel().render(notice)

    assert isinstance(payload, SlackAppPayload)
    assert (payload.job_key, payload.transition_id) == (SPEC.key, notice.transition.transition_id)
    assert payload.reply == render_payload(notice.transition, ("<!here>",))
    assert payload.broadcast
    assert set(payload.root) == {"text", "blocks"}
    assert payload.root_short == "❌ FAILED · Weaviate export exp-1 · 40%"
    assert payload.reply_short == "<!here> ❌ FAILED · Weaviate export exp-1: failed"
    assert _channel().problems(payload) == []


@pytest.mark.parametrize("event", ["QUEUED", "STARTED", "SUCCEEDED", "FAILED", "CANCELED", "LOST", "STALLED"])
def test_only_failed_lost_and_stalled_replies_are_broadcast(event: str) -> None:
    phase = {"QUEUED": Phase.PENDING, "STARTED": Phase.RUNNING, "STALLED": Phase.RUNNING}.get(event)
    payload = _channel().render(_notice(STARTED, Step(event, phase or Phase(event))))
    assert payload.broadcast is (event in BROADCAST_EVENTS)


def _texts(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def test_the_root_shows_the_state_and_never_mentions_anyone() -> None:
    payload = _channel().render(_notice(STARTED, mentions=("<!subteam^S0ONCALL>", "<@U0LEAD>")))
    header, section, context, actions = payload.root["blocks"]

    assert header["text"]["text"] == "▶️ RUNNING · Weaviate export"
    assert section["text"]["text"] == "*Weaviate export* `exp-1`\n▓▓░░░░░░░░░░░░░░░░░░ 12.5%"
    fields = [f["text"] for f in section["fields"]]
    assert fields[:3] == ["*Phase*\nRUNNING", "*Progress*\n12.5%", "*Objects exported*\n1,500"]
    assert fields[3] == "*Duration*\n1m 00s (observed)"
    assert fields[4] == "*Last change*\nstarted · 2026-01-01 00:01:00 UTC"
    assert "Updated 2026-01-01 00:01:00 UTC" in context["elements"][0]["text"]
    # the job's buttons (Snooze 4 h, Mute, Untrack) act on it through the interactivity endpoint
    assert [(b["action_id"], b["value"]) for b in actions["elements"]] == [
        ("jobwatch_snooze", payload.job_key),
        ("jobwatch_mute", payload.job_key),
        ("jobwatch_untrack", payload.job_key),
    ]
    assert "<!subteam" not in _texts(payload.root["blocks"]) + payload.root["text"]
    assert "<!subteam^S0ONCALL> <@U0LEAD>" in payload.reply["text"]


def test_a_health_event_keeps_the_phase_and_says_why_in_the_root() -> None:
    stalled = Step("STALLED", Phase.RUNNING, progress=12.5, note="no progress for 30m")
    payload = _channel().render(_notice(STARTED, stalled))
    assert payload.root["blocks"][0]["text"]["text"] == "🐢 RUNNING (stalled) · Weaviate export"


def test_upstream_text_in_the_root_is_escaped() -> None:
    spec = SPEC.model_copy(update={"job_id": "exp <!channel> & <@U0X>", "endpoint": "https://a.example.com"})
    (transition,) = job_story(spec, STARTED)
    payload = _channel().render(Notice(transition))
    rendered = _texts(payload.root["blocks"]) + payload.root["text"] + payload.root_short
    assert "<!channel>" not in rendered and "<@U0X>" not in rendered
    assert "&lt;!channel&gt; &amp; &lt;@U0X&gt;" in rendered


@pytest.mark.parametrize(
    ("progress", "bar"),
    [(None, ""), (float("nan"), ""), (0.0, "░" * 20), (4.99, "░" * 20), (50.0, "▓" * 10 + "░" * 10)],
)
def test_progress_bar(progress: float | None, bar: str) -> None:
    assert progress_bar(progress) == bar
    assert progress_bar(100.0) == progress_bar(250.0) == "▓" * 20


def test_problems_name_the_message_that_breaks_a_limit() -> None:
    payload = _channel().render(_notice(STARTED))
    too_many = {**payload.root, "blocks": payload.root["blocks"] * 13}
    broken = SlackAppPayload(**{**_fields(payload), "root": too_many, "reply_short": " "})
    assert _channel().problems(broken) == ["root blocks: 52 blocks > 50", "reply short text: empty"]
    assert validate_payload(payload.reply) == []


def _fields(payload: SlackAppPayload) -> dict[str, Any]:
    return {name: getattr(payload, name) for name in SlackAppPayload.__slots__}


# -- classifying Slack's answers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "headers", "expected"),
    [
        (200, "channel_not_found", {}, SendResult(SendOutcome.PERMANENT, "m: channel_not_found (HTTP 200)")),
        (200, "not_in_channel", {}, SendResult(SendOutcome.PERMANENT, "m: not_in_channel (HTTP 200)")),
        (200, "invalid_auth", {}, SendResult(SendOutcome.PERMANENT, "m: invalid_auth (HTTP 200)")),
        (200, "not_authed", {}, SendResult(SendOutcome.PERMANENT, "m: not_authed (HTTP 200)")),
        (200, "account_inactive", {}, SendResult(SendOutcome.PERMANENT, "m: account_inactive (HTTP 200)")),
        (200, "token_revoked", {}, SendResult(SendOutcome.PERMANENT, "m: token_revoked (HTTP 200)")),
        (200, "missing_scope", {}, SendResult(SendOutcome.PERMANENT, "m: missing_scope (HTTP 200)")),
        (200, "is_archived", {}, SendResult(SendOutcome.PERMANENT, "m: is_archived (HTTP 200)")),
        (200, "invalid_blocks", {}, SendResult(SendOutcome.PERMANENT, "m: invalid_blocks (HTTP 200)")),
        (200, "msg_too_long", {}, SendResult(SendOutcome.PERMANENT, "m: msg_too_long (HTTP 200)")),
        (
            429,
            "ratelimited",
            {"Retry-After": "30"},
            SendResult(SendOutcome.RATE_LIMITED, "m: ratelimited (HTTP 429)", 30.0),
        ),
        (
            200,
            "ratelimited",
            {"retry-after": "2"},
            SendResult(SendOutcome.RATE_LIMITED, "m: ratelimited (HTTP 200)", 2.0),
        ),
        (429, "http_429", {}, SendResult(SendOutcome.RATE_LIMITED, "m: http_429 (HTTP 429)")),
        (500, "http_500", {}, SendResult(SendOutcome.RETRY, "m: http_500 (HTTP 500)")),
        (503, "service_unavailable", {}, SendResult(SendOutcome.RETRY, "m: service_unavailable (HTTP 503)")),
        (408, "http_408", {}, SendResult(SendOutcome.RETRY, "m: http_408 (HTTP 408)")),
        (200, "internal_error", {}, SendResult(SendOutcome.RETRY, "m: internal_error (HTTP 200)")),
        (404, "http_404", {}, SendResult(SendOutcome.PERMANENT, "m: http_404 (HTTP 404)")),
    ],
)
def test_classification(status: int, error: str, headers: dict[str, str], expected: SendResult) -> None:
    assert classify("m", status, error, headers) == expected


def test_retry_after_values() -> None:
    assert retry_after_s({"Retry-After": "12"}) == 12.0
    assert retry_after_s({"retry-after": ["3"]}) == 3.0
    assert retry_after_s({"Retry-After": "-5"}) == 0.0
    assert retry_after_s({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}) is None
    assert retry_after_s({"Retry-After": "inf"}) is None
    assert retry_after_s({}) is None


def test_error_codes_come_from_the_body_or_the_status() -> None:
    class Answer:
        def __init__(self, data: Any, status_code: int) -> None:
            self.data, self.status_code = data, status_code

    assert error_code(Answer({"ok": False, "error": "is_archived"}, 200)) == "is_archived"
    assert (
        error_code(Answer({"ok": False, "error": "Received a response in a non-JSON format: x"}, 502))
        == "http_502"
    )
    assert error_code(Answer(b"binary", 500)) == "http_500"


# -- sending through the real SDK, urllib stubbed ----------------------------------------------------------


def test_a_first_send_posts_the_root_then_the_reply_in_its_thread(slack: FakeSlackApi) -> None:
    channel = _channel()
    payload = channel.render(_notice(STARTED, FAILED))

    assert channel.send(payload).outcome is SendOutcome.DELIVERED

    assert slack.methods() == ["chat.postMessage", "chat.postMessage"]
    root, reply = (args for _, args in slack.calls)
    assert (root["channel"], root["unfurl_links"], "thread_ts" in root) == (CHANNEL, False, False)
    assert (reply["thread_ts"], reply["reply_broadcast"]) == ("1767225600.000001", True)
    assert slack.timeouts == [TIMEOUT_S, TIMEOUT_S]


def test_a_second_send_edits_the_root_and_replies(slack: FakeSlackApi) -> None:
    channel = _channel()
    channel.send(channel.render(_notice(STARTED)))
    channel.send(channel.render(_notice(STARTED, FAILED)))

    assert slack.methods() == ["chat.postMessage", "chat.postMessage", "chat.update", "chat.postMessage"]
    update = slack.calls[2][1]
    assert (update["channel"], update["ts"]) == (CHANNEL, "1767225600.000001")
    assert slack.calls[3][1]["thread_ts"] == "1767225600.000001"


@pytest.mark.parametrize(
    "failure",
    [
        TimeoutError("timed out"),
        urllib.error.URLError(TimeoutError("timed out")),
        urllib.error.URLError(ConnectionRefusedError(111, "refused")),
        http.client.RemoteDisconnected("closed"),
        http.client.IncompleteRead(b""),
        ConnectionResetError(104, "reset"),
    ],
)
def test_no_answer_is_retried_and_the_sdk_never_retries_by_itself(
    slack: FakeSlackApi, failure: BaseException
) -> None:
    slack.fail_next(raises=failure)

    result = _channel().send(_channel().render(_notice(STARTED)))

    assert result.outcome is SendOutcome.RETRY
    assert result.detail == f"chat.postMessage: no answer: {type(failure).__name__}"
    assert slack.methods() == ["chat.postMessage"]  # one request: the engine owns retries


def test_a_429_is_rate_limited_with_its_retry_after_and_not_slept_on(slack: FakeSlackApi) -> None:
    slack.fail_next("ratelimited", status=429, retry_after="30")
    result = _channel().send(_channel().render(_notice(STARTED)))
    assert result == SendResult(SendOutcome.RATE_LIMITED, "chat.postMessage: ratelimited (HTTP 429)", 30.0)
    assert slack.methods() == ["chat.postMessage"]


def test_msg_too_long_sends_the_short_form_once(slack: FakeSlackApi) -> None:
    slack.fail_next("msg_too_long", method="chat.postMessage")
    channel = _channel()
    payload = channel.render(_notice(STARTED))

    assert channel.send(payload).outcome is SendOutcome.DELIVERED

    first, shrunk, reply = (args for _, args in slack.calls)
    assert "blocks" in first and "blocks" not in shrunk and shrunk["text"] == payload.root_short
    assert reply["thread_ts"] and "blocks" in reply


def test_the_token_is_read_once_and_again_after_an_auth_error(slack: FakeSlackApi) -> None:
    secrets = FakeSecrets({SECRET: FAKE_BOT_TOKEN})
    channel = _channel(secrets)
    payload = channel.render(_notice(STARTED))
    channel.send(payload)
    channel.send(payload)
    assert secrets.reads == [SECRET]

    slack.fail_next("token_revoked")
    assert channel.send(payload).outcome is SendOutcome.PERMANENT
    channel.send(payload)
    assert secrets.reads == [SECRET, SECRET]


@pytest.mark.parametrize("values", [{}, {SECRET: "  "}])
def test_an_unreadable_or_empty_token_blocks_the_channel(slack: FakeSlackApi, values: dict[str, str]) -> None:
    result = _channel(FakeSecrets(values)).send(_channel().render(_notice(STARTED)))
    assert (result.outcome, result.retry_after_s) == (SendOutcome.BLOCKED, SECRET_PAUSE_S)
    assert result.detail.startswith("bot token secret unavailable: secret 'jobwatch/notify/bot'")
    assert slack.calls == []


def test_the_engine_keeps_one_thread_per_job_on_fakes(slack: FakeSlackApi) -> None:
    from jobwatch.delivery.engine import deliver_batch

    clock = FakeClock()
    queue = FakeQueue(clock)
    deps = DeliveryDeps(ledger=InMemoryLedger(), queue=queue, clock=clock, standing=lambda _t: "PUBLISHED")
    channel = _channel()
    story: list[Transition] = job_story(SPEC, STARTED, FAILED)
    other = job_story(SPEC.model_copy(update={"job_id": "exp-2"}), STARTED)
    slack.fail_next(status=503, method="chat.update")

    drain(
        lambda event: deliver_batch(event, channel, deps),
        queue,
        clock,
        [record(sns_envelope(t)) for t in [*story, *other]],
    )

    roots = [args for method, args in slack.calls if method == "chat.postMessage" and "thread_ts" not in args]
    assert len(roots) == 2  # one per job, however often a send was retried
    assert queue.dead_letters == []


def test_slack_sdk_is_imported_only_when_sending() -> None:
    code = (
        "import sys\n"
        "from jobwatch.channels.base import ChannelTuning, Notice\n"
        "from jobwatch.channels.slack_app import SlackAppChannel\n"
        "from jobwatch.domain.model import JobSpec, Phase\n"
        "from jobwatch.domain.routing import SlackAppDestination\n"
        "from jobwatch_devkit.fakes import FakeSecrets\n"
        "from jobwatch_devkit.fakes_slack import InMemoryThreadStore, Step, job_story\n"
        "spec = JobSpec(source='weaviate-export', endpoint='https://w.example.com', job_id='x')\n"
        "d = SlackAppDestination(channel='C0LAZY01', token_secret='jobwatch/notify/x')\n"
        "c = SlackAppChannel(d, FakeSecrets({}), InMemoryThreadStore(), ChannelTuning())\n"
        "p = c.render(Notice(job_story(spec, Step('STARTED', Phase.RUNNING))[0]))\n"
        "assert c.problems(p) == []\n"
        "c.send(p)  # the secret is unavailable: blocked before any client is made\n"
        "print(sorted(m for m in sys.modules if m.startswith('slack_sdk')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
