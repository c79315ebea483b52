"""The API function counts its requests by outcome, so an alarm can tell callers' mistakes from ours."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

import pytest

from jobwatch.app.operations import Operations
from jobwatch.entrypoints import api
from jobwatch.observability import Metric, metrics


@pytest.fixture(autouse=True)
def _no_metrics_left() -> Iterator[None]:
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def _event(method: str, path: str, body: str | None = None) -> dict[str, Any]:
    return {
        "httpMethod": method,
        "path": path,
        "resource": path,
        "headers": {"Content-Type": "application/json"},
        "queryStringParameters": None,
        "pathParameters": None,
        "body": body,
        "isBase64Encoded": False,
        "requestContext": {"identity": {"userArn": "arn:aws:iam::123456789012:user/test"}},
    }


def _counted() -> dict[str, float]:
    return {name: sum(entry["Value"]) for name, entry in metrics.metric_set.items()}


def test_a_callers_mistake_counts_as_a_request_and_a_client_error() -> None:
    # A route that does not exist and a body that is not JSON never reach the operations.
    unused = cast(Operations, None)
    assert api.handle(_event("GET", "/nowhere"), None, unused)["statusCode"] == 404
    response = api.handle(_event("POST", "/jobs", "{not json"), None, unused)
    assert response["statusCode"] == 400, json.loads(response["body"])
    assert _counted() == {Metric.API_REQUESTS.value: 2.0, Metric.API_CLIENT_ERRORS.value: 2.0}


class _BrokenOperations:
    """Every operation fails unexpectedly (a store outage the API did not foresee)."""

    def __getattr__(self, name: str) -> Any:
        def fail(*_: Any, **__: Any) -> Any:
            raise RuntimeError(f"{name} failed")

        return fail


def test_our_failure_counts_as_a_server_error() -> None:
    response = api.handle(_event("GET", "/jobs"), None, cast(Operations, _BrokenOperations()))
    assert response["statusCode"] == 500
    assert "Traceback" not in response["body"]
    assert _counted() == {Metric.API_REQUESTS.value: 1.0, Metric.API_SERVER_ERRORS.value: 1.0}
