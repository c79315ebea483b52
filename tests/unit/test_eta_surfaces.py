"""Where the estimated completion (D41) is shown: the event (schema), Slack (webhook message and the
app's living root), e-mail, the API's job resource and `jobwatch show`/`list` text."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jobwatch_tools.terminal import eta_seconds, stored_eta_text
from jsonschema import Draft202012Validator, FormatChecker

from jobwatch.app.models import JobResource
from jobwatch.channels.slack_app import render_root
from jobwatch.delivery.envelope import parse_event
from jobwatch.domain.model import (
    Event,
    Health,
    JobSpec,
    Phase,
    ProgressMark,
    Snapshot,
    TrackedJob,
    Transition,
)
from jobwatch.render.email import email_body
from jobwatch.render.slack_blocks import render_payload, validate_payload
from jobwatch.render.view import describe

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "transition-event.v1.json").read_text())
SPEC = JobSpec(source="milvus-import", endpoint="https://m.example.com", job_id="imp-1")
OCCURRED = "2026-11-22T14:09:00Z"
ETA = "2026-11-22T14:32:00Z"


def transition(
    eta: str | None = ETA, phase: Phase = Phase.RUNNING, event: Event = Event.RESUMED
) -> Transition:
    return Transition(
        transition_id=f"{SPEC.key}#3",
        job_key=SPEC.key,
        source=SPEC.source,
        job_id=SPEC.job_id,
        event=event,
        severity="info",
        occurred_at=OCCURRED,
        job=SPEC,
        previous=Snapshot(phase=Phase.RUNNING, status="Importing", progress=40.0),
        current=Snapshot(phase=phase, status="Importing", progress=60.0),
        eta=eta,
    )


def texts(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def test_the_event_carries_eta_and_validates() -> None:
    validator = Draft202012Validator(SCHEMA, format_checker=FormatChecker())
    wire = transition().to_wire()
    assert wire["eta"] == ETA
    assert list(validator.iter_errors(wire)) == []
    assert list(validator.iter_errors({**wire, "eta": None})) == []
    assert list(validator.iter_errors({**wire, "eta": "soon"})) != []
    older = {k: v for k, v in wire.items() if k != "eta"}
    assert list(validator.iter_errors(older)) == []
    assert parse_event(json.dumps(older)).eta is None
    assert parse_event(json.dumps(wire)).eta == ETA


def test_the_slack_message_shows_the_eta_of_a_running_job() -> None:
    payload = render_payload(transition())
    assert validate_payload(payload) == []
    assert "*ETA*" in texts(payload) and "14:32 UTC (in 23 min)" in texts(payload)


@pytest.mark.parametrize(
    "t",
    [
        transition(eta=None),
        transition(phase=Phase.SUCCEEDED, event=Event.SUCCEEDED),  # an estimate never outlives its phase
    ],
)
def test_nothing_is_shown_without_an_estimate(t: Transition) -> None:
    assert describe(t).eta is None
    assert "ETA" not in texts(render_payload(t))
    assert "ETA" not in texts(render_root(t)[0])
    assert "ETA" not in email_body(t)


def test_the_living_slack_root_shows_the_eta() -> None:
    root, _ = render_root(transition())
    section = root["blocks"][1]
    assert "ETA 14:32 UTC (in 23 min)" in section["text"]["text"]
    assert any("14:32 UTC (in 23 min)" in f["text"] for f in section["fields"])
    assert len(section["fields"]) <= 10


def test_the_email_has_an_eta_line() -> None:
    assert "\nETA:          14:32 UTC (in 23 min)\n" in email_body(transition())


def stored_job(
    health: Health, changed_at: str = "2026-11-22T12:30:00.000Z", phase: Phase = Phase.RUNNING
) -> TrackedJob:
    return TrackedJob(
        spec=SPEC,
        snapshot=Snapshot(phase=phase, status="Importing", progress=40.0),
        version=4,
        created_at="2026-11-22T12:00:00.000Z",
        updated_at=changed_at,
        changed_at=changed_at,
        health=health,
    )


def test_the_api_resource_has_eta_or_says_why_not() -> None:
    baseline = ProgressMark(at="2026-11-22T12:00:00.000Z", progress=10.0)
    moving = JobResource.of(stored_job(Health(progress_baseline=baseline)), now_iso="2026-11-22T12:31:00Z")
    assert (moving.eta, moving.eta_note) == ("2026-11-22T13:30:00Z", None)
    assert moving.to_wire()["eta"] == "2026-11-22T13:30:00Z" and "etaNote" in moving.to_wire()
    stalled = JobResource.of(stored_job(Health(progress_baseline=baseline, stalled=True)))
    assert (stalled.eta, stalled.eta_note) == (None, "stalled")
    fresh = JobResource.of(stored_job(Health()))
    assert (fresh.eta, fresh.eta_note) == (None, "no progress history yet")
    done = JobResource.of(stored_job(Health(), phase=Phase.SUCCEEDED))
    assert (done.eta, done.eta_note) == (None, None)


def test_cli_eta_text() -> None:
    now = datetime(2026, 11, 22, 14, 9, tzinfo=UTC)
    assert stored_eta_text(ETA, None, now) == "14:32 UTC (in 23 min)"
    assert stored_eta_text(None, "progress flat", now) == "no estimate (progress flat)"
    assert stored_eta_text(None, None, now) == ""


def test_follow_uses_the_domain_rule() -> None:
    """`follow` estimates from the start (0 %) to now with the same rule, bound included."""
    assert eta_seconds(25.0, 60.0) == pytest.approx(180.0)
    assert eta_seconds(0.001, 3_600.0) is None  # more than 30 days away
