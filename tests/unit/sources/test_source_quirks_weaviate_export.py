"""weaviate-export quirks: Go zero dates, shard-based progress, capped shard lists, go-openapi errors,
facts."""

from __future__ import annotations

from typing import Any

import pytest
from source_cases import weaviate_export_body as body
from source_cases import weaviate_shards as shards
from source_testkit import facts_dict, parse_error, parse_ok, response, spec

from jobwatch.domain.errors import PollErrorKind
from jobwatch.domain.model import Phase
from jobwatch.sources.weaviate_export import SOURCE


def test_running_export_zero_completed_at_and_missing_counters() -> None:
    snapshot = parse_ok(
        SOURCE,
        body(
            shardStatus=shards(
                ("Article", "a1", {"objectsExported": 120000, "status": "TRANSFERRING"}),
                ("Product", "p1", {"status": "TRANSFERRING"}),  # objectsExported omitted when 0
            )
        ),
    )
    assert snapshot.completed_at is None
    assert snapshot.started_at == "2026-08-20T02:00:00.123000Z"
    assert "tookInMs" not in snapshot.details  # omitted while running
    assert snapshot.details["objectsExported"] == 120000
    assert snapshot.progress == 0.0


def test_progress_is_share_of_finished_shards_while_running() -> None:
    snapshot = parse_ok(
        SOURCE,
        body(
            shardStatus=shards(
                ("Article", "a1", {"objectsExported": 10, "status": "SUCCESS"}),
                ("Article", "a2", {"status": "FAILED", "error": "disk full"}),
                ("Article", "a3", {"status": "SKIPPED", "skipReason": "no data"}),
                ("Product", "p1", {"objectsExported": 5, "status": "TRANSFERRING"}),
            )
        ),
    )
    assert snapshot.progress == 75.0
    assert snapshot.details["shards"] == {
        "total": 4,
        "transferring": 1,
        "succeeded": 1,
        "failed": 1,
        "skipped": 1,
    }
    assert snapshot.details["failedShards"] == [
        {"collection": "Article", "shard": "a2", "error": "disk full"}
    ]
    assert snapshot.details["skippedShards"] == [
        {"collection": "Article", "shard": "a3", "reason": "no data"}
    ]
    assert snapshot.details["objectsExported"] == 15


@pytest.mark.parametrize(
    ("status", "shard_status", "progress"),
    [
        ("TRANSFERRING", None, None),  # no node report yet
        ("TRANSFERRING", {}, None),  # no shards: nothing to divide by
        ("SUCCESS", None, 100.0),
        ("FAILED", shards(("A", "s", {"status": "FAILED"})), None),
        ("CANCELED", None, None),
        ("FUTURE", shards(("A", "s", {"status": "SUCCESS"}), ("A", "t", {})), 50.0),
    ],
)
def test_progress_rules(status: str, shard_status: dict[str, Any] | None, progress: float | None) -> None:
    fields = {} if shard_status is None else {"shardStatus": shard_status}
    assert parse_ok(SOURCE, body(status, **fields)).progress == progress


def test_unknown_shard_status_is_counted_not_guessed() -> None:
    snapshot = parse_ok(
        SOURCE,
        body(shardStatus=shards(("A", "s1", {"status": "PAUSED"}), ("A", "s2", {"objectsExported": 3}))),
    )
    assert snapshot.details["shards"]["total"] == 2
    assert snapshot.details["shards"]["unknown"] == 2
    assert snapshot.progress == 0.0


def test_success_details() -> None:
    snapshot = parse_ok(
        SOURCE,
        body(
            "SUCCESS",
            completedAt="2026-08-20T02:14:05.456Z",
            tookInMs=845333,
            shardStatus=shards(("Article", "a1", {"objectsExported": 498213, "status": "SUCCESS"})),
        ),
    )
    assert snapshot.progress == 100.0
    assert snapshot.completed_at == "2026-08-20T02:14:05.456000Z"
    assert snapshot.error is None
    details = snapshot.details
    assert details["backend"] == "s3"
    assert details["path"] == "s3://bucket/exports/nightly"
    assert details["location"] == "s3://bucket/exports/nightly"
    assert details["collections"] == ["Article", "Product"]
    assert details["tookInMs"] == 845333
    assert details["objectsExported"] == 498213


def test_canceled_keeps_error_and_phase() -> None:
    snapshot = parse_ok(
        SOURCE,
        body(
            "CANCELED", completedAt="2026-08-20T02:03:00.789Z", error="export was canceled", tookInMs=180666
        ),
    )
    assert snapshot.phase is Phase.CANCELED
    assert snapshot.error == "export was canceled"
    assert "shards" not in snapshot.details
    assert "objectsExported" not in snapshot.details  # unknown, not zero


def test_failed_before_completion_time_is_promoted() -> None:
    snapshot = parse_ok(SOURCE, body("FAILED", error="node weaviate-2 failed: gone"))
    assert snapshot.phase is Phase.FAILED
    assert snapshot.completed_at is None
    assert snapshot.error == "node weaviate-2 failed: gone"


def test_local_path_gets_backend_in_location_and_null_classes_read_empty() -> None:
    snapshot = parse_ok(SOURCE, body(backend="filesystem", path="/var/lib/weaviate/exports/x", classes=None))
    assert snapshot.details["location"] == "filesystem: /var/lib/weaviate/exports/x"
    assert snapshot.details["collections"] == []


def test_shard_lists_are_capped_with_a_count() -> None:
    many = shards(*[("A", f"s{i:03d}", {"status": "FAILED", "error": "x"}) for i in range(57)])
    snapshot = parse_ok(SOURCE, body("FAILED", shardStatus=many))
    assert len(snapshot.details["failedShards"]) == 50
    assert snapshot.details["failedShardsTruncated"] == 7
    assert snapshot.details["shards"]["failed"] == 57
    assert "skippedShardsTruncated" not in snapshot.details
    facts = facts_dict(SOURCE, spec("weaviate-export", backend="s3"), snapshot)
    assert facts["Failed shards"] == "A/s000 (x); A/s001 (x); A/s002 (x); +54 more"
    assert facts["Shards"] == "0/57 done · 57 failed"


def test_401_plain_text_without_content_type() -> None:
    text = b"anonymous access not enabled. Please authenticate through one of the available methods"
    error = parse_error(SOURCE, response(401, text))
    assert error.kind is PollErrorKind.AUTH
    assert error.message.startswith("anonymous access not enabled")


def test_validation_422_keeps_framework_code() -> None:
    error = parse_error(SOURCE, response(422, {"code": 602, "message": "file_format in body is required"}))
    assert (error.kind, error.api_code, error.http_status) == (PollErrorKind.HTTP_STATUS, 602, 422)
    auth = parse_error(SOURCE, response(401, {"code": 401, "message": "unauthorized"}))
    assert auth.api_code is None  # the framework code only repeats the HTTP status


def test_several_handler_messages_are_joined() -> None:
    error = parse_error(SOURCE, response(500, {"error": [{"message": "a"}, {"nope": 1}, {"message": "b"}]}))
    assert error.message == "a; b"


def test_error_body_behind_200_says_what_it_said() -> None:
    error = parse_error(SOURCE, response(200, {"error": [{"message": "export not found"}]}))
    assert error.kind is PollErrorKind.INVALID_BODY
    assert "export not found" in error.message


def test_unparseable_timestamps_are_unknown_not_errors() -> None:
    snapshot = parse_ok(
        SOURCE, body("SUCCESS", startedAt="yesterday", completedAt="9999-12-31T23:59:59-23:59")
    )
    assert (snapshot.started_at, snapshot.completed_at) == (None, None)


def test_facts_for_a_running_export() -> None:
    snapshot = parse_ok(
        SOURCE,
        body(
            shardStatus=shards(
                ("A", "s1", {"objectsExported": 520161, "status": "SUCCESS"}),
                ("A", "s2", {"objectsExported": 1000, "status": "TRANSFERRING"}),
                ("A", "s3", {"status": "SKIPPED", "skipReason": "tenant status is FROZEN"}),
                ("A", "s4", {"status": "FAILED", "error": "upload: timeout"}),
            )
        ),
    )
    assert facts_dict(SOURCE, spec("weaviate-export", backend="s3"), snapshot) == {
        "Objects exported": "521,161",
        "Shards": "1/4 done · 1 failed · 1 skipped",
        "Failed shards": "A/s4 (upload: timeout)",
    }


def test_facts_for_a_canceled_export_are_empty() -> None:
    snapshot = parse_ok(SOURCE, body("CANCELED", error="export was canceled"))
    assert SOURCE.facts(spec("weaviate-export", backend="s3"), snapshot) == []
