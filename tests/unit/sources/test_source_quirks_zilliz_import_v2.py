"""zilliz-import-v2 quirks: the v2 body's details, progress clamping, success code 200, the default
control plane, facts."""

from __future__ import annotations

from source_cases import zilliz_v2_envelope as envelope
from source_cases import zilliz_v2_file as file_entry
from source_testkit import facts_dict, parse_ok, spec

from jobwatch.domain.model import Phase
from jobwatch.sources.zilliz_import_v2 import DEFAULT_ENDPOINT, SOURCE


def test_completed_details() -> None:
    snapshot = parse_ok(
        SOURCE,
        envelope(
            state="Completed",
            progress=100,
            completeTime="2024-04-01T06:17:55Z",
            details=[file_entry("Completed", progress=100, completeTime="2024-04-01T06:17:53Z")],
        ),
    )
    assert snapshot.completed_at == "2024-04-01T06:17:55Z"
    assert snapshot.error is None  # reason "" is no error
    assert snapshot.started_at is None
    assert snapshot.details == {
        "collectionName": "medium_articles",
        "collections": ["medium_articles"],
        "fileName": "a.json",
        "fileSize": 3279917,
        "importedRows": None,
        "totalRows": 100000,
        "files": [
            {
                "fileName": "a.json",
                "fileSize": 3279917,
                "state": "Completed",
                "progress": 100.0,
                "importedRows": None,
                "totalRows": None,
                "completeTime": "2024-04-01T06:17:53Z",
                "error": None,
            }
        ],
        "filesTotal": 1,
        "filesDone": 1,
        "filesFailed": 0,
        "allFilesCompleted": True,
    }


def test_failed_job_is_not_an_api_error() -> None:
    snapshot = parse_ok(
        SOURCE,
        envelope(
            state="Failed", progress=0, reason="row 12: dim mismatch", details=[file_entry("Failed", "dim")]
        ),
    )
    assert snapshot.phase is Phase.FAILED
    assert snapshot.error == "row 12: dim mismatch"
    assert snapshot.details["filesFailed"] == 1


def test_negative_progress_is_clamped() -> None:
    assert parse_ok(SOURCE, envelope(progress=-3)).progress == 0.0
    assert parse_ok(SOURCE, envelope(progress=130)).progress == 100.0


def test_success_code_200_is_accepted() -> None:
    assert parse_ok(SOURCE, envelope(code=200)).phase is Phase.RUNNING


def test_build_request_defaults_the_control_plane() -> None:
    request = SOURCE.build_request(spec("zilliz-import-v2", endpoint="", cluster_id="in01-1"), None)
    assert DEFAULT_ENDPOINT == "https://api.cloud.zilliz.com"
    assert request.url == "https://api.cloud.zilliz.com/v2/vectordb/jobs/import/getProgress"
    assert "Authorization" not in request.headers


def test_facts() -> None:
    snapshot = parse_ok(
        SOURCE,
        envelope(
            importedRows=520161,
            totalRows=1000000,
            details=[
                file_entry("Completed", name="1.parquet"),
                file_entry("Failed", "bad schema", name="2.parquet"),
                file_entry("Importing", name="3.parquet"),
            ],
        ),
    )
    assert facts_dict(SOURCE, spec("zilliz-import-v2", cluster_id="in01-1"), snapshot) == {
        "Rows": "520,161 of 1,000,000",
        "Files": "1/3 done · 1 failed",
        "Size": "3.1 MiB",
        "Failed files": "2.parquet (bad schema)",
    }
