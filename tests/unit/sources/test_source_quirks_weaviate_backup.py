"""weaviate-backup quirks: no completion time while running, size in GiB, incremental base, facts."""

from __future__ import annotations

from source_cases import weaviate_backup_body as body
from source_testkit import facts_dict, parse_ok, spec

from jobwatch.domain.model import Phase
from jobwatch.sources.weaviate_backup import SOURCE


def test_running_backup_has_no_completion_time() -> None:
    snapshot = parse_ok(SOURCE, body())
    assert snapshot.started_at == "2026-08-20T01:00:00Z"
    assert snapshot.completed_at is None
    assert "sizeGiB" not in snapshot.details
    assert "timestampsObserved" not in snapshot.details


def test_success_carries_size_in_gib() -> None:
    snapshot = parse_ok(
        SOURCE,
        body("SUCCESS", completedAt="2026-08-20T01:07:31.512Z", size=1.7342, incremental_base_backup_id=""),
    )
    assert snapshot.completed_at == "2026-08-20T01:07:31.512000Z"
    assert snapshot.details == {
        "backend": "s3",
        "path": "s3://backups/nightly",
        "location": "s3://backups/nightly",
        "collections": [],
        "sizeGiB": 1.7342,
    }


def test_incremental_base_is_kept() -> None:
    snapshot = parse_ok(SOURCE, body("SUCCESS", size=2, incremental_base_backup_id="weekly-1"))
    assert snapshot.details["incrementalBaseBackupId"] == "weekly-1"
    assert snapshot.details["sizeGiB"] == 2.0


def test_canceled_after_restart_keeps_error() -> None:
    snapshot = parse_ok(SOURCE, body("CANCELED", error="backup canceled due to node restart"))
    assert snapshot.phase is Phase.CANCELED
    assert snapshot.error == "backup canceled due to node restart"
    assert snapshot.completed_at is None


def test_facts() -> None:
    job = spec("weaviate-backup", backend="s3")
    assert facts_dict(SOURCE, job, parse_ok(SOURCE, body("SUCCESS", size=1.7342))) == {
        "Size": "1.73 GiB before compression"
    }
    assert facts_dict(SOURCE, job, parse_ok(SOURCE, body("TRANSFERRED"))) == {
        "Stage": "files transferred, not finished yet"
    }
    assert SOURCE.facts(job, parse_ok(SOURCE, body("FAILED", error="x"))) == []
