"""The Slack sink validates like Slack, records accepted and refused posts, and plays scripted failures;
its Web API posts, edits and threads messages, checks the bot token, and shows a channel as people see it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web import WebClient

from jobwatch_devkit.processes import slack_sink_process
from jobwatch_devkit.slack_sink import (
    DEFAULT_BOT_TOKEN,
    SINK_PRESETS,
    SinkResponse,
    SlackSink,
    validate_payload,
)


@pytest.fixture(scope="module")
def server() -> Iterator[SlackSink]:
    sink = SlackSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def sink(server: SlackSink) -> SlackSink:
    server.reset()
    return server


@pytest.fixture
def client(sink: SlackSink) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as c:
        yield c


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text}}


def _section(text: str | None = None, fields: list[str] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section"}
    if text is not None:
        block["text"] = {"type": "mrkdwn", "text": text}
    if fields is not None:
        block["fields"] = [{"type": "mrkdwn", "text": f} for f in fields]
    return block


def _context(n: int) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": f"e{i}"} for i in range(n)]}


def test_url_shape(sink: SlackSink) -> None:
    assert sink.url == f"http://127.0.0.1:{sink.port}/services/T000/B000/XXXX"


def test_accepts_text_and_blocks(sink: SlackSink, client: httpx.Client) -> None:
    r = client.post(sink.url, json={"text": "export finished"})
    assert (r.status_code, r.text) == (200, "ok")
    assert r.headers["content-type"] == "text/html"
    payload = {
        "text": "fallback",
        "blocks": [
            _header("Export finished"),
            _section("*done*", ["a", "b"]),
            _context(2),
            {"type": "divider"},
        ],
    }
    assert client.post(sink.base_url + "/services/T1/B2/other", json=payload).text == "ok"
    messages = sink.messages()
    assert [m.text for m in messages] == ["export finished", "fallback"]
    assert messages[1].path == "/services/T1/B2/other" and len(messages[1].blocks) == 4
    assert messages[0].accepted and messages[0].status == 200 and messages[0].received_at <= time.time()
    assert sink.messages(path="/services/T1/B2/other") == [messages[1]]
    assert sink.rejected() == []


def test_accepts_form_encoded_payload(sink: SlackSink, client: httpx.Client) -> None:
    r = client.post(sink.url, data={"payload": '{"text": "from a form"}'})
    assert r.text == "ok" and sink.messages()[0].text == "from a form"


LIMIT_CASES_OK = [
    {"blocks": [_section("x")] * 50},
    {"blocks": [_header("h" * 150)]},
    {"blocks": [_section("s" * 3000)]},
    {"blocks": [_section(fields=["f" * 2000] * 10)]},
    {"blocks": [_context(10)]},
    {"attachments": [{"text": "legacy"}]},
]
LIMIT_CASES_BAD = [
    ({"blocks": [_section("x")] * 51}, "invalid_blocks"),
    ({"blocks": [_header("h" * 151)]}, "invalid_blocks"),
    ({"blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}]}, "invalid_blocks"),
    ({"blocks": [_section("s" * 3001)]}, "invalid_blocks"),
    ({"blocks": [_section(fields=["f"] * 11)]}, "invalid_blocks"),
    ({"blocks": [_section(fields=["f" * 2001])]}, "invalid_blocks"),
    ({"blocks": [_context(11)]}, "invalid_blocks"),
    ({"blocks": [{"type": "section"}]}, "invalid_blocks"),
    ({"blocks": [_section("")]}, "invalid_blocks"),
    ({"blocks": [{"type": "fancy"}]}, "invalid_blocks"),
    ({"blocks": "not a list"}, "invalid_blocks"),
    (
        {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}, "block_id": "b" * 256}]},
        "invalid_blocks",
    ),
    ({}, "no_text"),
    ({"text": ""}, "no_text"),
    ({"text": 5}, "invalid_payload"),
]


@pytest.mark.parametrize("payload", LIMIT_CASES_OK)
def test_limits_inclusive(sink: SlackSink, client: httpx.Client, payload: dict[str, Any]) -> None:
    assert client.post(sink.url, json=payload).text == "ok"
    validate_payload(payload)


@pytest.mark.parametrize(("payload", "code"), LIMIT_CASES_BAD)
def test_violations_are_refused_like_slack(
    sink: SlackSink, client: httpx.Client, payload: dict[str, Any], code: str
) -> None:
    r = client.post(sink.url, json=payload)
    assert (r.status_code, r.text) == (400, code)
    assert sink.messages() == []
    [rejected] = sink.rejected()
    assert rejected.payload == payload and rejected.response == code and not rejected.accepted


def test_not_json_is_invalid_payload(sink: SlackSink, client: httpx.Client) -> None:
    r = client.post(sink.url, content=b"text=hello", headers={"content-type": "application/json"})
    assert (r.status_code, r.text) == (400, "invalid_payload")
    assert sink.rejected()[0].raw == "text=hello"


def test_other_paths_and_methods(sink: SlackSink, client: httpx.Client) -> None:
    assert client.post(sink.base_url + "/hooks/x", json={"text": "x"}).status_code == 404
    assert client.get(sink.url).status_code == 405


@pytest.mark.parametrize(
    ("preset", "status", "body"),
    [
        ("rate_limited", 429, "rate_limited"),
        ("no_service", 404, "no_service"),
        ("channel_is_archived", 410, "channel_is_archived"),
        ("action_prohibited", 403, "action_prohibited"),
        ("server_error", 500, "internal_error"),
    ],
)
def test_scripted_failures_are_not_delivered(
    sink: SlackSink, client: httpx.Client, preset: str, status: int, body: str
) -> None:
    sink.script([preset])
    r = client.post(sink.url, json={"text": "hello"})
    assert (r.status_code, r.text) == (status, body)
    if preset == "rate_limited":
        assert r.headers["retry-after"] == "1"
    assert sink.messages() == [] and sink.rejected()[0].status == status
    assert client.post(sink.url, json={"text": "again"}).text == "ok"  # script consumed: back to normal
    assert [m.text for m in sink.messages()] == ["again"]


def test_accept_then_error_records_the_post(sink: SlackSink, client: httpx.Client) -> None:
    sink.script(["accept_then_429", "accept_then_drop", {"status": 500, "body": "oops", "record": True}])
    first = client.post(sink.url, json={"text": "one"})
    assert first.status_code == 429 and first.headers["retry-after"] == "1"
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(sink.url, json={"text": "two"})
    assert client.post(sink.url, json={"text": "three"}).status_code == 500
    assert [(m.text, m.status) for m in sink.messages()] == [("one", 429), ("two", 0), ("three", 500)]
    assert sink.rejected() == []


def test_accept_then_error_still_validates(sink: SlackSink, client: httpx.Client) -> None:
    sink.script(["accept_then_429"])
    assert client.post(sink.url, json={"blocks": [_header("h" * 200)]}).text == "invalid_blocks"
    assert sink.pending_script() == []


def test_script_objects_and_delay(sink: SlackSink, client: httpx.Client) -> None:
    sink.script([SinkResponse(429, "rate_limited", retry_after="3", delay_ms=100)])
    started = time.monotonic()
    r = client.post(sink.url, json={"text": "x"})
    assert time.monotonic() - started >= 0.1
    assert r.headers["retry-after"] == "3"
    with pytest.raises(ValueError, match="unknown preset"):
        sink.script(["nope"])
    with pytest.raises(ValueError, match="unknown response fields"):
        sink.script([{"stauts": 500}])


def test_presets_round_trip_through_json() -> None:
    for preset in SINK_PRESETS.values():
        assert SinkResponse.from_json(preset.to_json()) == preset


def test_wait_for_messages(sink: SlackSink, client: httpx.Client) -> None:
    def later() -> None:
        time.sleep(0.1)
        client.post(sink.url, json={"text": "late"})

    thread = threading.Thread(target=later)
    thread.start()
    assert [m.text for m in sink.wait_for_messages(1, timeout=3)] == ["late"]
    thread.join()
    with pytest.raises(TimeoutError):
        sink.wait_for_messages(2, timeout=0.05)


def test_control_api(sink: SlackSink, client: httpx.Client) -> None:
    base = sink.base_url
    queued = client.post(
        base + "/_sink/script", json=["rate_limited", {"status": 410, "body": "channel_is_archived"}]
    )
    assert queued.json() == {"queued": 2}
    assert client.post(sink.url, json={"text": "a"}).status_code == 429
    state = client.get(base + "/_sink/messages").json()
    assert state["messages"] == [] and state["rejected"][0]["status"] == 429
    assert state["pendingScript"] == [{"status": 410, "body": "channel_is_archived"}]
    assert client.post(sink.url, json={"text": "b"}).status_code == 410
    assert client.post(sink.url, json={"text": "c"}).text == "ok"
    listed = client.get(base + "/_sink/messages").json()["messages"]
    assert [(m["payload"], m["status"], m["accepted"]) for m in listed] == [({"text": "c"}, 200, True)]
    assert listed[0]["path"] == "/services/T000/B000/XXXX" and listed[0]["receivedAt"] > 0
    assert client.post(base + "/_sink/script", json={"not": "a list"}).status_code == 400
    assert client.post(base + "/_sink/script", json=["bogus"]).status_code == 400
    assert client.post(base + "/_sink/reset").json() == {"ok": True}
    assert client.get(base + "/_sink/messages").json() == {
        "messages": [],
        "rejected": [],
        "pendingScript": [],
    }


def test_subprocess_start_and_stop() -> None:
    with slack_sink_process() as proc:
        webhook = proc.url + "/services/T000/B000/XXXX"
        with httpx.Client() as c:
            assert c.post(webhook, json={"text": "hi"}).text == "ok"
            assert c.get(proc.url + "/_sink/messages").json()["messages"][0]["payload"] == {"text": "hi"}
        pid = proc.pid
        assert pid is not None
    assert proc.pid is None
    with pytest.raises(httpx.ConnectError):
        httpx.post(webhook, json={"text": "gone"})


# -- the Web API --------------------------------------------------------------------------------------------

CHANNEL = "C0SINK01"
AUTH = {"Authorization": f"Bearer {DEFAULT_BOT_TOKEN}"}


def _api(client: httpx.Client, sink: SlackSink, method: str, **args: Any) -> httpx.Response:
    return client.post(sink.api_url + method, json=args, headers=AUTH)


def _post(client: httpx.Client, sink: SlackSink, **args: Any) -> dict[str, Any]:
    answer = _api(client, sink, "chat.postMessage", **{"channel": CHANNEL, **args}).json()
    assert answer["ok"] is True, answer
    return dict(answer)


def test_api_url_shape(sink: SlackSink) -> None:
    assert sink.api_url == f"http://127.0.0.1:{sink.port}/api/"


def test_post_message_answers_like_slack(sink: SlackSink, client: httpx.Client) -> None:
    r = _api(client, sink, "chat.postMessage", channel=CHANNEL, text="hello", blocks=[_section("*hi*")])
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    answer = r.json()
    assert answer["ok"] is True and answer["channel"] == CHANNEL
    assert answer["message"]["text"] == "hello" and answer["message"]["ts"] == answer["ts"]
    assert answer["message"]["blocks"] == [_section("*hi*")]
    stamps = [answer["ts"]] + [_post(client, sink, text=f"m{i}")["ts"] for i in range(20)]
    assert len(set(stamps)) == 21 and stamps == sorted(stamps, key=float)
    assert all(len(ts.split(".")[1]) == 6 for ts in stamps)
    assert sink.messages() == []  # webhook posts and Web API messages are kept apart
    [call] = sink.api_calls()[:1]
    assert (call.method, call.ok, call.accepted, call.args["text"]) == (
        "chat.postMessage",
        True,
        True,
        "hello",
    )


def test_form_bodies_and_token_fields_are_accepted(sink: SlackSink, client: httpx.Client) -> None:
    root = _post(client, sink, text="root")
    form = {
        "token": DEFAULT_BOT_TOKEN,
        "channel": CHANNEL,
        "text": "reply",
        "blocks": json.dumps([_section("in a thread")]),
        "thread_ts": root["ts"],
        "reply_broadcast": "true",
    }
    answer = client.post(sink.api_url + "chat.postMessage", data=form).json()
    assert answer["ok"] is True and answer["message"]["thread_ts"] == root["ts"]
    [thread] = sink.channel_view(CHANNEL)
    [reply] = thread.replies
    assert reply.reply_broadcast and reply.blocks == [_section("in a thread")]
    assert "token" not in sink.api_calls()[1].args


@pytest.mark.parametrize(
    ("headers", "error"),
    [({}, "not_authed"), ({"Authorization": "Bearer xoxb-wrong"}, "invalid_auth")],
)
def test_the_bot_token_is_checked(
    sink: SlackSink, client: httpx.Client, headers: dict[str, str], error: str
) -> None:
    r = client.post(
        sink.api_url + "chat.postMessage", json={"channel": CHANNEL, "text": "x"}, headers=headers
    )
    assert (r.status_code, r.json()) == (200, {"ok": False, "error": error})
    assert sink.channel_view(CHANNEL) == [] and not sink.api_calls()[0].accepted


def test_a_sink_can_be_given_its_own_token() -> None:
    with SlackSink(bot_token="xoxb-custom") as own, httpx.Client() as c:
        assert c.post(
            own.api_url + "chat.postMessage", json={"channel": CHANNEL, "text": "x"}, headers=AUTH
        ).json() == {
            "ok": False,
            "error": "invalid_auth",
        }
        ok = c.post(
            own.api_url + "chat.postMessage",
            json={"channel": CHANNEL, "text": "x"},
            headers={"Authorization": "Bearer xoxb-custom"},
        )
        assert ok.json()["ok"] is True


def test_replies_attach_to_the_root_of_their_thread(sink: SlackSink, client: httpx.Client) -> None:
    root = _post(client, sink, text="root")
    first = _post(client, sink, text="first", thread_ts=root["ts"])
    second = _post(
        client, sink, text="second", thread_ts=first["ts"]
    )  # a reply's ts: still the root's thread
    assert second["message"]["thread_ts"] == root["ts"]
    missing = _api(client, sink, "chat.postMessage", channel=CHANNEL, text="x", thread_ts="1.000001").json()
    assert missing == {"ok": False, "error": "thread_not_found"}
    [thread] = sink.channel_view(CHANNEL)
    assert thread.root.text == "root" and [r.text for r in thread.replies] == ["first", "second"]
    assert [r.reply_broadcast for r in thread.replies] == [False, False]


def test_update_replaces_the_text_and_keeps_or_drops_blocks(sink: SlackSink, client: httpx.Client) -> None:
    root = _post(client, sink, text="v1", blocks=[_header("Version 1")])
    kept = _api(client, sink, "chat.update", channel=CHANNEL, ts=root["ts"], text="v2").json()
    assert kept["ok"] is True and kept["ts"] == root["ts"] and kept["text"] == "v2"
    assert sink.channel_view(CHANNEL)[0].root.blocks == [_header("Version 1")]  # omitted: kept
    dropped = _api(client, sink, "chat.update", channel=CHANNEL, ts=root["ts"], text="v3", blocks=[]).json()
    assert dropped["ok"] is True
    [thread] = sink.channel_view(CHANNEL)
    assert (thread.root.text, thread.root.blocks, thread.root.edits) == ("v3", [], 2)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ({"ts": "1.000001", "text": "x"}, "message_not_found"),
        ({"text": "x"}, "message_not_found"),
        ({"channel": "", "ts": "1.000001", "text": "x"}, "channel_not_found"),
    ],
)
def test_an_update_of_an_unknown_message_is_refused(
    sink: SlackSink, client: httpx.Client, args: dict[str, Any], error: str
) -> None:
    r = _api(client, sink, "chat.update", **{"channel": CHANNEL, **args})
    assert (r.status_code, r.json()) == (200, {"ok": False, "error": error})


def test_a_deleted_message_is_gone_for_view_and_update(sink: SlackSink, client: httpx.Client) -> None:
    root = _post(client, sink, text="root")
    _post(client, sink, text="reply", thread_ts=root["ts"])
    other = _post(client, sink, text="other")
    assert sink.delete_message(CHANNEL, root["ts"]) and not sink.delete_message(CHANNEL, root["ts"])
    assert [t.root.text for t in sink.channel_view(CHANNEL)] == ["other"]
    gone = _api(client, sink, "chat.update", channel=CHANNEL, ts=root["ts"], text="x").json()
    assert gone == {"ok": False, "error": "message_not_found"}
    assert _api(client, sink, "chat.update", channel=CHANNEL, ts=other["ts"], text="y").json()["ok"]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ({"channel": CHANNEL, "blocks": [_header("h" * 151)], "text": "t"}, "invalid_blocks"),
        ({"channel": CHANNEL, "blocks": [{"type": "fancy"}]}, "invalid_blocks"),
        ({"channel": CHANNEL}, "no_text"),
        ({"channel": CHANNEL, "text": 5}, "invalid_arguments"),
        ({"text": "no channel"}, "channel_not_found"),
    ],
)
def test_invalid_messages_are_refused_with_slacks_error(
    sink: SlackSink, client: httpx.Client, args: dict[str, Any], error: str
) -> None:
    r = _api(client, sink, "chat.postMessage", **args)
    assert (r.status_code, r.json()) == (200, {"ok": False, "error": error})
    assert sink.channels() == []


def test_unknown_methods_and_bodies(sink: SlackSink, client: httpx.Client) -> None:
    assert _api(client, sink, "chat.delete", channel=CHANNEL).json() == {
        "ok": False,
        "error": "unknown_method",
    }
    bad = client.post(
        sink.api_url + "chat.postMessage", content=b"{", headers={**AUTH, "content-type": "application/json"}
    )
    assert bad.json() == {"ok": False, "error": "invalid_json"}
    assert client.get(sink.api_url + "chat.postMessage").status_code == 405


def test_scripted_api_errors_are_answered_like_slack(sink: SlackSink, client: httpx.Client) -> None:
    sink.script(["api:channel_not_found", SinkResponse.api_error("ratelimited", retry_after="9")])
    refused = _api(client, sink, "chat.postMessage", channel=CHANNEL, text="x")
    assert (refused.status_code, refused.json()) == (200, {"ok": False, "error": "channel_not_found"})
    limited = _api(client, sink, "chat.postMessage", channel=CHANNEL, text="x")
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "9")
    assert limited.json() == {"ok": False, "error": "ratelimited"}
    assert sink.channels() == [] and [c.error for c in sink.api_calls()] == [
        "channel_not_found",
        "ratelimited",
    ]
    assert _post(client, sink, text="then fine")["ok"]


def test_a_scripted_answer_for_one_method_waits_for_it(sink: SlackSink, client: httpx.Client) -> None:
    sink.script([SinkResponse.api_error("msg_too_long", method="chat.update")])
    root = _post(client, sink, text="root")  # not chat.update: answered normally
    assert client.post(sink.url, json={"text": "webhook"}).text == "ok"  # nor a webhook post
    assert len(sink.pending_script()) == 1
    too_long = _api(client, sink, "chat.update", channel=CHANNEL, ts=root["ts"], text="x" * 10)
    assert too_long.json() == {"ok": False, "error": "msg_too_long"}
    assert sink.pending_script() == [] and sink.channel_view(CHANNEL)[0].root.edits == 0


def test_a_call_that_took_effect_can_still_answer_an_error(sink: SlackSink, client: httpx.Client) -> None:
    sink.script(["accept_then_500", {"status": 0, "body": "", "record": True, "drop": True}])
    r = _api(client, sink, "chat.postMessage", channel=CHANNEL, text="posted")
    assert r.status_code == 500
    with pytest.raises(httpx.RemoteProtocolError):
        _api(client, sink, "chat.postMessage", channel=CHANNEL, text="also posted")
    assert [t.root.text for t in sink.channel_view(CHANNEL)] == ["posted", "also posted"]
    assert [(c.status, c.accepted) for c in sink.api_calls()] == [(500, True), (0, True)]


def test_the_channel_reads_as_a_person_sees_it(sink: SlackSink, client: httpx.Client) -> None:
    first = _post(
        client, sink, text="job A", blocks=[_header("A running"), _section("*A* `a-1` &lt;!channel&gt;")]
    )
    _post(client, sink, text="<!subteam^S0OPS> A started", thread_ts=first["ts"])
    _post(client, sink, text="job B")
    _api(
        client,
        sink,
        "chat.update",
        channel=CHANNEL,
        ts=first["ts"],
        text="job A",
        blocks=[_header("A failed")],
    )
    _post(client, sink, text="A failed <@U0LEAD>", thread_ts=first["ts"], reply_broadcast=True)
    _post(client, sink, channel="C0OTHER1", text="elsewhere")

    threads = sink.channel_view(CHANNEL)
    assert [t.root.text for t in threads] == ["job A", "job B"]
    assert threads[0].root.visible_text == "A failed" and threads[0].root.edits == 1
    assert [r.mentions for r in threads[0].replies] == [["<!subteam^S0OPS>"], ["<@U0LEAD>"]]
    assert threads[0].root.mentions == []
    assert sink.channels() == [CHANNEL, "C0OTHER1"]
    lines = sink.channel_text(CHANNEL).splitlines()
    assert lines[0] == f"#{CHANNEL}"
    assert lines[1] == f"● {first['ts']} (edited 1x)" and lines[2] == "  A failed"
    assert lines[3].startswith("  ↳ ") and lines[4] == "      @subteam^S0OPS A started"
    assert lines[5].endswith("[also sent to the channel]") and lines[6] == "      A failed @U0LEAD"
    assert lines[7].startswith("● ") and lines[8] == "  job B"


def test_escaped_text_shows_as_typed_and_mentions_nobody(sink: SlackSink, client: httpx.Client) -> None:
    _post(client, sink, text="x", blocks=[_section("*A* `a-1` &lt;!channel&gt; &amp; &lt;@U1&gt;")])
    [thread] = sink.channel_view(CHANNEL)
    assert thread.root.visible_text == "*A* `a-1` <!channel> & <@U1>" and thread.root.mentions == []


def test_the_view_is_a_copy(sink: SlackSink, client: httpx.Client) -> None:
    root = _post(client, sink, text="before")
    [before] = sink.channel_view(CHANNEL)
    _api(client, sink, "chat.update", channel=CHANNEL, ts=root["ts"], text="after")
    assert before.root.text == "before" and sink.channel_view(CHANNEL)[0].root.text == "after"


def test_reset_forgets_the_web_api_but_keeps_the_token(sink: SlackSink, client: httpx.Client) -> None:
    _post(client, sink, text="x")
    sink.reset()
    assert sink.channel_view(CHANNEL) == [] and sink.api_calls() == [] and sink.channels() == []
    assert _post(client, sink, text="y")["ok"]


def test_wait_for_api_calls(sink: SlackSink, client: httpx.Client) -> None:
    def later() -> None:
        time.sleep(0.1)
        _post(client, sink, text="late")

    thread = threading.Thread(target=later)
    thread.start()
    [call] = sink.wait_for_api_calls(1, method="chat.postMessage", timeout=3)
    thread.join()
    assert call.args["text"] == "late"
    with pytest.raises(TimeoutError):
        sink.wait_for_api_calls(1, method="chat.update", timeout=0.05)


def test_api_error_scripts_round_trip_through_json() -> None:
    for scripted in [
        SinkResponse.api_error("channel_not_found"),
        SinkResponse.api_error("ratelimited", method="chat.update", retry_after="4"),
        SinkResponse(500, "internal_error", method="chat.postMessage", record=True),
    ]:
        assert SinkResponse.from_json(scripted.to_json()) == scripted
    assert SinkResponse.from_json("api:ratelimited") == SinkResponse.api_error("ratelimited")
    limited = SinkResponse.api_error("ratelimited")
    assert (limited.status, limited.retry_after, json.loads(limited.body)) == (
        429,
        "1",
        {"ok": False, "error": "ratelimited"},
    )
    assert SinkResponse.from_json(
        {"error": "is_archived", "method": "chat.update"}
    ) == SinkResponse.api_error("is_archived", method="chat.update")
    with pytest.raises(ValueError, match="unknown fields"):
        SinkResponse.from_json({"error": "x", "bogus": 1})


def test_api_control_routes(sink: SlackSink, client: httpx.Client) -> None:
    base = sink.base_url
    client.post(base + "/_sink/script", json=[{"error": "not_in_channel", "method": "chat.postMessage"}])
    assert (
        _api(client, sink, "chat.postMessage", channel=CHANNEL, text="x").json()["error"] == "not_in_channel"
    )
    root = _post(client, sink, text="root")
    _post(client, sink, text="reply", thread_ts=root["ts"])
    state = client.get(base + "/_sink/api").json()
    assert [c["method"] for c in state["calls"]] == ["chat.postMessage"] * 3
    [thread] = state["channels"][CHANNEL]
    assert thread["root"]["text"] == "root" and [r["text"] for r in thread["replies"]] == ["reply"]
    assert thread["replies"][0]["threadTs"] == root["ts"]
    deleted = client.post(base + "/_sink/api/delete", json={"channel": CHANNEL, "ts": root["ts"]})
    assert deleted.json() == {"deleted": True}
    assert client.get(base + "/_sink/api").json()["channels"] == {CHANNEL: []}
    assert client.post(base + "/_sink/api/delete", json=["x"]).status_code == 400


def test_slack_sdk_speaks_to_the_sink(sink: SlackSink) -> None:
    client = WebClient(token=DEFAULT_BOT_TOKEN, base_url=sink.api_url, retry_handlers=[], timeout=5)
    root = client.chat_postMessage(channel=CHANNEL, text="root", blocks=[_section("*root*")])
    client.chat_update(channel=CHANNEL, ts=root["ts"], text="root v2", blocks=[_section("*root v2*")])
    client.chat_postMessage(channel=CHANNEL, text="reply", thread_ts=root["ts"], reply_broadcast=True)
    [thread] = sink.channel_view(CHANNEL)
    assert (thread.root.visible_text, [r.reply_broadcast for r in thread.replies]) == ("*root v2*", [True])
    sink.script(["api:ratelimited"])
    with pytest.raises(SlackApiError) as limited:
        client.chat_postMessage(channel=CHANNEL, text="x")
    assert limited.value.response.status_code == 429 and limited.value.response.headers["retry-after"] == "1"
    with pytest.raises(SlackApiError) as refused:
        WebClient(token="xoxb-other", base_url=sink.api_url).chat_update(
            channel=CHANNEL, ts=root["ts"], text="x"
        )
    assert refused.value.response["error"] == "invalid_auth"
