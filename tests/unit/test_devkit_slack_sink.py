"""The Slack sink validates like Slack, records accepted and refused posts, and plays scripted failures."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from jobwatch_devkit.processes import slack_sink_process
from jobwatch_devkit.slack_sink import SINK_PRESETS, SinkResponse, SlackSink, validate_payload


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
