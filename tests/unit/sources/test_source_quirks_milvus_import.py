"""milvus-import quirks: no `reason` key while fine, progress parked at 80 % while indexes build
(allFilesCompleted), reset counters after a failure, server-local times, limiter and gin 404 answers,
string job ids, the DB-Name header, facts."""

from __future__ import annotations

from source_cases import milvus_envelope as envelope
from source_cases import milvus_task as task
from source_testkit import facts_dict, parse_error, parse_ok, response, spec

from jobwatch.domain.errors import PollErrorKind
from jobwatch.domain.model import Phase
from jobwatch.sources.milvus_import import SOURCE


def test_running_job_empty_complete_time_and_no_reason_key() -> None:
    snapshot = parse_ok(SOURCE, envelope())
    assert snapshot.completed_at is None
    assert snapshot.error is None
    assert snapshot.progress == 45.0
    assert snapshot.details["allFilesCompleted"] is False
    assert snapshot.details["importedRows"] == 260000


def test_all_files_completed_while_importing_is_recorded() -> None:
    snapshot = parse_ok(
        SOURCE,
        envelope(
            progress=80,
            details=[task("Completed", progress=100, completeTime="2025-01-16T08:42:09Z")] * 2,
        ),
    )
    assert snapshot.phase is Phase.RUNNING
    assert snapshot.details["allFilesCompleted"] is True
    assert (snapshot.details["filesDone"], snapshot.details["filesTotal"]) == (2, 2)
    facts = facts_dict(SOURCE, spec("milvus-import"), snapshot)
    assert facts["Stage"] == "all files imported; sorting and building indexes"


def test_no_files_is_not_all_files_completed() -> None:
    snapshot = parse_ok(SOURCE, envelope(state="Pending", progress=0, details=[]))
    assert snapshot.phase is Phase.PENDING
    assert snapshot.details["allFilesCompleted"] is False
    assert snapshot.details["filesTotal"] == 0


def test_failed_job_keeps_reason_and_drops_reset_progress() -> None:
    snapshot = parse_ok(
        SOURCE, envelope(state="Failed", progress=0, importedRows=0, totalRows=0, reason="import timeout")
    )
    assert (snapshot.phase, snapshot.error, snapshot.progress) == (Phase.FAILED, "import timeout", None)
    # "0 of 0" rows after a failure says nothing; it is left out of the facts.
    assert "Rows" not in facts_dict(SOURCE, spec("milvus-import"), snapshot)


def test_completed_job_server_local_time_is_converted_to_utc() -> None:
    snapshot = parse_ok(
        SOURCE, envelope(state="Completed", progress=100, completeTime="2024-04-01T14:17:55+08:00")
    )
    assert snapshot.completed_at == "2024-04-01T06:17:55Z"
    assert snapshot.progress == 100.0


def test_limiter_code_carries_retry_after_when_sent() -> None:
    error = parse_error(
        SOURCE,
        response(200, {"code": 1807, "message": "request is rejected by limiter"}, {"retry-after": "2"}),
    )
    assert (error.kind, error.retry_after_s) == (PollErrorKind.RATE_LIMITED, 2.0)


def test_gin_404_page_for_a_wrong_path() -> None:
    error = parse_error(SOURCE, response(404, b"404 page not found", {"content-type": "text/plain"}))
    assert (error.kind, error.message) == (PollErrorKind.NOT_FOUND, "404 page not found")


def test_numeric_job_id_is_sent_as_a_string_with_the_database() -> None:
    job = spec("milvus-import", job_id="451910421389390804", options={"dbName": "analytics"})
    request = SOURCE.build_request(job, None)
    assert request.json is not None
    assert isinstance(request.json["jobId"], str)
    assert request.headers["DB-Name"] == "analytics"


def test_facts() -> None:
    snapshot = parse_ok(
        SOURCE,
        envelope(
            importedRows=520161,
            totalRows=1000000,
            details=[
                task("Completed", name="[1.parquet]"),
                task("Failed", name="[2.parquet]", reason="bad row"),
            ],
        ),
    )
    assert facts_dict(SOURCE, spec("milvus-import", options={"dbName": "analytics"}), snapshot) == {
        "Rows": "520,161 of 1,000,000",
        "Files": "1/2 done · 1 failed",
        "Size": "6.5 MiB",
        "Failed files": "[2.parquet] (bad row)",
        "Database": "analytics",
    }
