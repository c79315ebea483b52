"""zilliz-import-v1 quirks: the 0..1 readyPercentage fraction, no start time, "Unknown type" placeholders,
per-file counts, success codes 0 and 200, facts."""

from __future__ import annotations

from typing import Any

import pytest
from source_cases import ZILLIZ_V1_STATUSES, StatusCase
from source_cases import zilliz_v1_envelope as envelope
from source_cases import zilliz_v1_file as file_entry
from source_testkit import facts_dict, parse_error, parse_ok, response, spec

from jobwatch.domain.errors import PollErrorKind
from jobwatch.domain.model import Phase
from jobwatch.sources.zilliz_import_v1 import SOURCE


@pytest.mark.parametrize("status", [pytest.param(st, id=st.label) for st in ZILLIZ_V1_STATUSES])
def test_no_start_time_in_any_phase(status: StatusCase) -> None:
    assert parse_ok(SOURCE, status.body).started_at is None


def test_completed_details_and_time() -> None:
    snapshot = parse_ok(
        SOURCE,
        envelope(
            readyPercentage=1,
            completeTime="2023-10-28T06:51:49Z",
            details=[file_entry(1, completeTime="2023-10-28T06:51:49Z", fileSize=26571700)],
        ),
    )
    assert snapshot.completed_at == "2023-10-28T06:51:49Z"
    assert snapshot.error is None
    assert snapshot.details == {
        "collectionName": "medium_articles",
        "collections": ["medium_articles"],
        "fileName": "a/1.parquet",
        "fileSize": 19599887,
        "files": [
            {
                "fileName": "a/1.parquet",
                "fileSize": 26571700,
                "progress": 100.0,
                "completeTime": "2023-10-28T06:51:49Z",
                "error": None,
            }
        ],
        "filesTotal": 1,
        "filesDone": 1,
        "filesFailed": 0,
    }


def test_unknown_type_placeholders_are_null() -> None:
    snapshot = parse_ok(
        SOURCE,
        envelope(
            completeTime="Unknown type",
            errorMessage="Unknown type",
            details=[file_entry(0, "Unknown type", completeTime="Unknown type")],
        ),
    )
    assert snapshot.phase is Phase.RUNNING
    assert snapshot.error is None
    assert snapshot.completed_at is None
    assert snapshot.details["files"][0]["error"] is None
    assert snapshot.details["filesFailed"] == 0


def test_per_file_counts_and_cap() -> None:
    files = [file_entry(1, name=f"f{i}") for i in range(40)]
    files += [file_entry(0.5, name=f"g{i}") for i in range(12)]
    files += [file_entry(0.2, "broken", name=f"h{i}") for i in range(3)]
    snapshot = parse_ok(SOURCE, envelope(readyPercentage=0.8, details=files))
    details = snapshot.details
    assert (details["filesTotal"], details["filesDone"], details["filesFailed"]) == (55, 40, 3)
    assert len(details["files"]) == 50
    assert details["filesTruncated"] == 5
    # Failed files are kept ahead of healthy ones when the list is capped.
    assert [item["fileName"] for item in details["files"][:4]] == ["h0", "h1", "h2", "f0"]
    facts = facts_dict(SOURCE, spec("zilliz-import-v1", cluster_id="in01-x"), snapshot)
    assert facts["Failed files"] == "h0 (broken); h1 (broken); h2 (broken)"
    assert facts["Files"] == "40/55 done · 3 failed"


@pytest.mark.parametrize("ready", [1.5, 50, 100, -0.1, "0.5", True])
def test_fraction_outside_0_1_or_wrong_type_is_drift(ready: Any) -> None:
    error = parse_error(SOURCE, response(200, envelope(readyPercentage=ready)))
    assert error.kind is PollErrorKind.INVALID_BODY
    assert "readyPercentage" in error.message


def test_file_fraction_is_checked_too() -> None:
    error = parse_error(SOURCE, response(200, envelope(details=[file_entry(42)])))
    assert error.kind is PollErrorKind.INVALID_BODY
    assert "data.details[0].readyPercentage" in error.message


def test_success_code_zero_is_accepted() -> None:
    assert parse_ok(SOURCE, envelope(code=0)).phase is Phase.RUNNING
    assert parse_ok(SOURCE, envelope(code="200")).phase is Phase.RUNNING


def test_api_error_without_message_names_the_code() -> None:
    error = parse_error(SOURCE, response(200, {"code": 80010}))
    assert error.kind is PollErrorKind.API_ERROR
    assert "80010" in error.message


def test_facts() -> None:
    snapshot = parse_ok(
        SOURCE,
        envelope(
            readyPercentage=0.4,
            fileSize=26571700,
            details=[file_entry(1, name="a"), file_entry(0.2, "row 7: bad vector", name="b"), file_entry(0)],
        ),
    )
    assert facts_dict(SOURCE, spec("zilliz-import-v1", cluster_id="in01-x"), snapshot) == {
        "Files": "1/3 done · 1 failed",
        "Size": "25.3 MiB",
        "Failed files": "b (row 7: bad vector)",
    }
