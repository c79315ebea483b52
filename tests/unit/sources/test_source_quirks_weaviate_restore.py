"""weaviate-restore quirks: restore status has no timestamps (durations are observed), facts."""

from __future__ import annotations

from source_cases import weaviate_restore_body as body
from source_testkit import facts_dict, parse_ok, spec

from jobwatch.domain.model import Phase
from jobwatch.sources.weaviate_restore import SOURCE


def test_no_timestamps_and_durations_are_observed() -> None:
    # Even if a future server sent timestamps or size, the restore contract has none.
    snapshot = parse_ok(SOURCE, body("SUCCESS", startedAt="2026-08-20T01:00:00Z", size=3.0))
    assert (snapshot.started_at, snapshot.completed_at) == (None, None)
    assert snapshot.progress == 100.0
    assert snapshot.details == {
        "backend": "s3",
        "path": "s3://backups/nightly",
        "location": "s3://backups/nightly",
        "collections": [],
        "timestampsObserved": True,
    }


def test_canceled_by_user_keeps_error() -> None:
    snapshot = parse_ok(SOURCE, body("CANCELED", error="restore canceled by user"))
    assert (snapshot.phase, snapshot.error) == (Phase.CANCELED, "restore canceled by user")


def test_facts_explain_the_stage() -> None:
    job = spec("weaviate-restore", backend="s3")
    observed = "restore status has no timestamps: durations are observed by jobwatch"
    assert facts_dict(SOURCE, job, parse_ok(SOURCE, body("FINALIZING"))) == {
        "Stage": "finalizing (can no longer be canceled)",
        "Timing": observed,
    }
    assert facts_dict(SOURCE, job, parse_ok(SOURCE, body("SUCCESS"))) == {"Timing": observed}
