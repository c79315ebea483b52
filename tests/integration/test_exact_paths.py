"""Exact request paths through the real stack: registration API -> DynamoDB -> poller -> HTTP -> simulator.

Ids and backends are user input that becomes part of a URL. The values that can be one path segment
must reach the upstream as exactly that segment, percent-encoded (`?`, `#`, `%`, spaces, Unicode);
the ones that cannot (`..`, `.`, anything with `/`) are refused by `POST /jobs` and `jobwatch track`
before anything is written. The simulator records the raw request path as it arrived on the wire.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from jobwatch_tools.api_server import build_event
from jobwatch_tools.cli import main
from jobwatch_tools.local import api_handler

from jobwatch.api.routes import ROUTES
from jobwatch_devkit.harness import LocalDeployment
from jobwatch_devkit.simulator import UpstreamSimulator, state

pytestmark = pytest.mark.integration

EXPORT = "weaviate-export"
PINECONE = "pinecone-import"

ONE_SEGMENT: list[tuple[str, str]] = [
    ("?x", "%3Fx"),
    ("#frag", "%23frag"),
    ("%2e%2e", "%252e%252e"),
    ("%2F", "%252F"),
    ("a b", "a%20b"),
    ("ünï", "%C3%BCn%C3%AF"),
    ("...", "..."),
]
"""(job id, the path segment the upstream must receive)."""
SUB_DELIMS: list[tuple[str, str]] = [("?x=1", "%3Fx%3D1"), ("a;b", "a%3Bb"), ("a&b+c", "a%26b%2Bc")]
"""Ids with RFC 3986 sub-delimiters, which a path may carry raw but which servers may read as syntax
(`;` starts a path parameter in servlet containers): sent encoded, they must arrive encoded."""


def _post_job(body: dict[str, Any]) -> tuple[int, Any]:
    event = build_event(
        "POST", "/jobs", [("Content-Type", "application/json")], json.dumps(body).encode(), ROUTES
    )
    result = api_handler(event, None)
    return result["statusCode"], json.loads(result["body"])


def _raw_paths(sim: UpstreamSimulator, source: str) -> dict[str, str]:
    """Job id -> the raw path of its status request, for every request the simulator matched to a job."""
    return {r.job_id: r.raw_path for r in sim.requests_log() if r.source == source and r.job_id is not None}


def test_ids_that_can_be_one_segment_reach_the_upstream_as_exactly_that_segment(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str
) -> None:
    for job_id, _ in ONE_SEGMENT:
        sim.add_job(EXPORT, job_id, [state("TRANSFERRING")], backend="s3")
        sim.add_job(PINECONE, job_id, [state("InProgress", progress=10.0)])
        status, _ = _post_job({"source": EXPORT, "endpoint": sim_url, "jobId": job_id, "backend": "s3"})
        assert status == 201, job_id
        status, _ = _post_job({"source": PINECONE, "endpoint": sim_url, "jobId": job_id})
        assert status == 201, job_id

    report = deployment.poll()

    assert (report.polled, report.poll_errors, report.transitions) == (2 * len(ONE_SEGMENT), 0, 14)
    assert _raw_paths(sim, EXPORT) == {job_id: f"/v1/export/s3/{segment}" for job_id, segment in ONE_SEGMENT}
    assert _raw_paths(sim, PINECONE) == {
        job_id: f"/bulk/imports/{segment}" for job_id, segment in ONE_SEGMENT
    }
    # The simulator decodes each path once, as a server does, and finds the job under its own id.
    assert all(job.snapshot is not None for job in deployment.jobs())


def test_sub_delimiters_arrive_still_encoded(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str
) -> None:
    for job_id, _ in SUB_DELIMS:
        sim.add_job(PINECONE, job_id, [state("InProgress", progress=10.0)])
        assert _post_job({"source": PINECONE, "endpoint": sim_url, "jobId": job_id})[0] == 201

    assert deployment.poll().poll_errors == 0
    # Decoded, every id names its own job (the simulator found each one) ...
    assert {r.job_id: r.path for r in sim.requests_log()} == {
        job_id: f"/bulk/imports/{job_id}" for job_id, _ in SUB_DELIMS
    }
    # ... and on the wire each is the segment jobwatch built.
    assert _raw_paths(sim, PINECONE) == {job_id: f"/bulk/imports/{segment}" for job_id, segment in SUB_DELIMS}


def test_a_backend_is_one_segment_too(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str
) -> None:
    sim.add_job(EXPORT, "exp-backend", [state("TRANSFERRING")])
    status, _ = _post_job(
        {"source": EXPORT, "endpoint": sim_url, "jobId": "exp-backend", "backend": "s3?x#y %2F"}
    )
    assert status == 201

    assert deployment.poll().poll_errors == 0
    assert _raw_paths(sim, EXPORT) == {"exp-backend": "/v1/export/s3%3Fx%23y%20%252F/exp-backend"}


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("jobId", "..", "it is a dot segment, which URL resolution removes"),
        ("jobId", ".", "it is a dot segment, which URL resolution removes"),
        ("jobId", "a/b", "it contains '/' at position 1, which would split it into two path segments"),
        ("backend", "..", "it is a dot segment, which URL resolution removes"),
        ("backend", "s3/x", "it contains '/' at position 2, which would split it into two path segments"),
    ],
)
def test_post_jobs_refuses_what_cannot_be_one_segment(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, field: str, value: str, reason: str
) -> None:
    body = {"source": EXPORT, "endpoint": sim_url, "jobId": "exp-x", "backend": "s3", field: value}
    status, answer = _post_job(body)
    assert status == 422
    assert answer["errors"] == [
        {"field": field, "message": f"{value!r} cannot be one URL path segment: {reason}"}
    ]
    pinecone_status, _ = _post_job({"source": PINECONE, "endpoint": sim_url, "jobId": ".."})
    assert pinecone_status == 422
    assert deployment.jobs() == []
    assert sim.requests_log() == []


@pytest.mark.parametrize("job_id", ["..", "."])
def test_jobwatch_track_refuses_dot_segments_in_one_line(
    deployment: LocalDeployment, sim_url: str, capsys: pytest.CaptureFixture[str], job_id: str
) -> None:
    capsys.readouterr()
    code = main(["track", EXPORT, "--endpoint", sim_url, "--backend", "s3", "--job-id", job_id])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"jobwatch: registration refused, nothing written: jobId {job_id!r} cannot be one URL path segment: "
        "it is a dot segment, which URL resolution removes"
    ]
    assert "Traceback" not in err
    assert deployment.jobs() == []
