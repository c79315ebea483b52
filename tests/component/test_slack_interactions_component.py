"""Acting from Slack on the in-memory fakes: what a verified click does, and that nothing else does anything.

Requests are signed here with `hmac` directly (not with the code under test), through the function's
entry point (`entrypoints.slack_interactions.handle`, a proxy event in, a proxy response out) wired
to fakes, so the whole path from the event to the stored job runs without a socket. The last tests
are Hypothesis fuzzers: random bodies, headers and timestamps never crash the handler, and never
change a job, the replay memory or the message unless the request is correctly signed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobwatch.app.slack_interactions import SlackInteractions
from jobwatch.domain.model import TrackedJob
from jobwatch.domain.slack_interaction import ACTED_BLOCK_ID, ACTIONS_BLOCK_ID, MAX_BODY_BYTES
from jobwatch.entrypoints.slack_interactions import handle
from jobwatch_devkit.component import export_spec
from jobwatch_devkit.fakes import (
    FakeClock,
    FakeSecrets,
    InMemoryJobStore,
    InMemoryReplayGuard,
    RecordingResponder,
)

SECRET_NAME = "jobwatch-slack/signing-secret"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
USER = {"id": "U0ANA00001", "username": "ana", "name": "ana"}


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    """What Slack sends, computed here without jobwatch's code."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def click_body(key: str, action_id: str = "jobwatch_snooze", **changes: Any) -> bytes:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": USER,
        "team": {"id": "T0JOBWATCH"},
        "channel": {"id": "C0SEARCH01"},
        "container": {"type": "message", "message_ts": "1767225000.000100"},
        "message": {"text": "▶️ RUNNING · Weaviate export", "blocks": [{"type": "divider", "block_id": "d"}]},
        "response_url": "https://hooks.slack.com/actions/T0JOBWATCH/1/abc",
        "actions": [{"action_id": action_id, "block_id": ACTIONS_BLOCK_ID, "value": key, "type": "button"}],
    }
    payload.update(changes)
    return urlencode({"payload": json.dumps(payload)}).encode()


def proxy_event(body: bytes, headers: dict[str, str], *, base64_body: bool = False) -> dict[str, Any]:
    return {
        "resource": "/slack/interactions",
        "httpMethod": "POST",
        "headers": headers,
        "requestContext": {"identity": {"sourceIp": "192.0.2.44"}},
        "body": base64.b64encode(body).decode() if base64_body else body.decode("utf-8", "surrogateescape"),
        "isBase64Encoded": base64_body,
    }


@dataclass
class Slack:
    """The interactivity function over fakes, with one tracked job."""

    clock: FakeClock = field(default_factory=FakeClock)
    store: InMemoryJobStore = field(default_factory=InMemoryJobStore)
    secrets: FakeSecrets = field(default_factory=lambda: FakeSecrets({SECRET_NAME: SECRET}))
    replays: InMemoryReplayGuard = field(default_factory=InMemoryReplayGuard)
    responder: RecordingResponder = field(default_factory=RecordingResponder)

    def __post_init__(self) -> None:
        self.job, _ = self.store.add_job(export_spec("nightly"), self.clock.now_iso())
        self.interactions = SlackInteractions(
            store=self.store,
            clock=self.clock,
            secrets=self.secrets,
            signing_secret_name=SECRET_NAME,
            replays=self.replays,
            responder=self.responder,
        )

    def signed_event(
        self, body: bytes, *, secret: str = SECRET, at: float | None = None, **options: Any
    ) -> dict[str, Any]:
        timestamp = str(int(self.clock.now() if at is None else at))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": slack_signature(secret, timestamp, body),
        }
        return proxy_event(body, headers, **options)

    def send(self, event: Any) -> tuple[int, dict[str, Any]]:
        response = handle(event, None, self.interactions)
        assert response["headers"] == {"Content-Type": "application/json"}
        return int(response["statusCode"]), json.loads(response["body"])

    def click(self, action_id: str = "jobwatch_snooze", **options: Any) -> tuple[int, dict[str, Any]]:
        return self.send(self.signed_event(click_body(self.job.key, action_id), **options))

    def stored(self) -> TrackedJob | None:
        return self.store.get_job(self.job.key)

    def unchanged(self) -> bool:
        """Nothing was written, remembered or sent since the job was tracked."""
        return (
            self.stored() == self.job
            and self.store.writes == 1
            and self.replays.seen == {}
            and self.responder.outcomes == []
        )


# -- applied -------------------------------------------------------------------------------------------


def test_snooze_from_slack_snoozes_the_job_for_4_hours_recording_who() -> None:
    slack = Slack()
    status, body = slack.click("jobwatch_snooze")
    assert status == 200
    stored = slack.stored()
    assert stored is not None
    assert stored.quiet.snoozed_by == "slack:ana (U0ANA00001)"
    assert stored.quiet.snoozed_until == "2026-01-01T04:00:00+00:00"  # FakeClock's now + 4 h
    assert not stored.quiet.muted
    assert body == {
        "ok": True,
        "action": "snooze",
        "jobKey": slack.job.key,
        "by": "slack:ana (U0ANA00001)",
        "snoozedUntil": "2026-01-01T04:00:00+00:00",
        "messageUpdated": True,
    }
    (message,) = slack.responder.messages
    assert message["replace_original"] is True
    acted = next(b for b in message["blocks"] if b.get("block_id") == ACTED_BLOCK_ID)
    assert acted["elements"][0]["text"].startswith("💤 Snoozed by <@U0ANA00001> at 2026-01-01T00:00:00")
    assert message["blocks"][-1]["block_id"] == ACTIONS_BLOCK_ID  # the buttons stay


def test_mute_from_slack_mutes_and_a_second_click_changes_nothing() -> None:
    slack = Slack()
    assert slack.click("jobwatch_mute")[0] == 200
    stored = slack.stored()
    assert stored is not None and stored.quiet.muted and stored.quiet.muted_by == "slack:ana (U0ANA00001)"
    writes = slack.store.writes
    slack.clock.advance(5)  # a new click: a new timestamp, so a new signature
    status, body = slack.click("jobwatch_mute")
    assert (status, body["action"]) == (200, "mute")
    assert slack.store.writes == writes and slack.stored() == stored  # idempotent: no second write
    assert len(slack.responder.outcomes) == 2  # the message still says who clicked last


def test_untrack_from_slack_deletes_the_job_and_removes_the_buttons() -> None:
    slack = Slack()
    status, body = slack.click("jobwatch_untrack")
    assert (status, body["action"], body["by"]) == (200, "untrack", "slack:ana (U0ANA00001)")
    assert slack.stored() is None
    (message,) = slack.responder.messages
    assert not [b for b in message["blocks"] if b.get("block_id") == ACTIONS_BLOCK_ID]
    slack.clock.advance(1)
    status, body = slack.click("jobwatch_untrack")  # the job is gone now: nothing to act on
    assert (status, body["ok"]) == (404, False)


def test_a_snooze_replaces_an_earlier_one_from_the_new_click() -> None:
    slack = Slack()
    slack.click("jobwatch_snooze")
    slack.clock.advance(3600)
    assert slack.click("jobwatch_snooze")[0] == 200
    stored = slack.stored()
    assert stored is not None and stored.quiet.snoozed_until == "2026-01-01T05:00:00+00:00"


def test_a_base64_body_is_verified_on_its_decoded_bytes() -> None:
    slack = Slack()
    assert slack.send(slack.signed_event(click_body(slack.job.key), base64_body=True))[0] == 200


def test_a_failed_message_update_leaves_the_action_applied() -> None:
    slack = Slack(responder=RecordingResponder(succeed=False))
    status, body = slack.click("jobwatch_mute")
    assert (status, body["messageUpdated"]) == (200, False)
    stored = slack.stored()
    assert stored is not None and stored.quiet.muted


# -- refused, with nothing changed ----------------------------------------------------------------------


def test_a_replayed_request_is_refused_and_changes_nothing_more() -> None:
    slack = Slack()
    event = slack.signed_event(click_body(slack.job.key, "jobwatch_snooze"))
    assert slack.send(event)[0] == 200
    after_first = (slack.stored(), slack.store.writes, len(slack.responder.outcomes))
    slack.clock.advance(60)  # still inside the 5-minute window
    status, body = slack.send(event)
    assert (status, body) == (409, {"ok": False, "message": "request already handled (replayed)"})
    assert (slack.stored(), slack.store.writes, len(slack.responder.outcomes)) == after_first


def _headers(timestamp: str | None, signature: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if timestamp is not None:
        headers["X-Slack-Request-Timestamp"] = timestamp
    if signature is not None:
        headers["X-Slack-Signature"] = signature
    return headers


def refused_cases(slack: Slack) -> dict[str, tuple[dict[str, Any], int, str]]:
    """name -> (event, status, words of the reason)."""
    key = slack.job.key
    body = click_body(key)
    now = str(int(slack.clock.now()))
    good = slack_signature(SECRET, now, body)
    stale_at = str(int(slack.clock.now()) - 301)
    future_at = str(int(slack.clock.now()) + 301)
    big = body + b"&pad=" + b"x" * MAX_BODY_BYTES
    return {
        "unsigned": (proxy_event(body, _headers(None, None)), 401, "not signed"),
        "no timestamp": (proxy_event(body, _headers(None, good)), 401, "not signed"),
        "no signature": (proxy_event(body, _headers(now, None)), 401, "not signed"),
        "forged": (slack.signed_event(body, secret="not-the-secret"), 401, "does not match"),
        "tampered": (
            proxy_event(click_body(key, "jobwatch_untrack"), _headers(now, good)),
            401,
            "does not match",
        ),
        "stale": (
            proxy_event(body, _headers(stale_at, slack_signature(SECRET, stale_at, body))),
            401,
            "300 s",
        ),
        "future": (
            proxy_event(body, _headers(future_at, slack_signature(SECRET, future_at, body))),
            401,
            "300 s",
        ),
        "malformed signature": (proxy_event(body, _headers(now, good.upper())), 401, "format"),
        "oversized": (slack.signed_event(big), 413, "larger than 65536"),
        "oversized base64": (slack.signed_event(big, base64_body=True), 413, "larger than 65536"),
        "bad base64": ({**slack.signed_event(body), "isBase64Encoded": True}, 400, "base64"),
        "bad form": (slack.signed_event(b"payload=%FF"), 400, "form-encoded"),
        "bad json": (slack.signed_event(b"payload=%7Bnope"), 400, "not JSON"),
        "unknown action": (slack.signed_event(click_body(key, "jobwatch_delete")), 400, "unknown action"),
        "not a key": (slack.signed_event(click_body("nightly")), 400, "not a job key"),
        "unknown job": (slack.signed_event(click_body("weaviate-export." + "0" * 20)), 404, "unknown job"),
        "wrong type": (slack.signed_event(click_body(key, type="view_submission")), 400, "block_actions"),
        "not an event": ("body", 400, "proxy event"),  # type: ignore[dict-item]
        "two spellings": (
            {**slack.signed_event(body), "headers": {"X-Slack-Signature": good, "x-slack-signature": "v0=1"}},
            400,
            "headers",
        ),
    }


CASES = list(refused_cases(Slack()))


@pytest.mark.parametrize("name", CASES)
def test_refused_requests_change_nothing_and_say_why(name: str) -> None:
    slack = Slack()
    event, status, reason = refused_cases(slack)[name]
    answer_status, body = slack.send(event)
    assert answer_status == status
    assert body["ok"] is False and reason in body["message"]
    assert slack.unchanged()


def test_without_its_secret_the_function_refuses_everything() -> None:
    slack = Slack(secrets=FakeSecrets({}))
    status, body = slack.click("jobwatch_untrack")
    assert (status, body["message"]) == (503, "signing secret unavailable")
    assert slack.unchanged()
    empty = Slack(secrets=FakeSecrets({SECRET_NAME: ""}))
    assert empty.click("jobwatch_untrack")[0] == 503 and empty.unchanged()


def test_the_secret_is_not_read_for_an_unsigned_request() -> None:
    slack = Slack()
    slack.send(proxy_event(click_body(slack.job.key), _headers(None, None)))
    assert slack.secrets.reads == []


# -- fuzz -----------------------------------------------------------------------------------------------

HEADER_NAMES = st.sampled_from(
    [
        "X-Slack-Signature",
        "x-slack-signature",
        "X-Slack-Request-Timestamp",
        "x-slack-request-timestamp",
        "Content-Type",
    ]
)
TIMESTAMPS = st.one_of(
    st.integers(min_value=1_767_225_600 - 400, max_value=1_767_225_600 + 400).map(str),
    st.text(max_size=20),
)
SIGNATURES = st.one_of(
    st.text(max_size=80),
    st.binary(min_size=32, max_size=32).map(lambda raw: "v0=" + raw.hex()),
)
BODIES = st.one_of(
    st.binary(max_size=2048),
    st.text(max_size=2048).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"payload=%7B%7D", b"payload=null", b"payload=%5B%5D", b""]),
    # well-formed clicks on the tracked job: only the signature stands between them and the job
    st.sampled_from(["jobwatch_snooze", "jobwatch_mute", "jobwatch_untrack"]).map(
        lambda action_id: click_body(export_spec("nightly").key, action_id)
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=BODIES,
    extra=st.dictionaries(HEADER_NAMES, st.text(max_size=80), max_size=4),
    timestamp=TIMESTAMPS,
    signature=SIGNATURES,
    base64_body=st.booleans(),
)
def test_fuzz_requests_not_signed_by_slack_never_crash_and_never_change_anything(
    body: bytes, extra: dict[str, str], timestamp: str, signature: str, base64_body: bool
) -> None:
    slack = Slack()
    headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature, **extra}
    lowered = {name.lower(): value for name, value in headers.items()}
    expected = slack_signature(SECRET, lowered.get("x-slack-request-timestamp", ""), body)
    if lowered.get("x-slack-signature") == expected:
        return  # correctly signed by chance (cannot happen with random hex, but the property says "unless")
    status, answer = slack.send(proxy_event(body, headers, base64_body=base64_body))
    assert 400 <= status < 500 and answer["ok"] is False and isinstance(answer["message"], str)
    assert slack.unchanged()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payload=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=30),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
        ),
        max_leaves=20,
    ),
    action_id=st.sampled_from(["jobwatch_snooze", "jobwatch_mute", "jobwatch_untrack", "other", ""]),
    key_is_ours=st.booleans(),
    user=st.one_of(
        st.just(USER), st.dictionaries(st.sampled_from(["id", "name", "username"]), st.text(max_size=30))
    ),
    skew=st.integers(min_value=-300, max_value=300),
)
def test_fuzz_signed_requests_never_crash_and_change_only_what_they_answer_200_for(
    payload: Any, action_id: str, key_is_ours: bool, user: dict[str, str], skew: int
) -> None:
    slack = Slack()
    key = slack.job.key if key_is_ours else "weaviate-export." + "f" * 20
    random_body = urlencode({"payload": json.dumps(payload)}).encode()
    click = click_body(key, action_id, user=user)
    for body in (random_body, click):
        status, answer = slack.send(slack.signed_event(body, at=slack.clock.now() + skew))
        if status != 200:
            assert status in (400, 404) and answer["ok"] is False
            continue
        assert body == click and key_is_ours and action_id.startswith("jobwatch_")
        stored = slack.stored()
        if action_id == "jobwatch_untrack":
            assert stored is None
        else:
            assert stored is not None and answer["by"].startswith("slack:")
            assert answer["by"] in (stored.quiet.snoozed_by, stored.quiet.muted_by)
    if slack.responder.outcomes == []:
        assert slack.unchanged()
