"""Email text, SNS publish request and consumer-side parsing (jobwatch.messages)."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jobwatch.sources
from jobwatch.adapters.sns_message import sns_message_attributes, sns_publish_request
from jobwatch.delivery.envelope import parse_event, transition_from_sqs_body
from jobwatch.domain.humanize import format_duration, format_progress, format_timestamp
from jobwatch.domain.model import Event, JobSpec, Phase, Snapshot, Transition
from jobwatch.domain.severity import HEALTH_EVENTS, severity_for
from jobwatch.domain.text import clean_multiline, clean_text
from jobwatch.render.email import MAX_EMAIL_ERROR_CHARS, MAX_NOTE_CHARS, email_body, email_subject
from jobwatch.render.view import (
    NO_SECRET,
    collections_text,
    describe,
    duration_text,
    event_emoji,
    outcome_text,
    phase_change_text,
)
from jobwatch.sources import UnknownSourceError
from jobwatch.sources.base import Fact

# --- fixtures: a fake source, so these tests do not depend on the real source modules ---------------


class FakeSource:
    """Facts come from `details["facts"]`, so tests can feed arbitrary upstream text into them."""

    name: ClassVar[str] = "zilliz-import-v1"
    title: ClassVar[str] = "Zilliz Cloud import"
    success_word: ClassVar[str] = "import finished"

    def facts(self, spec: JobSpec, snapshot: Snapshot) -> list[Fact]:
        raw = snapshot.details.get("facts", {})
        if raw == "boom":
            raise RuntimeError("bug in a source")
        return [Fact(str(label), str(value)) for label, value in raw.items()]


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

API_KEY_STORE = "jobwatch/zilliz"
"""The Secrets Manager secret named in the spec (a name, not a key)."""

HEALTH = [Event.STALLED, Event.RESUMED, Event.OVERDUE, Event.UNREACHABLE, Event.AUTH_FAILED, Event.RECOVERED]


def make(
    event: Event = Event.FAILED,
    *,
    source: str = "zilliz-import-v1",
    job_id: str = "job-abc123",
    collections: list[str] | None = None,
    error: str | None = "bad row 7",
    labels: dict[str, str] | None = None,
    facts: Any = None,
    details: dict[str, Any] | None = None,
    previous: Phase | None = Phase.RUNNING,
    started_at: str | None = "2024-05-01T10:00:00Z",
    completed_at: str | None = None,
    occurred_at: str = "2024-05-01T11:02:03Z",
    progress: float | None = 42.0,
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
    info: dict[str, Any] = {
        "collections": ["medium_articles"] if collections is None else collections,
        "location": "cluster in01-3e5a7c",
        **(details or {}),
    }
    if facts is not None:
        info["facts"] = facts
    phase = PHASE_FOR_EVENT[event]
    before = (
        Snapshot(phase=previous, status="Running", progress=10.0, started_at=started_at, details=info)
        if previous is not None
        else None
    )
    now = Snapshot(
        phase=phase,
        status=phase.value.title(),
        progress=progress,
        error=error if event is Event.FAILED else None,
        started_at=started_at,
        completed_at=completed_at,
        details=info,
    )
    return Transition(
        transition_id="tr-0001",
        job_key=job_key(spec),
        source=source,
        job_id=job_id,
        event=event,
        severity=severity_for(event),
        occurred_at=occurred_at,
        job=spec,
        previous=before,
        current=now,
        note=note,
    )


PLACEHOLDER = Snapshot(phase=Phase.PENDING, status="(not observed yet)", status_known=False)
"""`current` of a health event about a job never observed (jobwatch.transitions._PLACEHOLDER)."""


def never_observed(event: Event, note: str) -> Transition:
    return make(event, note=note).model_copy(update={"previous": None, "current": PLACEHOLDER})


def job_key(spec: JobSpec) -> str:
    # JobSpec.key cannot hash a job id holding a lone surrogate (UnicodeEncodeError, reported);
    # rendering must still cope with such ids, so the property tests use a stand-in key.
    try:
        return spec.key
    except UnicodeEncodeError:
        return f"{spec.source}.{'0' * 20}"


def future_event(name: str) -> Transition:
    """An event the model does not know yet (added later): rendering must not depend on the enum."""
    return make(Event.STARTED).model_copy(update={"event": name, "severity": severity_for(name)})


# --- severity, emoji, formatting ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "severity"),
    [
        (Event.FAILED, "error"),
        ("AUTH_FAILED", "error"),
        ("LOST", "error"),
        (Event.CANCELED, "warning"),
        ("STALLED", "warning"),
        ("UNREACHABLE", "warning"),
        ("OVERDUE", "warning"),
        (Event.SUCCEEDED, "success"),
        ("RECOVERED", "success"),
        ("RESUMED", "success"),
        (Event.QUEUED, "info"),
        (Event.STARTED, "info"),
        (Event.TEST, "info"),
        ("SOMETHING_NEW", "info"),
    ],
)
def test_severity_for(event: Event | str, severity: str) -> None:
    assert severity_for(event) == severity


def test_every_event_has_an_emoji_and_unknown_ones_fall_back_to_severity() -> None:
    for event in Event:
        assert event_emoji(event)
    assert event_emoji("SOMETHING_NEW", "error") == "🔴"
    assert event_emoji("SOMETHING_NEW") == "🔵"


def test_outcome_text() -> None:
    assert outcome_text(Event.SUCCEEDED, "export finished") == "export finished"
    assert outcome_text(Event.SUCCEEDED) == "succeeded"
    assert outcome_text(Event.FAILED, "export finished") == "failed"
    assert outcome_text("QUOTA_EXCEEDED") == "quota exceeded"


@pytest.mark.parametrize(
    ("event", "outcome"),
    [
        (Event.LOST, "lost: upstream no longer knows this job"),
        (Event.STALLED, "stalled"),
        (Event.RESUMED, "resumed"),
        (Event.OVERDUE, "overdue"),
        (Event.UNREACHABLE, "unreachable"),
        (Event.AUTH_FAILED, "credentials rejected"),
        (Event.RECOVERED, "recovered"),
    ],
)
def test_outcome_text_of_new_events(event: Event, outcome: str) -> None:
    assert outcome_text(event, "export finished") == outcome


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "n/a"),
        (-1, "n/a"),
        (float("nan"), "n/a"),
        (0, "0s"),
        (0.9, "0s"),
        (59, "59s"),
        (60, "1m 00s"),
        (725, "12m 05s"),
        (3_723, "1h 02m 03s"),
        (2 * 86_400 + 3 * 3_600 + 4 * 60 + 5, "2d 03h 04m"),
    ],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("progress", "text"),
    [
        (None, "n/a"),
        (float("inf"), "n/a"),
        (0, "0%"),
        (42.0, "42%"),
        (42.56, "42.5%"),
        (99.99, "99.9%"),
        (100, "100%"),
        (130, "100%"),
        (-5, "0%"),
    ],
)
def test_format_progress(progress: float | None, text: str) -> None:
    assert format_progress(progress) == text


def test_format_timestamp() -> None:
    assert format_timestamp("2024-05-01T11:02:03Z") == "2024-05-01 11:02:03 UTC"
    assert format_timestamp("2024-05-01T13:02:03+02:00") == "2024-05-01 11:02:03 UTC"
    assert format_timestamp(None) == "n/a"
    assert format_timestamp("yesterday\n") == "yesterday"


def test_duration_prefers_upstream_times_then_observed() -> None:
    exact = make(Event.SUCCEEDED, completed_at="2024-05-01T10:12:05Z")
    assert duration_text(exact) == "12m 05s"
    observed = make(Event.FAILED, completed_at=None)
    assert duration_text(observed) == "1h 02m 03s (observed)"
    unknown = make(Event.FAILED, started_at=None)
    assert duration_text(unknown) == "n/a"
    skewed = make(Event.FAILED, started_at="2024-05-02T00:00:00Z")
    assert duration_text(skewed) == "n/a"


def test_phase_change_text() -> None:
    assert phase_change_text(make(Event.FAILED)) == "RUNNING → FAILED"
    assert phase_change_text(make(Event.QUEUED, previous=None)) == "PENDING"
    assert phase_change_text(make(Event.TEST)) == "RUNNING (unchanged)"
    assert phase_change_text(make(Event.LOST)) == "RUNNING → LOST"
    for event in HEALTH:
        assert phase_change_text(make(event)) == "RUNNING (unchanged)"
    assert phase_change_text(never_observed(Event.UNREACHABLE, "x")) == "not observed yet"
    assert phase_change_text(make(Event.STARTED, previous=None)) == "RUNNING"


def test_clean_text_removes_controls_bidi_and_surrogates() -> None:
    assert clean_text("a\x00b\tc\n d\u202ee\ud800f") == "ab c def"
    assert clean_multiline("line 1  \r\n\tline\x07 2\n") == "line 1\n    line 2"


def test_collections_text_caps_long_lists() -> None:
    assert collections_text([]) == "n/a"
    assert collections_text(["a", "b"]) == "a, b"
    assert collections_text([f"c{i}" for i in range(25)], 3) == "c0, c1, c2 (+22 more)"


# --- subject --------------------------------------------------------------------------------------


def test_subject_example() -> None:
    subject = email_subject(make(Event.FAILED))
    assert subject == "[jobwatch] FAILED - Zilliz Cloud import job-abc123 (medium_articles)"


def test_subject_with_long_ids_and_non_ascii_collections_fits_100_ascii_chars() -> None:
    t = make(
        Event.FAILED,
        job_id="job-" + "x" * 300,
        collections=["médium_artïcles", "文章", "Straße", "ﬁles"] + [f"c{i}" for i in range(200)],
    )
    subject = email_subject(t)
    assert len(subject) <= 100
    assert subject.isascii() and subject.isprintable()
    assert subject.startswith("[jobwatch] FAILED - Zilliz Cloud import job-xxx")
    assert "..." in subject
    assert "(medium_articles, Strasse," in subject
    only_cjk = email_subject(make(collections=["文章", "記事"]))
    assert only_cjk == "[jobwatch] FAILED - Zilliz Cloud import job-abc123 (2 collections)"


def test_subject_keeps_short_job_id_whole_and_truncates_collections() -> None:
    t = make(Event.SUCCEEDED, collections=[f"collection_{i}" for i in range(50)])
    subject = email_subject(t)
    assert len(subject) <= 100
    assert " job-abc123 (collection_0, collection_1" in subject
    assert subject.endswith("...)")


def test_subject_has_no_line_breaks_from_upstream() -> None:
    subject = email_subject(make(job_id="job\r\nBcc: evil@example.com", collections=["a\nb"]))
    assert "\n" not in subject and "\r" not in subject
    assert subject == "[jobwatch] FAILED - Zilliz Cloud import job Bcc: evil@example.com (a b)"


def test_subject_for_unknown_source_and_future_event() -> None:
    t = make(Event.STARTED, source="ünknown-söurce-" + "y" * 120)
    subject = email_subject(t)
    assert len(subject) <= 100 and subject.isascii()
    assert subject.startswith("[jobwatch] STARTED - unknown-source-yyy")
    assert email_subject(future_event("QUOTA_EXCEEDED")).startswith("[jobwatch] QUOTA_EXCEEDED - ")


@pytest.mark.parametrize("event", [Event.LOST, *HEALTH])
def test_subject_of_new_events(event: Event) -> None:
    subject = email_subject(make(event, note="x" * 50_000))
    assert subject == f"[jobwatch] {event.value} - Zilliz Cloud import job-abc123 (medium_articles)"


# --- body -----------------------------------------------------------------------------------------


def test_body_layout_for_failure() -> None:
    body = email_body(make(Event.FAILED, facts={"Rows imported": "1,200", "Files": "3"}))
    lines = body.splitlines()
    assert lines[0] == "Zilliz Cloud import job-abc123: failed (RUNNING → FAILED)"
    expected_order = [
        "Event:        FAILED (error)",
        "Source:       Zilliz Cloud import (zilliz-import-v1)",
        "Job id:       job-abc123",
        "Endpoint:     https://api.cloud.zilliz.com",
        "Cluster:      cluster in01-3e5a7c",
        "Collections:  medium_articles",
        "Phase:        RUNNING → FAILED",
        "Progress:     42%",
        "Duration:     1h 02m 03s (observed)",
        "Rows imported: 1,200",
        "Files:        3",
        "Labels:       env=prod, team=search",
        "Error:",
        "    bad row 7",
        "Transition:   tr-0001",
        "Occurred at:  2024-05-01 11:02:03 UTC",
    ]
    positions = [lines.index(line) for line in expected_order]
    assert positions == sorted(positions)
    assert body.endswith("\n") and not body.endswith("\n\n")
    assert all(line == line.rstrip() for line in lines)


def test_body_success_uses_success_word_and_upstream_duration() -> None:
    body = email_body(make(Event.SUCCEEDED, completed_at="2024-05-01T10:12:05Z"))
    assert body.splitlines()[0] == "Zilliz Cloud import job-abc123: import finished (RUNNING → SUCCEEDED)"
    assert "Duration:     12m 05s\n" in body
    assert "Error:" not in body


def test_body_for_test_event_is_marked() -> None:
    body = email_body(make(Event.TEST))
    assert body.startswith("Test notification — no job changed: Zilliz Cloud import job-abc123")


def test_body_error_is_indented_and_capped() -> None:
    error = "Traceback:\n" + "\n".join(f"  frame {i} " + "z" * 60 for i in range(2_000))
    body = email_body(make(Event.FAILED, error=error))
    block = body.split("Error:\n", 1)[1].split("\n\n", 1)[0]
    assert all(line.startswith("    ") for line in block.splitlines())
    assert len(block.replace("\n    ", "\n").removeprefix("    ")) <= MAX_EMAIL_ERROR_CHARS
    assert f"… (truncated, {len(error):,} chars)" in block


def test_body_falls_back_for_unknown_source() -> None:
    body = email_body(make(Event.SUCCEEDED, source="brand-new-source", facts={"x": "y"}))
    assert body.splitlines()[0] == "brand-new-source job-abc123: succeeded (RUNNING → SUCCEEDED)"
    assert "Source:       brand-new-source (brand-new-source)" in body
    assert "x:" not in body  # no source, no facts


def test_body_survives_a_source_whose_facts_raise() -> None:
    body = email_body(make(Event.STARTED, facts="boom"))
    assert "Facts:        unavailable (RuntimeError)" in body


def test_body_for_future_event_reads_sensibly() -> None:
    t = future_event("QUOTA_EXCEEDED").model_copy(update={"severity": "error"})
    body = email_body(t)
    assert body.splitlines()[0] == "Zilliz Cloud import job-abc123: quota exceeded (still RUNNING)"
    assert "Event:        QUOTA_EXCEEDED (error)" in body
    assert "Phase:        RUNNING (unchanged)" in body


# --- new events and `note` ------------------------------------------------------------------------

NOTES = {
    Event.LOST: "upstream said the job does not exist 3 polls in a row",
    Event.STALLED: "no progress for 30m 00s (at 80%, status Importing); every file says Completed while"
    " the job is still importing (sorting or index building)",
    Event.RESUMED: "progress moved again (85%)",
    Event.OVERDUE: "running for 1d 00h 00m, over the 1d 00h 00m limit",
    Event.UNREACHABLE: "3 polls failed in a row; last: HTTP_STATUS HTTP 500: upstream down",
    Event.AUTH_FAILED: "3 polls rejected: AUTH HTTP 401: invalid token;"
    " fix the API key in secret 'jobwatch/zilliz'",
    Event.RECOVERED: "polls succeed again after 3+ failures (last: TIMEOUT: read timed out)",
}


@pytest.mark.parametrize(
    ("event", "headline", "phase", "severity"),
    [
        (Event.LOST, "lost: upstream no longer knows this job (RUNNING → LOST)", "RUNNING → LOST", "error"),
        (Event.STALLED, "stalled (still RUNNING)", "RUNNING (unchanged)", "warning"),
        (Event.RESUMED, "resumed (still RUNNING)", "RUNNING (unchanged)", "success"),
        (Event.OVERDUE, "overdue (still RUNNING)", "RUNNING (unchanged)", "warning"),
        (Event.UNREACHABLE, "unreachable (still RUNNING)", "RUNNING (unchanged)", "warning"),
        (Event.AUTH_FAILED, "credentials rejected (still RUNNING)", "RUNNING (unchanged)", "error"),
        (Event.RECOVERED, "recovered (still RUNNING)", "RUNNING (unchanged)", "success"),
    ],
)
def test_body_of_new_events(event: Event, headline: str, phase: str, severity: str) -> None:
    body = email_body(make(event, note=NOTES[event]))
    lines = body.splitlines()
    assert lines[0] == f"Zilliz Cloud import job-abc123: {headline}"
    why = lines.index(f"Why:          {NOTES[event]}")
    assert why < lines.index(f"Event:        {event.value} ({severity})")  # the reason comes first
    assert f"Phase:        {phase}" in lines
    assert ("Secret:       jobwatch/zilliz" in lines) is (event is Event.AUTH_FAILED)


def test_body_without_note_has_no_why_line() -> None:
    assert "Why:" not in email_body(make(Event.FAILED))
    assert "Why:" not in email_body(make(Event.STALLED))  # an event from before `note` existed


def test_auth_failed_names_the_secret_or_says_there_is_none() -> None:
    body = email_body(make(Event.AUTH_FAILED, note=NOTES[Event.AUTH_FAILED]))
    assert "fix the API key in secret 'jobwatch/zilliz'" in body
    assert "Secret:       jobwatch/zilliz\n" in body
    bare = make(
        Event.AUTH_FAILED,
        secret_name=None,
        note="3 polls rejected: CONFIG: no key; register the job with --secret",
    )
    assert f"Secret:       {NO_SECRET}\n" in email_body(bare)
    hostile = make(Event.AUTH_FAILED, secret_name="jobwatch/x\r\nBcc: evil", note="n")
    assert "Secret:       jobwatch/x Bcc: evil\n" in email_body(hostile)


def test_health_event_about_a_job_never_observed() -> None:
    t = never_observed(Event.UNREACHABLE, "3 polls failed in a row; last: CONNECTION: refused")
    body = email_body(t)
    assert body.splitlines()[0] == "Zilliz Cloud import job-abc123: unreachable (not observed yet)"
    assert "Phase:        not observed yet\n" in body
    assert "Progress:     n/a\n" in body and "Duration:     n/a\n" in body
    assert "Why:          3 polls failed in a row; last: CONNECTION: refused\n" in body
    lost = make(Event.LOST, previous=None, note=NOTES[Event.LOST])
    assert email_body(lost).splitlines()[0].endswith("lost: upstream no longer knows this job (LOST)")


def test_note_is_cleaned_multiline_and_capped() -> None:
    note = "3 polls failed\x00 in a row;\u202e last: HTTP 500:\r\n  <html>\n\tbody</html>"
    body = email_body(make(Event.UNREACHABLE, note=note))
    assert "Why:          3 polls failed in a row; last: HTTP 500:\n                <html>\n" in body
    assert "\n                  body</html>\n" in body  # the tab expanded, then indented under `Why:`
    huge = "3 polls failed in a row; last: " + "x" * 50_000
    body = email_body(make(Event.UNREACHABLE, note=huge))
    why = next(line for line in body.splitlines() if line.startswith("Why:"))
    assert len(why) <= len("Why:          ") + MAX_NOTE_CHARS
    assert "… (truncated, 50,031 chars)" in body
    assert len(body) < 10_000


def test_note_travels_in_the_event_and_survives_the_round_trip() -> None:
    t = make(Event.AUTH_FAILED, note=NOTES[Event.AUTH_FAILED])
    message = json.loads(sns_publish_request(t)["Message"])
    event = json.loads(message["sqs"])
    assert event["note"] == NOTES[Event.AUTH_FAILED]
    assert parse_event(message["lambda"]) == t
    assert transition_from_sqs_body(message["sqs"]).note == NOTES[Event.AUTH_FAILED]


def test_publish_request_with_a_huge_note_fits_and_cuts_the_note_last() -> None:
    collections = [f"collection_{i:05d}_" + "é" * 20 for i in range(5_000)]
    note = "3 polls failed in a row; last: " + "n" * 80_000
    t = make(Event.UNREACHABLE, collections=collections, note=note, details={"big": "b" * 20_000})
    request = sns_publish_request(t)
    assert _request_bytes(request) <= 262_144
    event = json.loads(json.loads(request["Message"])["sqs"])
    assert event["current"]["details"]["detailsTruncated"] is True
    assert len(event["note"]) <= MAX_NOTE_CHARS
    assert event["note"].endswith("… (truncated, 80,031 chars)")
    small = json.loads(
        json.loads(sns_publish_request(make(Event.UNREACHABLE, note=note[:9_000]))["Message"])["sqs"]
    )
    assert small["note"] == note[:9_000]  # cut only when the event would not fit


@pytest.mark.parametrize(
    ("event", "severity", "emoji"),
    [
        (Event.LOST, "error", "❓"),
        (Event.STALLED, "warning", "🐢"),
        (Event.RESUMED, "success", "⏩"),
        (Event.OVERDUE, "warning", "⏰"),
        (Event.UNREACHABLE, "warning", "📡"),
        (Event.AUTH_FAILED, "error", "🔑"),
        (Event.RECOVERED, "success", "🔌"),
    ],
)
def test_new_events_severity_emoji_and_attributes(event: Event, severity: str, emoji: str) -> None:
    t = make(event, note=NOTES[event])
    view = describe(t)
    assert (view.severity, view.emoji) == (severity, emoji)
    attributes = sns_message_attributes(t)
    assert attributes["event"]["StringValue"] == event.value
    assert attributes["severity"]["StringValue"] == severity
    assert attributes["phase"]["StringValue"] == ("LOST" if event is Event.LOST else "RUNNING")
    assert attributes["phase"]["StringValue"] == t.current.phase.value
    placeholder = sns_message_attributes(never_observed(Event.UNREACHABLE, "n"))
    assert placeholder["phase"]["StringValue"] == "PENDING"


def test_health_events_are_the_events_that_keep_the_phase() -> None:
    assert {event.value for event in HEALTH} == HEALTH_EVENTS


def test_body_without_labels_location_or_collections() -> None:
    t = make(Event.QUEUED, labels={}, collections=[], previous=None, started_at=None, progress=None)
    body = email_body(t)
    assert "Labels:       n/a" in body
    assert "Collections:  n/a" in body
    assert "Progress:     n/a" in body
    assert "Duration:     n/a" in body


# --- SNS ------------------------------------------------------------------------------------------------


def test_message_attributes() -> None:
    attributes = sns_message_attributes(make(Event.FAILED))
    assert attributes == {
        "event": {"DataType": "String", "StringValue": "FAILED"},
        "phase": {"DataType": "String", "StringValue": "FAILED"},
        "source": {"DataType": "String", "StringValue": "zilliz-import-v1"},
        "severity": {"DataType": "String", "StringValue": "error"},
        "labels": {"DataType": "String.Array", "StringValue": '["env=prod","team=search"]'},
    }


def test_message_attributes_without_labels_and_with_hostile_labels() -> None:
    assert "labels" not in sns_message_attributes(make(labels={}))
    attributes = sns_message_attributes(make(labels={"te\x00am": "a\nb\ud800"}))
    assert json.loads(attributes["labels"]["StringValue"]) == ["team=a b"]
    assert len(attributes) <= 10


def test_publish_request_shape() -> None:
    t = make(Event.FAILED)
    request = sns_publish_request(t)
    assert set(request) == {"Subject", "Message", "MessageStructure", "MessageAttributes"}
    assert request["MessageStructure"] == "json"
    assert request["Subject"] == email_subject(t)
    message = json.loads(request["Message"])
    assert set(message) == {"default", "email", "sqs", "lambda", "https", "http"}
    assert message["default"] == message["email"] == email_body(t)
    compact = json.dumps(t.to_wire(), separators=(",", ":"), ensure_ascii=False)
    for key in ("sqs", "lambda", "https", "http"):
        assert message[key] == compact
        assert parse_event(message[key]) == t


def test_publish_request_keeps_non_ascii_and_survives_lone_surrogates() -> None:
    t = make(Event.FAILED, collections=["文章"], error="broken \ud800 text")
    request = sns_publish_request(t)
    request["Message"].encode("utf-8")  # must not raise
    event = json.loads(json.loads(request["Message"])["sqs"])
    assert event["current"]["details"]["collections"] == ["文章"]
    assert event["current"]["error"] == "broken ? text"


def _request_bytes(request: dict[str, Any]) -> int:
    size = len(request["Subject"].encode()) + len(request["Message"].encode())
    for name, attribute in request["MessageAttributes"].items():
        size += len(name.encode()) + sum(len(v.encode()) for v in attribute.values())
    return size


def test_publish_request_drops_huge_details_lists_to_fit_256_kib() -> None:
    collections = [f"collection_{i:05d}_" + "é" * 20 for i in range(20_000)]
    t = make(Event.SUCCEEDED, collections=collections, details={"files": [{"name": "f"}] * 5_000})
    assert len(json.dumps(t.to_wire())) > 262_144
    request = sns_publish_request(t)
    assert _request_bytes(request) <= 262_144
    event = json.loads(json.loads(request["Message"])["sqs"])
    for name in ("previous", "current"):
        details = event[name]["details"]
        assert details["detailsTruncated"] is True
        assert "collections" not in details and "files" not in details
        assert details["location"] == "cluster in01-3e5a7c"
    assert parse_event(json.loads(request["Message"])["lambda"]).job_id == "job-abc123"
    # The email is rendered from the full transition.
    assert "(+19990 more)" in json.loads(request["Message"])["email"]


def test_publish_request_small_details_are_not_marked_truncated() -> None:
    event = json.loads(json.loads(sns_publish_request(make())["Message"])["sqs"])
    assert "detailsTruncated" not in event["current"]["details"]


def test_publish_request_caps_a_huge_error_last() -> None:
    t = make(Event.FAILED, error="E" * 200_000, details={"big": "b" * 100_000})
    request = sns_publish_request(t)
    assert _request_bytes(request) <= 262_144
    event = json.loads(json.loads(request["Message"])["sqs"])
    assert len(event["current"]["error"]) <= MAX_EMAIL_ERROR_CHARS
    assert event["current"]["error"].endswith("… (truncated, 200,000 chars)")
    assert "big" not in event["current"]["details"]


# --- consumer side --------------------------------------------------------------------------------


def _envelope(message: str) -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": "0f6e-msg",
            "TopicArn": "arn:aws:sns:eu-west-1:123456789012:jobwatch",
            "Message": message,
            "Timestamp": "2024-05-01T11:02:04.000Z",
        }
    )


def test_transition_from_sqs_body_accepts_envelope_and_raw_event() -> None:
    t = make(Event.FAILED)
    raw = json.loads(sns_publish_request(t)["Message"])["sqs"]
    assert transition_from_sqs_body(_envelope(raw)) == t
    assert transition_from_sqs_body(raw) == t


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "SQS body is not JSON"),
        ("[1, 2]", "neither an SNS notification nor a transition event (list)"),
        ('{"hello": 1}', "neither an SNS notification nor a transition event (keys: hello)"),
        ('{"schema": "other/v1"}', "not a jobwatch transition event"),
        ('{"schema": "jobwatch.transition/v2"}', "unsupported event schema 'jobwatch.transition/v2'"),
        ('{"schema": "jobwatch.transition/v1", "event": "FAILED"}', "invalid jobwatch.transition/v1 event"),
        (_envelope("Zilliz Cloud import job-abc123: failed"), "SNS notification 0f6e-msg: event is not JSON"),
        ('{"Type": "Notification", "Message": 7}', "'Message' is not a string"),
    ],
)
def test_transition_from_sqs_body_rejects_clearly(body: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        transition_from_sqs_body(body)


def test_parse_event_names_the_missing_fields() -> None:
    with pytest.raises(ValueError, match="transitionId: Field required"):
        parse_event('{"schema": "jobwatch.transition/v1"}')


# --- properties -----------------------------------------------------------------------------------

NASTY = [
    "<!channel>",
    "<@U123>",
    "<https://evil|click>",
    "&amp;",
    "```",
    "@here",
    "\u202e",
    "\x00",
    "\r\n",
    "🧪",
    "é",
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
    labels=st.dictionaries(upstream_text, upstream_text, max_size=4),
    event=st.sampled_from(list(Event)),
    source=st.sampled_from(["zilliz-import-v1", "no-such-source"]),
    note=st.none() | upstream_text,
    secret_name=st.none() | upstream_text,
)
def test_any_upstream_text_gives_a_valid_subject_body_and_request(
    job_id: str,
    collections: list[str],
    error: str,
    labels: dict[str, str],
    event: Event,
    source: str,
    note: str | None,
    secret_name: str | None,
) -> None:
    t = make(
        event,
        job_id=job_id,
        collections=collections,
        error=error,
        labels=labels,
        source=source,
        note=note,
        secret_name=secret_name,
    )
    subject = email_subject(t)
    assert len(subject) <= 100
    assert subject.isascii() and subject.isprintable()
    body = email_body(t)
    assert all(line == line.rstrip() and no_controls(line) for line in body.splitlines())
    request = sns_publish_request(t)
    request["Message"].encode("utf-8")
    assert len(request["MessageAttributes"]) <= 10
    for attribute in request["MessageAttributes"].values():
        assert attribute["StringValue"] and no_controls(attribute["StringValue"])


def no_controls(text: str) -> bool:
    """No control characters or lone surrogates (what SNS and mail clients choke on)."""
    return not any(unicodedata.category(char) in ("Cc", "Cs") for char in text)
