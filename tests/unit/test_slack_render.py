"""Slack Block Kit rendering: structure per event, limits on huge input, and escaping of upstream text."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, ClassVar

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jobwatch.sources
from jobwatch.channels.base import Channel, ChannelTuning, Notice
from jobwatch.channels.slack_webhook import SlackWebhookChannel
from jobwatch.domain.model import Event, JobSpec, Phase, Snapshot, Transition
from jobwatch.domain.severity import severity_for
from jobwatch.render.email import email_subject
from jobwatch.render.slack_blocks import (
    MAX_BLOCKS,
    MAX_FIELD_CHARS,
    MAX_FIELDS_PER_SECTION,
    MAX_HEADER_CHARS,
    MAX_SECTION_CHARS,
    escape,
    fit,
    render_payload,
    slack_len,
    validate_payload,
)
from jobwatch.render.view import NO_SECRET, describe, event_emoji, phase_change_text
from jobwatch.sources import UnknownSourceError
from jobwatch.sources.base import Fact
from jobwatch_devkit.fakes import FakeSecrets

# --- fixtures (self-contained: a fake source feeding facts from details["facts"]) -------------------


class FakeSource:
    name: ClassVar[str] = "zilliz-import-v1"
    title: ClassVar[str] = "Zilliz Cloud import"
    success_word: ClassVar[str] = "import finished"

    def facts(self, spec: JobSpec, snapshot: Snapshot) -> list[Fact]:
        return [Fact(str(k), str(v)) for k, v in snapshot.details.get("facts", {}).items()]


def fake_get_source(name: str) -> Any:
    if name == FakeSource.name:
        return FakeSource()
    raise UnknownSourceError(name)


@pytest.fixture(autouse=True, scope="module")
def _fake_sources() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jobwatch.sources, "get_source", fake_get_source)
        yield


PHASE_FOR_EVENT = {
    Event.QUEUED: Phase.PENDING,
    Event.STARTED: Phase.RUNNING,
    Event.SUCCEEDED: Phase.SUCCEEDED,
    Event.FAILED: Phase.FAILED,
    Event.CANCELED: Phase.CANCELED,
    Event.LOST: Phase.LOST,
    Event.STALLED: Phase.RUNNING,
    Event.RESUMED: Phase.RUNNING,
    Event.OVERDUE: Phase.RUNNING,
    Event.UNREACHABLE: Phase.RUNNING,
    Event.AUTH_FAILED: Phase.RUNNING,
    Event.RECOVERED: Phase.RUNNING,
    Event.TEST: Phase.RUNNING,
}

NOTES = {
    Event.LOST: "upstream said the job does not exist 3 polls in a row",
    Event.STALLED: "no progress for 30m 00s (at 80%, status Importing)",
    Event.RESUMED: "progress moved again (85%)",
    Event.OVERDUE: "running for 1d 00h 00m, over the 1d 00h 00m limit",
    Event.UNREACHABLE: "3 polls failed in a row; last: HTTP_STATUS HTTP 500: upstream down",
    Event.AUTH_FAILED: "3 polls rejected: AUTH HTTP 401: bad key; fix the API key in secret 'jobwatch/x'",
    Event.RECOVERED: "polls succeed again after 3+ failures (last: TIMEOUT: read timed out)",
}
"""What jobwatch.transitions writes into `note`; the other events carry none."""

API_KEY_STORE = "jobwatch/x"


def make(
    event: Event = Event.FAILED,
    *,
    source: str = "zilliz-import-v1",
    job_id: str = "job-abc123",
    collections: list[str] | None = None,
    error: str | None = "bad row 7",
    labels: dict[str, str] | None = None,
    facts: dict[str, str] | None = None,
    location: str = "cluster in01-3e5a7c",
    note: str | None = None,
    secret_name: str | None = API_KEY_STORE,
) -> Transition:
    spec = JobSpec(
        source=source,
        endpoint="https://api.cloud.zilliz.com",
        job_id=job_id,
        cluster_id="in01-3e5a7c",
        secret_name=secret_name,
        labels={"team": "search", "env": "prod"} if labels is None else labels,
    )
    details: dict[str, Any] = {
        "collections": ["medium_articles"] if collections is None else collections,
        "location": location,
        "facts": facts or {},
    }
    phase = PHASE_FOR_EVENT[event]
    started = "2024-05-01T10:00:00Z"
    try:
        key = spec.key
    except UnicodeEncodeError:  # JobSpec.key cannot hash lone surrogates (reported separately)
        key = f"{source}.{'0' * 20}"
    return Transition(
        transition_id="tr-0001",
        job_key=key,
        source=source,
        job_id=job_id,
        event=event,
        severity=severity_for(event),
        occurred_at="2024-05-01T11:02:03Z",
        job=spec,
        previous=Snapshot(phase=Phase.RUNNING, status="Running", started_at=started, details=details),
        current=Snapshot(
            phase=phase,
            status=phase.value.title(),
            progress=42.0,
            error=error if event is Event.FAILED else None,
            started_at=started,
            details=details,
        ),
        note=note,
    )


def with_note(event: Event) -> Transition:
    return make(event, note=NOTES.get(event))


def why_section(payload: dict[str, Any]) -> str | None:
    """The text of the `Why` section, if the payload has one."""
    texts = [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section" and "text" in b]
    found = [text for text in texts if text.startswith("*Why*\n")]
    assert len(found) <= 1
    return found[0] if found else None


def dump(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False)


def all_texts(payload: dict[str, Any]) -> list[str]:
    """Every string Slack will parse: the fallback and every text object's text."""
    texts = [payload["text"]]
    for block in payload["blocks"]:
        for key in ("text",):
            if key in block:
                texts.append(block[key]["text"])
        texts += [field["text"] for field in block.get("fields", [])]
        texts += [element["text"] for element in block.get("elements", [])]
    return texts


BROKEN_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")


def assert_safe(payload: dict[str, Any]) -> None:
    """Within limits, no raw `<`/`>` anywhere, every `&` starts a whole entity, UTF-8 encodable."""
    assert validate_payload(payload) == []
    text = dump(payload)
    text.encode("utf-8")
    assert "<" not in text and ">" not in text
    for value in all_texts(payload):
        assert not BROKEN_ENTITY.search(value), value


# --- structure ------------------------------------------------------------------------------------


def test_slack_channel_declares_its_limits() -> None:
    channel: Channel = SlackWebhookChannel("slack", "s", FakeSecrets(), httpx.Client(), ChannelTuning())
    limits = channel.limits
    assert (limits.name, limits.metric_prefix, limits.ordered) == ("slack", "Slack", True)
    assert limits.min_interval_s == 1.0  # Slack's documented one message a second per webhook
    assert (limits.max_attempts, limits.retry_base_s) == (30, 30.0)
    assert (MAX_BLOCKS, MAX_SECTION_CHARS, MAX_HEADER_CHARS) == (50, 3000, 150)
    assert (MAX_FIELD_CHARS, MAX_FIELDS_PER_SECTION) == (2000, 10)
    assert channel.render(Notice(make())) == render_payload(make())
    assert channel.problems({"blocks": []}) == validate_payload({"blocks": []}) != []


@pytest.mark.parametrize("event", list(Event))
def test_structure_for_each_event(event: Event) -> None:
    t = with_note(event)
    payload = render_payload(t)
    assert_safe(payload)
    blocks = payload["blocks"]
    assert blocks[0]["type"] == "header"
    assert blocks[-1]["type"] == "context"
    header = blocks[0]["text"]["text"]
    assert header.startswith(event_emoji(event))
    assert f"{event.value} · Zilliz Cloud import" in header
    first = 1
    if event in NOTES:  # the reason sits right under the header
        assert blocks[1] == {"type": "section", "text": _mrkdwn(f"*Why*\n{escape(NOTES[event])}")}
        first = 2
    else:
        assert why_section(payload) is None
    if event is not Event.TEST:
        assert blocks[first]["text"]["text"] == f"*Zilliz Cloud import*: {describe(t).outcome}"
    fields = [f["text"] for f in blocks[first]["fields"]]
    assert fields[:7] == [
        "*Job id*\n`job-abc123`",
        "*Kind*\nZilliz Cloud import (zilliz-import-v1)",
        "*Collections*\nmedium_articles",
        "*Cluster*\ncluster in01-3e5a7c",
        f"*Phase*\n{phase_change_text(make(event))}",
        "*Progress*\n42%",
        "*Duration*\n1h 02m 03s (observed)",
    ]
    assert ("*Secret*\n`jobwatch/x`" in fields) is (event is Event.AUTH_FAILED)
    has_error = any(b["type"] == "section" and "*Error*" in b.get("text", {}).get("text", "") for b in blocks)
    assert has_error is (event is Event.FAILED)
    context = " ".join(e["text"] for e in blocks[-1]["elements"])
    assert "Transition `tr-0001` · 2024-05-01 11:02:03 UTC" in context
    assert "Labels: env=prod, team=search" in context
    assert payload["text"].strip()
    assert payload["unfurl_links"] is False


def test_failed_message() -> None:
    payload = render_payload(make(Event.FAILED, error="row 7: dim 768 != 1536"))
    # The fallback (lock screens, screen readers, clients without blocks) names the cause too.
    assert payload["text"] == (
        "❌ FAILED · Zilliz Cloud import job-abc123 (medium_articles): failed (RUNNING → FAILED)"
        " — error: row 7: dim 768 != 1536"
    )
    assert payload["blocks"][0]["text"] == {
        "type": "plain_text",
        "text": "❌ FAILED · Zilliz Cloud import",
        "emoji": True,
    }
    error = payload["blocks"][2]["text"]["text"]
    assert error == "*Error*\n```\nrow 7: dim 768 != 1536\n```"


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


@pytest.mark.parametrize(
    ("event", "emoji", "says"),
    [
        (Event.LOST, "❓", "lost: upstream no longer knows this job (RUNNING → LOST)"),
        (Event.STALLED, "🐢", "stalled (still RUNNING)"),
        (Event.RESUMED, "⏩", "resumed (still RUNNING)"),
        (Event.OVERDUE, "⏰", "overdue (still RUNNING)"),
        (Event.UNREACHABLE, "📡", "unreachable (still RUNNING)"),
        (Event.AUTH_FAILED, "🔑", "credentials rejected (still RUNNING)"),
        (Event.RECOVERED, "🔌", "recovered (still RUNNING)"),
    ],
)
def test_new_events_say_what_happened_and_why(event: Event, emoji: str, says: str) -> None:
    payload = render_payload(with_note(event))
    job = "Zilliz Cloud import job-abc123 (medium_articles)"
    assert payload["text"] == f"{emoji} {event.value} · {job}: {says} — {escape(NOTES[event])}"
    phase = "RUNNING → LOST" if event is Event.LOST else "RUNNING (unchanged)"
    fields = [f["text"] for b in payload["blocks"] for f in b.get("fields", [])]
    assert f"*Phase*\n{phase}" in fields


def test_auth_failed_shows_the_secret_to_fix() -> None:
    payload = render_payload(with_note(Event.AUTH_FAILED))
    why = why_section(payload)
    assert why is not None and "fix the API key in secret 'jobwatch/x'" in why
    fields = [f["text"] for f in payload["blocks"][2]["fields"]]
    assert fields[7] == "*Secret*\n`jobwatch/x`"
    bare = render_payload(make(Event.AUTH_FAILED, secret_name=None, note="register the job with --secret"))
    assert bare["blocks"][2]["fields"][7]["text"] == f"*Secret*\n{NO_SECRET}"
    evil = render_payload(make(Event.AUTH_FAILED, secret_name="a`b <!channel>", note="n"))
    assert evil["blocks"][2]["fields"][7]["text"] == "*Secret*\n`a\u02cbb &lt;!channel&gt;`"
    assert_safe(evil)


def test_health_event_about_a_job_never_observed() -> None:
    placeholder = Snapshot(phase=Phase.PENDING, status="(not observed yet)", status_known=False)
    t = with_note(Event.UNREACHABLE).model_copy(update={"previous": None, "current": placeholder})
    payload = render_payload(t)
    assert_safe(payload)
    assert payload["text"].startswith(
        "📡 UNREACHABLE · Zilliz Cloud import job-abc123: unreachable (not observed yet) — "
    )
    fields = [f["text"] for f in payload["blocks"][2]["fields"]]
    assert "*Phase*\nnot observed yet" in fields
    assert "*Progress*\nn/a" in fields and "*Collections*\nn/a" in fields


def test_lost_shows_the_last_poll_error_too() -> None:
    t = make(Event.LOST, note=NOTES[Event.LOST])
    t = t.model_copy(
        update={"current": t.current.model_copy(update={"error": "NOT_FOUND HTTP 404: no such export"})}
    )
    blocks = render_payload(t)["blocks"]
    assert [b["type"] for b in blocks] == ["header", "section", "section", "section", "context"]
    assert blocks[1]["text"]["text"].startswith("*Why*\n")
    assert blocks[3]["text"]["text"] == "*Error*\n```\nNOT_FOUND HTTP 404: no such export\n```"


def test_succeeded_message_uses_the_success_word() -> None:
    payload = render_payload(make(Event.SUCCEEDED))
    assert payload["blocks"][1]["text"]["text"] == "*Zilliz Cloud import*: import finished"
    assert payload["text"].startswith("✅ SUCCEEDED · Zilliz Cloud import job-abc123")


def test_test_event_is_clearly_marked() -> None:
    payload = render_payload(make(Event.TEST))
    assert payload["text"].startswith("🧪 Test notification — no job changed")
    assert payload["blocks"][0]["text"]["text"] == "🧪 TEST · Zilliz Cloud import"
    assert payload["blocks"][1]["text"]["text"].startswith("*Test notification — no job changed.*")


def test_future_event_renders_with_its_severity() -> None:
    t = make(Event.STARTED).model_copy(update={"event": "SOMETHING_NEW", "severity": "warning"})
    payload = render_payload(t)
    assert_safe(payload)
    assert payload["blocks"][0]["text"]["text"] == "🟠 SOMETHING_NEW · Zilliz Cloud import"
    assert "something new" in payload["text"]


def test_unknown_source_falls_back_to_its_name_without_facts() -> None:
    payload = render_payload(make(Event.SUCCEEDED, source="brand-new", facts={"x": "y"}))
    assert_safe(payload)
    assert payload["blocks"][0]["text"]["text"] == "✅ SUCCEEDED · brand-new"
    assert len(payload["blocks"][1]["fields"]) == 7


def test_facts_follow_the_core_fields_ten_per_section() -> None:
    facts = {f"Fact {i}": str(i) for i in range(100)}
    payload = render_payload(make(Event.SUCCEEDED, facts=facts))
    assert_safe(payload)
    sections = [b for b in payload["blocks"] if b["type"] == "section" and "fields" in b]
    fields = [f["text"] for s in sections for f in s["fields"]]
    assert len(fields) == 107
    assert fields[7] == "*Fact 0*\n0" and fields[-1] == "*Fact 99*\n99"
    assert all(len(s["fields"]) <= 10 for s in sections)


# --- limits ---------------------------------------------------------------------------------------


def test_limits_hold_for_huge_inputs() -> None:
    t = make(
        Event.FAILED,
        job_id="job-" + "j" * 5_000,
        collections=[f"collection_{i}_" + "c" * 300 for i in range(5_000)],
        error="E&<>`" * 10_000,
        labels={f"label{i}-" + "k" * 200: "v&" * 1_000 for i in range(30)},
        facts={f"fact {i} " + "f" * 3_000: "<v>" * 2_000 for i in range(100)},
        location="s3 · s3://bucket/" + "p" * 10_000,
    )
    payload = render_payload(t)
    assert_safe(payload)
    assert len(payload["blocks"]) <= 50
    error_text = next(
        b["text"]["text"] for b in payload["blocks"] if "*Error*" in b.get("text", {}).get("text", "")
    )
    assert slack_len(error_text) <= 3000
    assert error_text.endswith("… (truncated, 50,000 chars)\n```")
    assert slack_len(payload["blocks"][0]["text"]["text"]) <= 150


def test_a_50_kb_note_stays_within_limits() -> None:
    note = "3 polls failed in a row; last: " + "N&<>`*" * 8_500
    t = make(Event.UNREACHABLE, note=note, error="unused", facts={f"Fact {i}": str(i) for i in range(1_000)})
    payload = render_payload(t)
    assert_safe(payload)
    assert len(payload["blocks"]) == 50  # the Why section took a block from the facts
    why = why_section(payload)
    assert why is not None and slack_len(why) <= 3000
    assert why.startswith("*Why*\n3 polls failed in a row; last: N&amp;&lt;&gt;`*N")
    assert why.endswith(f"… (truncated, {len(note):,} chars)")
    assert slack_len(payload["text"]) <= 1_000
    failed = render_payload(make(Event.FAILED, note=note, error="E" * 50_000))
    assert_safe(failed)
    assert len(failed["blocks"]) == 5  # header, why, fields, error, context


def test_more_facts_than_fit_in_50_blocks_are_counted() -> None:
    facts = {f"Fact {i}": str(i) for i in range(1_000)}
    payload = render_payload(make(Event.FAILED, facts=facts))
    assert_safe(payload)
    assert len(payload["blocks"]) == 50
    last_fields = [b for b in payload["blocks"] if "fields" in b][-1]["fields"]
    assert last_fields[-1]["text"] == f"*More facts*\n+{1_007 - 47 * 10 + 1} not shown"


def test_truncation_never_splits_an_entity() -> None:
    for size in range(2_980, 3_010):
        payload = render_payload(make(Event.FAILED, error="&" * size))
        assert_safe(payload)
    assert fit("a&bc", 6) == "a…"
    assert fit("a&bc", 7) == "a&amp;…"
    assert fit("a&bc", 8) == "a&amp;bc"


def test_slack_len_counts_utf16_units() -> None:
    assert slack_len("abc") == 3
    assert slack_len("🧪") == 2
    header = render_payload(make(Event.TEST, source="🧪" * 200))["blocks"][0]["text"]["text"]
    assert slack_len(header) <= 150


# --- escaping -------------------------------------------------------------------------------------

INJECTIONS = ["<!channel>", "<!here>", "<@U123>", "<#C0123|general>", "<https://evil.example|click>"]


def test_error_cannot_ping_or_link() -> None:
    payload = render_payload(make(Event.FAILED, error="boom " + " ".join(INJECTIONS)))
    text = dump(payload)
    for injection in INJECTIONS:
        assert injection not in text
    assert "&lt;!channel&gt;" in text
    assert "&lt;https://evil.example|click&gt;" in text
    assert_safe(payload)


@pytest.mark.parametrize("field", ["job_id", "collection", "label_key", "label_value", "fact", "location"])
def test_every_upstream_string_is_escaped(field: str) -> None:
    evil = "x <!channel> & <@U123>"
    cases: dict[str, dict[str, Any]] = {
        "job_id": {"job_id": evil},
        "collection": {"collections": [evil]},
        "label_key": {"labels": {evil: "v"}},
        "label_value": {"labels": {"k": evil}},
        "fact": {"facts": {evil: evil}},
        "location": {"location": evil},
    }
    payload = render_payload(make(Event.FAILED, **cases[field]))
    assert_safe(payload)
    assert "&lt;!channel&gt; &amp; &lt;@U123&gt;" in dump(payload)


def test_note_cannot_ping_or_link() -> None:
    note = "3 polls failed; last: <!channel> @here " + " ".join(INJECTIONS)
    payload = render_payload(make(Event.UNREACHABLE, note=note))
    assert_safe(payload)
    text = dump(payload)
    for injection in INJECTIONS:
        assert injection not in text
    assert "@here" not in text
    why = why_section(payload)
    assert why == (
        "*Why*\n3 polls failed; last: &lt;!channel&gt; @\u2060here &lt;!channel&gt; &lt;!here&gt; "
        "&lt;@U123&gt; &lt;#C0123|general&gt; &lt;https://evil.example|click&gt;"
    )
    assert "&lt;!channel&gt;" in payload["text"]


def test_note_keeps_its_lines_but_drops_controls() -> None:
    payload = render_payload(make(Event.UNREACHABLE, note="line 1\x00\u202e\r\nline\t2\n"))
    assert why_section(payload) == "*Why*\nline 1\nline    2"
    assert payload["text"].endswith(" — line 1 line 2")


def test_error_cannot_break_out_of_the_code_block() -> None:
    payload = render_payload(make(Event.FAILED, error="a```\n*bold* <!here>\n```b ````` c"))
    error_text = payload["blocks"][2]["text"]["text"]
    assert error_text.count("```") == 2
    assert error_text.startswith("*Error*\n```\n") and error_text.endswith("\n```")


def test_job_id_backticks_cannot_end_inline_code() -> None:
    payload = render_payload(make(Event.FAILED, job_id="a`b"))
    assert payload["blocks"][1]["fields"][0]["text"] == "*Job id*\n`a\u02cbb`"


def test_bare_broadcast_mentions_are_defused() -> None:
    assert escape("ping @channel and @Here, or @channels") == (
        "ping @\u2060channel and @\u2060Here, or @\u2060channels"
    )
    payload = render_payload(make(Event.FAILED, error="@everyone look"))
    assert "@everyone" not in dump(payload)


def test_mrkdwn_texts_are_verbatim() -> None:
    payload = render_payload(make(Event.FAILED))
    for block in payload["blocks"][1:]:
        objects = [block.get("text"), *block.get("fields", []), *block.get("elements", [])]
        for obj in filter(None, objects):
            assert obj["type"] == "mrkdwn" and obj["verbatim"] is True


# --- validate_payload -----------------------------------------------------------------------------


def test_validate_payload_reports_each_violation() -> None:
    field = {"type": "mrkdwn", "text": "f" * 2_001}
    payload = {
        "text": "",
        "blocks": [
            {"type": "header", "text": {"type": "mrkdwn", "text": "h" * 151}},
            {"type": "section", "fields": [field] * 11},
            {"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3_001}},
            {"type": "section"},
            {"type": "section", "text": {"type": "mrkdwn", "text": "x"}, "fields": []},
            {"type": "context", "elements": []},
            {"type": "image"},
        ]
        + [{"type": "divider"}] * 44,
    }
    problems = validate_payload(payload)
    expected = [
        "text: fallback text missing",
        "blocks: 51 blocks > 50",
        "blocks[0].text.type: 'mrkdwn' not in ('plain_text',)",
        "blocks[0].text.text: 151 chars > 150",
        "blocks[1].fields: 11 fields > 10",
        "blocks[1].fields[0].text: 2001 chars > 2000",
        "blocks[2].text.text: 3001 chars > 3000",
        "blocks[3]: section needs text or fields",
        "blocks[4].fields: empty",
        "blocks[5].elements: missing or empty",
        "blocks[6].type: unsupported block type 'image'",
    ]
    for problem in expected:
        assert problem in problems


def test_validate_payload_accepts_rendered_payloads() -> None:
    assert validate_payload(render_payload(make())) == []


# --- properties -----------------------------------------------------------------------------------

NASTY = [
    "<!channel>",
    "<@U123>",
    "<https://evil|click>",
    "&amp;",
    "&",
    "```",
    "`",
    "@here",
    "\u202e",
    "\x00",
    "\n",
    "🧪",
    "\ud800",
    "文章",
]
upstream_text = st.lists(
    st.one_of(st.sampled_from(NASTY), st.text(st.characters(exclude_categories=()), max_size=20)),
    max_size=6,
).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    job_id=upstream_text,
    collections=st.lists(upstream_text, max_size=5),
    error=upstream_text,
    error_repeat=st.integers(min_value=1, max_value=600),
    labels=st.dictionaries(upstream_text, upstream_text, max_size=4),
    facts=st.dictionaries(upstream_text, upstream_text, max_size=12),
    location=upstream_text,
    event=st.sampled_from(list(Event)),
    note=st.none() | upstream_text,
    note_repeat=st.integers(min_value=1, max_value=600),
)
def test_any_upstream_text_renders_within_limits_and_escaped(
    job_id: str,
    collections: list[str],
    error: str,
    error_repeat: int,
    labels: dict[str, str],
    facts: dict[str, str],
    location: str,
    event: Event,
    note: str | None,
    note_repeat: int,
) -> None:
    t = make(
        event,
        job_id=job_id,
        collections=collections,
        error=error * error_repeat,
        labels=labels,
        facts=facts,
        location=location,
        note=None if note is None else note * note_repeat,
    )
    payload = render_payload(t)
    assert_safe(payload)
    for value in all_texts(payload):
        assert "@here" not in value.lower() and "@channel" not in value.lower()
    subject = email_subject(t)
    assert len(subject) <= 100 and subject.isascii() and subject.isprintable()


def test_route_mentions_lead_the_message_and_upstream_text_cannot_add_one() -> None:
    hostile = make(Event.FAILED, error="<!channel> <@U999> pwned")
    payload = render_payload(hostile, ["<!subteam^S0123ABC>", "<@U0456DEF>", "not a mention <!everyone>"])
    assert payload["text"].startswith("<!subteam^S0123ABC> <@U0456DEF> ❌ FAILED")
    assert payload["blocks"][1] == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "<!subteam^S0123ABC> <@U0456DEF>"},
    }
    rest = json.dumps(payload["blocks"][2:])
    assert "<!channel>" not in rest and "<@U999>" not in rest and "<!everyone>" not in json.dumps(payload)
