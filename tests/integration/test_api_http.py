"""The registration API over real HTTP: `jobwatch api serve` in front of the moto-backed deployment.

Requests go through a loopback socket into the local server, which turns each into an API Gateway
proxy event for the real handler. A schemathesis run then throws generated requests for every
operation of docs/openapi.json at it (25 examples per operation, about half a minute in all) and
fails on any 5xx and on any response that the document does not allow (status, content type, body).
The route operations get a second, longer run against a deployment that already holds routes and a
tracked job, so that explain evaluates real routes rather than answering 404.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from jobwatch_tools.api_server import ApiServer
from jobwatch_tools.local import api_handler
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from jobwatch.api import routes as api
from jobwatch_devkit.harness import LocalDeployment
from jobwatch_devkit.simulator import UpstreamSimulator, state

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
SCHEMA = schemathesis.openapi.from_path(DOC)


@pytest.fixture
def served(deployment: LocalDeployment) -> Iterator[str]:
    """The API handler on a loopback port, in this process (so fixtures and fakes apply to it)."""
    server = ApiServer(api_handler, api.ROUTES).start()
    try:
        yield server.url
    finally:
        server.stop()


def test_every_route_over_real_http(
    served: str, deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str
) -> None:
    sim.add_job("weaviate-export", "exp-http", [state("TRANSFERRING", objects=5)], backend="s3")
    registration = {
        "source": "weaviate-export",
        "endpoint": sim_url,
        "jobId": "exp-http",
        "backend": "s3",
        "labels": {"team": "search"},
    }
    with httpx.Client(base_url=served, timeout=10) as client:
        created = client.post("/jobs", json=registration)
        assert created.status_code == 201, created.text
        assert created.headers["content-type"] == "application/json"
        key = created.json()["key"]
        again = client.post("/jobs", json=registration)
        assert (again.status_code, again.json()) == (200, created.json())

        deployment.poll()
        page = client.get("/jobs", params=[("label", "team=search"), ("phase", "RUNNING"), ("limit", "10")])
        assert page.status_code == 200
        assert [job["key"] for job in page.json()["jobs"]] == [key]
        shown = client.get(f"/jobs/{key}")
        assert shown.status_code == 200
        assert [t["event"] for t in shown.json()["recentTransitions"]] == ["STARTED"]
        assert client.post(f"/jobs/{key}/test").status_code == 202

        watch = client.post("/watches", json={"kind": "milvus", "endpoint": sim_url})
        assert watch.status_code == 201
        assert client.get("/watches").json() == {"watches": [watch.json()]}
        assert client.delete(f"/watches/{watch.json()['id']}").status_code == 200

        assert client.delete(f"/jobs/{key}").json() == {"deleted": key}
        assert client.get(f"/jobs/{key}").status_code == 404
        malformed = client.post("/jobs", content=b"{not json", headers={"Content-Type": "application/json"})
        assert (malformed.status_code, malformed.json()["message"]) == (400, "request body is not valid JSON")
        big = client.post(
            "/jobs",
            content=b"{" + b" " * (api.MAX_BODY_BYTES + 10) + b"}",
            headers={"Content-Type": "application/json"},
        )
        assert big.status_code == 413
        assert client.get("/no/such/route").status_code == 404


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_jobwatch_api_serve_command(deployment: LocalDeployment, sim_url: str) -> None:
    """The console command itself, as a developer runs it (its environment is the deployment's)."""
    port = _free_port()
    script = Path(sys.executable).parent / "jobwatch"
    process = subprocess.Popen(
        [str(script), "api", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == f"jobwatch API listening on http://127.0.0.1:{port} (Ctrl-C stops)"
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                response = httpx.get(f"{base}/watches", timeout=5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert (response.status_code, response.json()) == (200, {"watches": []})
        body = {
            "source": "zilliz-import-v1",
            "endpoint": sim_url,
            "jobId": "job-served",
            "clusterId": "in01-x",
        }
        assert httpx.post(f"{base}/jobs", json=body, timeout=10).status_code == 201
        listed = httpx.get(f"{base}/jobs", timeout=10).json()
        assert [job["spec"]["jobId"] for job in listed["jobs"]] == ["job-served"]
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        if process.stderr is not None:
            process.stderr.close()


CHECKS: list[Any] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@SCHEMA.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_api_conforms_to_its_openapi_document(case: Any, served: str) -> None:
    case.call_and_validate(base_url=served, checks=CHECKS)


ROUTE_OPERATIONS = SCHEMA.include(path_regex=r"^/routes|^/jobs/\{key\}/routes$")
SEEDED_ROUTES = [
    {
        "name": "search-failures",
        "match": {
            "labels": [
                {"key": "team", "value": "search"},
                {"key": "region", "op": "matches", "value": "eu-.*"},
                {"key": "env", "op": "not-equals", "value": "dev"},
            ],
            "events": ["FAILED", "CANCELED"],
        },
        "destinations": [
            {"type": "email", "addresses": ["search@example.com"]},
            {"type": "eventbridge", "bus": "jobwatch-jobs"},
        ],
        "mentions": {"FAILED": ["<!here>"]},
        "continue": False,
    },
    {"name": "loud", "match": {"severities": ["error", "warning"]}, "destinations": [{"type": "email"}]},
    {
        "name": "everything",
        "destinations": [{"type": "slack-webhook", "webhookSecret": "(deployment default)"}],
    },
]


@pytest.fixture
def seeded(served: str) -> str:
    """Routes stored (one with e-mail addresses) and one tracked job; returns the job's key."""
    with httpx.Client(base_url=served, timeout=10) as client:
        assert client.put("/routes", json={"routes": SEEDED_ROUTES}).status_code == 200
        job = client.post(
            "/jobs",
            json={
                "source": "milvus-import",
                "endpoint": "https://milvus.example.com",
                "jobId": "fuzzed",
                "labels": {"team": "search", "region": "eu-west-1"},
            },
        )
        assert job.status_code == 201, job.text
        return str(job.json()["key"])


@ROUTE_OPERATIONS.parametrize()
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_route_operations_conform_against_stored_routes(case: Any, served: str, seeded: str) -> None:
    if case.path_parameters and "key" in case.path_parameters:
        case.path_parameters["key"] = seeded  # explain a job that exists, with whatever event is drawn
    case.call_and_validate(base_url=served, checks=CHECKS)
