"""The committed OpenAPI document is exactly what the code generates, and says what the API does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jobwatch_tools.api_server import build_event

from jobwatch.api.routes import MAX_BODY_BYTES, ROUTES, openapi_json

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    data = json.loads(DOC.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_committed_document_is_not_stale() -> None:
    assert DOC.read_text(encoding="utf-8") == openapi_json(), (
        "docs/openapi.json is stale: run `make openapi` (python -m jobwatch.api --openapi)"
    )


def test_every_route_is_documented_and_nothing_else(document: dict[str, Any]) -> None:
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert documented == set(ROUTES)


def test_every_operation_requires_sigv4(document: dict[str, Any]) -> None:
    assert document["security"] == [{"sigv4": []}]
    scheme = document["components"]["securitySchemes"]["sigv4"]
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"


def test_error_responses_use_the_error_body(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)


def test_registration_operations_document_every_error_class(document: dict[str, Any]) -> None:
    for path in ("/jobs", "/watches"):
        responses = document["paths"][path]["post"]["responses"]
        assert set(responses) == {"200", "201", "400", "413", "415", "422"}
        assert str(MAX_BODY_BYTES) in responses["413"]["description"]


def test_registration_schema_lists_sources_events_and_watch_kinds(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    registration = schemas["JobRegistration"]
    assert set(registration["required"]) == {"source", "endpoint", "jobId"}
    assert registration["additionalProperties"] is False
    assert "zilliz-import-v1" in registration["properties"]["source"]["enum"]
    events = schemas["NotifyRequest"]["properties"]["events"]["anyOf"][0]["items"]["enum"]
    assert {"FAILED", "STALLED", "TEST"} <= set(events)
    assert schemas["WatchRegistration"]["properties"]["kind"]["enum"] == [
        "zilliz-cloud-v1",
        "zilliz-cloud-v2",
        "milvus",
        "weaviate-backups",
    ]


def test_local_events_resolve_route_templates() -> None:
    event = build_event("DELETE", "/watches/milvus.0123456789abcdef", [], b"", ROUTES)
    assert (event["resource"], event["pathParameters"]) == (
        "/watches/{id}",
        {"id": "milvus.0123456789abcdef"},
    )
    event = build_event("PUT", "/jobs?label=a%3Db&label=c", [("Content-Type", "text/plain")], b"\xff", ROUTES)
    assert event["resource"] == "/jobs"
    assert event["multiValueQueryStringParameters"] == {"label": ["a=b", "c"]}
    assert event["isBase64Encoded"] is True and event["body"] == "/w=="


def test_route_operations_document_their_bodies_and_error_classes(document: dict[str, Any]) -> None:
    paths = document["paths"]
    for method in ("post", "put"):
        assert {"400", "413", "415", "422", "502"} <= set(paths["/routes"][method]["responses"])
    assert set(paths["/routes"]["post"]["responses"]) >= {"200", "201"}
    assert [p["name"] for p in paths["/routes"]["put"]["parameters"]] == ["dryRun", "allowMissingSecret"]
    (event,) = [p for p in paths["/jobs/{key}/routes"]["get"]["parameters"] if p["in"] == "query"]
    assert (event["name"], event["required"]) == ("event", True)
    schemas = document["components"]["schemas"]
    route = schemas["Route"]
    assert route["additionalProperties"] is False  # a typo in a routes file must not match everything
    assert set(route["required"]) == {"name", "destinations"}
    destinations = route["properties"]["destinations"]["items"]
    assert destinations["discriminator"]["propertyName"] == "type"
    assert set(destinations["discriminator"]["mapping"]) == {
        "slack-app",
        "slack-webhook",
        "email",
        "eventbridge",
        "webhook",
    }
    assert schemas["RoutesApply"]["properties"]["routes"]["maxItems"] == 100
