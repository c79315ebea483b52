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
from jobwatch import messages
from jobwatch.model import SCHEMA_ID, Event, JobSpec, Phase, Snapshot, Transition
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
    Event.TEST: Phase.RUNNING,
}


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
        severity=messages.severity_for(event),
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
    )


SAMPLES = [
    *(sample(event) for event in Event),
    sample(Event.QUEUED, first_seen=True),
    sample(Event.FAILED, source="some-future-source", cluster_id="in01-abc"),
]


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


@pytest.mark.parametrize("t", SAMPLES[:6], ids=lambda t: t.transition_id)
def test_published_sns_event_validates(validator: Draft202012Validator, t: Transition) -> None:
    message = json.loads(messages.sns_publish_request(t)["Message"])
    for key in ("sqs", "lambda", "http", "https"):
        assert errors(validator, json.loads(message[key])) == []


def test_truncated_event_still_validates(validator: Draft202012Validator) -> None:
    t = sample(Event.SUCCEEDED)
    huge = t.current.model_copy(update={"details": {**t.current.details, "files": ["f" * 100] * 5_000}})
    t = t.model_copy(update={"current": huge, "previous": huge})
    event = json.loads(json.loads(messages.sns_publish_request(t)["Message"])["sqs"])
    assert event["current"]["details"]["detailsTruncated"] is True
    assert errors(validator, event) == []


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
    assert set(schema["required"]) == _model_fields(Transition)
    assert set(schema["$defs"]["snapshot"]["properties"]) == _model_fields(Snapshot)
    assert set(schema["$defs"]["jobSpec"]["properties"]) == _model_fields(JobSpec)
    assert set(schema["$defs"]["phase"]["enum"]) == {p.value for p in Phase}
    assert all(event.value in schema["properties"]["event"]["description"] for event in Event)


def _doc_json_blocks() -> list[str]:
    return re.findall(r"```json\n(.*?)\n```", DOC_PATH.read_text(), flags=re.DOTALL)


def test_doc_example_validates_and_parses(validator: Draft202012Validator) -> None:
    examples = [block for block in _doc_json_blocks() if SCHEMA_ID in block]
    assert len(examples) == 1
    event = json.loads(examples[0])
    assert errors(validator, event) == []
    t = messages.parse_event(examples[0])
    assert t.event == Event.FAILED and t.job_key == t.job.key


def test_doc_filter_policies_are_json_on_published_attributes() -> None:
    attributes = set(messages.sns_message_attributes(sample(Event.FAILED)))
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
