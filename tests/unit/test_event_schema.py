"""The published transition event against its JSON Schema (docs/schemas/transition-event.v1.json)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from jsonschema import Draft202012Validator, FormatChecker

import jobwatch.sources
from jobwatch.adapters.sns_message import sns_message_attributes, sns_publish_request
from jobwatch.delivery.envelope import parse_event
from jobwatch.domain.model import SCHEMA_ID, Event, JobSpec, NotifySettings, Phase, Snapshot, Transition
from jobwatch.domain.severity import HEALTH_EVENTS, severity_for
from jobwatch.render.email import MAX_NOTE_CHARS
from jobwatch.sources import UnknownSourceError
from jobwatch.sources.base import Fact

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "docs" / "schemas" / "transition-event.v1.json"
DOC_PATH = ROOT / "docs" / "event-schema.md"


class FakeSource:
    name: ClassVar[str] = "weaviate-export"
    title: ClassVar[str] = "Weaviate export"
    success_word: ClassVar[str] = "export finished"

    def facts(self, spec: JobSpec, snapshot: Snapshot) -> list[Fact]:
        return [Fact("Shards", "12")]


@pytest.fixture(autouse=True, scope="module")
def _fake_sources() -> Iterator[None]:
    def get_source(name: str) -> Any:
        if name == FakeSource.name:
            return FakeSource()
        raise UnknownSourceError(name)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jobwatch.sources, "get_source", get_source)
        yield


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    return Draft202012Validator(schema, format_checker=FormatChecker())


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
    Event.STALLED: "no progress for 30m 00s (at 55.5%, status RUNNING)",
    Event.RESUMED: "progress moved again (60%)",
    Event.OVERDUE: "running for 1d 00h 00m, over the 1d 00h 00m limit",
    Event.UNREACHABLE: "3 polls failed in a row; last: HTTP_STATUS HTTP 500: <html>oops</html>",
    Event.AUTH_FAILED: "3 polls rejected: AUTH HTTP 401: bad key;"
    " fix the API key in secret 'jobwatch/weaviate'",
    Event.RECOVERED: "polls succeed again after 3+ failures (last: TIMEOUT: read timed out)",
}
"""What jobwatch.transitions writes into `note`; phase changes other than LOST carry none."""

PLACEHOLDER = Snapshot(phase=Phase.PENDING, status="(not observed yet)", status_known=False)
"""`current` of a health event about a job never observed (jobwatch.transitions._PLACEHOLDER)."""


def sample(event: Event, *, first_seen: bool = False, **spec_fields: Any) -> Transition:
    spec = JobSpec(
        source=spec_fields.pop("source", "weaviate-export"),
        endpoint="https://weaviate.example.com",
        job_id="export-2024-05-01",
        backend="s3",
        options={"database": "default"},
        secret_name="jobwatch/weaviate",
        labels={"team": "search"},
        **spec_fields,
    )
    details = {"collections": ["Article", "Author"], "location": "s3 · s3://bucket/exports/2024-05-01"}
    phase = PHASE_FOR_EVENT[event]
    previous = None if first_seen else Snapshot(phase=Phase.RUNNING, status="TRANSFERRING", details=details)
    return Transition(
        transition_id=f"tr-{event.value.lower()}",
        job_key=spec.key,
        source=spec.source,
        job_id=spec.job_id,
        event=event,
        severity=severity_for(event),
        occurred_at="2024-05-01T11:02:03Z",
        job=spec,
        previous=previous,
        current=Snapshot(
            phase=phase,
            status="SOMETHING_NEW" if event is Event.STARTED else phase.value,
            status_known=event is not Event.STARTED,
            progress=None if event is Event.QUEUED else 55.5,
            error="disk full\n  at shard 3" if event is Event.FAILED else None,
            started_at=None if event is Event.QUEUED else "2024-05-01T10:00:00Z",
            completed_at="2024-05-01T11:00:00Z" if phase.terminal else None,
            details=details,
        ),
        note=NOTES.get(event),
    )


def never_observed(event: Event) -> Transition:
    """A health event about a job no poll has reached: no previous, a placeholder current."""
    return sample(event).model_copy(update={"previous": None, "current": PLACEHOLDER})


SAMPLES = [
    *(sample(event) for event in Event),
    sample(Event.QUEUED, first_seen=True),
    sample(Event.FAILED, source="some-future-source", cluster_id="in01-abc"),
    never_observed(Event.UNREACHABLE),
    never_observed(Event.AUTH_FAILED),
    sample(Event.STALLED, notify=NotifySettings(events=["STALLED", "FAILED"], stall_after_s=600)),
    sample(Event.OVERDUE, notify=NotifySettings(max_duration_s=7_200)),
]

OPTIONAL_IN_V1 = {"note", "previousTransitionId", "eta"}
"""Top-level fields added within v1: every event carries them now, older events may not (not required)."""
OPTIONAL_JOB_FIELDS_IN_V1 = {"notify"}


def errors(validator: Draft202012Validator, instance: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema"]["const"] == SCHEMA_ID
    assert "snapshot" in schema["$defs"]


@pytest.mark.parametrize("t", SAMPLES, ids=lambda t: t.transition_id + ("-first" if not t.previous else ""))
def test_every_sample_event_validates(validator: Draft202012Validator, t: Transition) -> None:
    assert errors(validator, t.to_wire()) == []


@pytest.mark.parametrize("t", SAMPLES, ids=lambda t: t.transition_id + ("-first" if not t.previous else ""))
def test_published_sns_event_validates(validator: Draft202012Validator, t: Transition) -> None:
    message = json.loads(sns_publish_request(t)["Message"])
    for key in ("sqs", "lambda", "http", "https"):
        assert errors(validator, json.loads(message[key])) == []


def test_truncated_event_still_validates(validator: Draft202012Validator) -> None:
    t = sample(Event.SUCCEEDED)
    huge = t.current.model_copy(update={"details": {**t.current.details, "files": ["f" * 100] * 5_000}})
    t = t.model_copy(update={"current": huge, "previous": huge})
    event = json.loads(json.loads(sns_publish_request(t)["Message"])["sqs"])
    assert event["current"]["details"]["detailsTruncated"] is True
    assert errors(validator, event) == []


def test_huge_note_is_cut_to_fit_and_still_validates(validator: Draft202012Validator) -> None:
    t = sample(Event.UNREACHABLE)
    details = {**t.current.details, "files": ["f" * 100] * 2_000}
    t = t.model_copy(
        update={
            "note": "3 polls failed in a row; last: " + "x" * 70_000,
            "current": t.current.model_copy(update={"details": details}),
        }
    )
    request = sns_publish_request(t)
    event = json.loads(json.loads(request["Message"])["sqs"])
    assert len(event["note"]) <= MAX_NOTE_CHARS
    assert event["note"].startswith("3 polls failed in a row; last: xxx")
    assert event["note"].endswith("… (truncated, 70,031 chars)")
    assert errors(validator, event) == []


def test_events_from_before_note_and_notify_still_validate_and_parse(validator: Draft202012Validator) -> None:
    """An older jobwatch published neither field: a consumer on the current schema must accept that."""
    wire = sample(Event.FAILED).to_wire()
    del wire["note"]
    del wire["job"]["notify"]
    assert errors(validator, wire) == []
    parsed = parse_event(json.dumps(wire))
    assert parsed.note is None and parsed.job.notify is None


def test_every_published_event_carries_every_field() -> None:
    """Optional for consumers, but jobwatch itself always sends them (as null when unset)."""
    for t in SAMPLES:
        wire = t.to_wire()
        assert set(wire) == _model_fields(Transition)
        assert set(wire["job"]) == _model_fields(JobSpec)


def test_event_is_open_but_well_formed(validator: Draft202012Validator) -> None:
    wire = sample(Event.STARTED).to_wire()
    assert errors(validator, {**wire, "event": "STALLED"}) == []
    assert errors(validator, {**wire, "event": "stalled"}) != []


def test_consumers_tolerate_additive_fields(validator: Draft202012Validator) -> None:
    wire = sample(Event.FAILED).to_wire()
    wire["somethingNew"] = {"x": 1}
    wire["current"]["alsoNew"] = True
    assert errors(validator, wire) == []


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda w: w.pop("transitionId"), ""),
        (lambda w: w.update(schema="jobwatch.transition/v2"), "schema"),
        (lambda w: w.update(severity="critical"), "severity"),
        (lambda w: w["current"].update(phase="PAUSED"), "current/phase"),
        (lambda w: w["current"]["details"].update(collections="Article"), "current/details/collections"),
        (lambda w: w.update(occurredAt="yesterday"), "occurredAt"),
        (lambda w: w["job"].update(labels={"team": 1}), "job/labels/team"),
        (lambda w: w.update(note=["not", "text"]), "note"),
        (lambda w: w["job"].update(notify={"stallAfterS": 5}), "job/notify"),
        (lambda w: w["job"].update(notify={"events": "FAILED"}), "job/notify"),
    ],
)
def test_schema_rejects_breaking_shapes(validator: Draft202012Validator, change: Any, path: str) -> None:
    wire = sample(Event.FAILED).to_wire()
    change(wire)
    paths = ["/".join(map(str, e.absolute_path)) for e in validator.iter_errors(wire)]
    assert path in paths


def _model_fields(model: type[Any]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


def test_schema_lists_every_model_field() -> None:
    """A field added to the model without the schema (or the other way round) fails here."""
    schema = json.loads(SCHEMA_PATH.read_text())
    assert set(schema["properties"]) == _model_fields(Transition)
    assert _model_fields(Transition) >= OPTIONAL_IN_V1
    assert set(schema["required"]) == _model_fields(Transition) - OPTIONAL_IN_V1
    assert set(schema["$defs"]["snapshot"]["properties"]) == _model_fields(Snapshot)
    assert set(schema["$defs"]["snapshot"]["required"]) == _model_fields(Snapshot)
    assert set(schema["$defs"]["jobSpec"]["properties"]) == _model_fields(JobSpec)
    assert _model_fields(JobSpec) >= OPTIONAL_JOB_FIELDS_IN_V1
    assert set(schema["$defs"]["jobSpec"]["required"]) == _model_fields(JobSpec) - OPTIONAL_JOB_FIELDS_IN_V1
    assert set(schema["$defs"]["notifySettings"]["properties"]) == _model_fields(NotifySettings)
    assert set(schema["$defs"]["phase"]["enum"]) == {p.value for p in Phase}
    assert all(event.value in schema["properties"]["event"]["description"] for event in Event)


def _doc_json_blocks() -> list[str]:
    return re.findall(r"```json\n(.*?)\n```", DOC_PATH.read_text(), flags=re.DOTALL)


def test_doc_example_validates_and_parses(validator: Draft202012Validator) -> None:
    examples = [block for block in _doc_json_blocks() if SCHEMA_ID in block]
    assert len(examples) == 1
    event = json.loads(examples[0])
    assert errors(validator, event) == []
    t = parse_event(examples[0])
    assert t.event == Event.FAILED and t.job_key == t.job.key


def test_doc_filter_policies_are_json_on_published_attributes() -> None:
    attributes = set(sns_message_attributes(sample(Event.FAILED)))
    policies = [json.loads(block) for block in _doc_json_blocks() if SCHEMA_ID not in block]
    assert len(policies) >= 3
    for policy in policies:
        assert set(policy) <= attributes


def test_doc_describes_every_field() -> None:
    doc = DOC_PATH.read_text()
    for name in _model_fields(Transition) | _model_fields(Snapshot) | _model_fields(JobSpec):
        assert f"`{name}`" in doc, name
    for event in Event:
        assert f"`{event.value}`" in doc
    for phase in Phase:
        assert f"`{phase.value}`" in doc


def _doc_event_rows() -> dict[str, list[str]]:
    """The cells of every Events table row, keyed by the event."""
    rows = re.findall(r"^\| `([A-Z_]+)` \| (.*) \|$", DOC_PATH.read_text(), flags=re.MULTILINE)
    return {name: [cell.strip() for cell in rest.split(" | ")] for name, rest in rows}


def test_doc_lists_every_event_with_its_severity() -> None:
    rows = _doc_event_rows()
    for event in Event:
        assert event.value in rows, event
        assert rows[event.value][0] == severity_for(event), event
        assert rows[event.value][-1].endswith((".", "`")), f"{event}: say when it fires"


def test_doc_has_health_and_error_filter_policies() -> None:
    policies = [json.loads(block) for block in _doc_json_blocks() if SCHEMA_ID not in block]
    assert {"event": sorted(HEALTH_EVENTS)} in [
        {key: sorted(value) for key, value in policy.items()} for policy in policies
    ]
    assert {"severity": ["error"]} in policies
    health = {event.value for event in Event if event.value in HEALTH_EVENTS}
    assert health == set(HEALTH_EVENTS), "HEALTH_EVENTS names an event the model lacks"


def test_doc_example_carries_the_fields_added_within_v1() -> None:
    example = json.loads(next(block for block in _doc_json_blocks() if SCHEMA_ID in block))
    assert set(example) == _model_fields(Transition)
    assert set(example["job"]) == _model_fields(JobSpec)
