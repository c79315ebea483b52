"""pinecone-import quirks: the Api-Key and api-version headers, bare hosts, rpcStatus and control-plane
error shapes, validation counts, facts."""

from __future__ import annotations

from source_cases import pinecone_body as body
from source_testkit import facts_dict, parse_error, parse_ok, response, spec

from jobwatch.domain.errors import PollErrorKind
from jobwatch.domain.model import Phase
from jobwatch.sources.pinecone_import import SOURCE


def test_details_and_timestamps() -> None:
    snapshot = parse_ok(
        SOURCE,
        body(
            "Completed",
            percentComplete=100.0,
            finishedAt="2025-11-07T06:00:00Z",
            validationResult={"importSuccesses": 999990, "importErrors": 10},
        ),
    )
    assert (snapshot.started_at, snapshot.completed_at) == ("2025-11-07T05:31:56Z", "2025-11-07T06:00:00Z")
    assert snapshot.details == {
        "location": "s3://bucket/import-dir",
        "uri": "s3://bucket/import-dir",
        "collections": [],
        "recordsImported": 1000000,
        "importSuccesses": 999990,
        "importErrors": 10,
    }


def test_failed_import_keeps_error() -> None:
    snapshot = parse_ok(SOURCE, body("Failed", error="file a.parquet: schema mismatch", percentComplete=10))
    assert (snapshot.phase, snapshot.error) == (Phase.FAILED, "file a.parquet: schema mismatch")


def test_rpc_status_code_is_kept() -> None:
    error = parse_error(SOURCE, response(404, {"code": 5, "message": "Import 101 not found"}))
    assert error.api_code == 5


def test_http_errors_keep_control_plane_shape_text() -> None:
    payload = {"error": {"code": "UNAUTHENTICATED", "message": "Invalid API Key"}, "status": 401}
    error = parse_error(SOURCE, response(401, payload))
    assert (error.kind, error.message, error.api_code) == (
        PollErrorKind.AUTH,
        "Invalid API Key",
        "UNAUTHENTICATED",
    )


def test_key_goes_in_the_api_key_header_not_a_bearer_token() -> None:
    request = SOURCE.build_request(spec("pinecone-import"), "pc-key")
    assert request.headers["Api-Key"] == "pc-key"
    assert "Authorization" not in request.headers


def test_build_request_bare_host_and_version_override() -> None:
    request = SOURCE.build_request(
        spec("pinecone-import", endpoint="idx-abc.svc.pinecone.io", options={"apiVersion": "2026-07"}), None
    )
    assert request.url == "https://idx-abc.svc.pinecone.io/bulk/imports/job-1"
    assert request.headers == {"Accept": "application/json", "X-Pinecone-Api-Version": "2026-07"}


def test_facts() -> None:
    job = spec("pinecone-import")
    snapshot = parse_ok(SOURCE, body(validationResult={"importSuccesses": 999990, "importErrors": 10}))
    assert facts_dict(SOURCE, job, snapshot) == {"Records imported": "1,000,000", "Rejected records": "10"}
    clean = parse_ok(SOURCE, body(validationResult={"importSuccesses": 5, "importErrors": 0}))
    assert facts_dict(SOURCE, job, clean) == {"Records imported": "1,000,000"}
