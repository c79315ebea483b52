"""The registration HTTP API (API Gateway REST, IAM-authorized): routes, error mapping, OpenAPI.

Powertools' resolver validates every request against the pydantic models of `jobwatch.api_models`,
and the same models produce the OpenAPI document (`python -m jobwatch.api --openapi`, committed as
docs/openapi.json), so the document cannot describe an API other than the one that runs. Handlers are
thin: they call `jobwatch.operations`, which the CLI calls too.

Errors are always JSON `{"message": ..., "errors": [{"field", "message"}]}`: malformed JSON 400,
oversized body (> 64 KiB) 413, non-JSON content type 415, schema or registration refusal 422 (one
entry per field; an unknown source lists the valid ones), unknown route or resource 404.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Annotated, Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel

from jobwatch.app.models import (
    Deleted,
    ErrorBody,
    Explanation,
    FieldProblem,
    JobList,
    JobRegistration,
    JobResource,
    RouteList,
    RoutesApply,
    RoutesDiff,
    SnoozeRequest,
    TestNotification,
    WatchList,
    WatchRegistration,
)
from jobwatch.app.operations import MAX_PAGE_SIZE, BadToken, Operations, QuietConflict, SubscriptionsFailed
from jobwatch.app.registration import RegistrationRefused, wire_path
from jobwatch.domain.model import Event, Phase, Watch
from jobwatch.domain.quiet import BadDuration, parse_duration
from jobwatch.domain.routing import ROUTE_NAME_PATTERN, Route
from jobwatch.observability import logger
from jobwatch.sources import source_names

ExcT = TypeVar("ExcT", bound=Exception)
MAX_BODY_BYTES = 64 * 1024
MAX_BODY_DEPTH = 16
"""A registration nests 3 levels (notify.events); anything much deeper is not one."""
API_VERSION = "1.0.0"
JSON = "application/json"
_JOB_KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}\.[0-9a-f]{20}$")
_WATCH_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}\.[0-9a-f]{16}$")
_ROUTE_NAME = re.compile(ROUTE_NAME_PATTERN)

ROUTES: tuple[tuple[str, str], ...] = (
    ("POST", "/jobs"),
    ("GET", "/jobs"),
    ("GET", "/jobs/{key}"),
    ("DELETE", "/jobs/{key}"),
    ("POST", "/jobs/{key}/test"),
    ("POST", "/watches"),
    ("GET", "/watches"),
    ("DELETE", "/watches/{id}"),
    ("GET", "/routes"),
    ("POST", "/routes"),
    ("PUT", "/routes"),
    ("GET", "/routes/{name}"),
    ("DELETE", "/routes/{name}"),
    ("GET", "/jobs/{key}/routes"),
    ("PUT", "/jobs/{key}/snooze"),
    ("DELETE", "/jobs/{key}/snooze"),
    ("PUT", "/jobs/{key}/mute"),
    ("DELETE", "/jobs/{key}/mute"),
)
"""Every route (method, API Gateway resource); Powertools spells `{key}` as `<key>` in the decorators."""


class ApiError(Exception):
    def __init__(self, status: int, message: str, problems: Sequence[FieldProblem] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = list(problems)


def _error(status: int, message: str, problems: Sequence[FieldProblem] = ()) -> Response[Any]:
    body = ErrorBody(message=message, errors=list(problems)).to_wire()
    return Response(status_code=status, content_type=JSON, body=body)


def _described(description: str, model: type[BaseModel]) -> OpenAPIResponse:
    return {"description": description, "content": {JSON: {"model": model}}}


_BAD_BODY = {
    400: _described("Malformed JSON", ErrorBody),
    413: _described(f"Body larger than {MAX_BODY_BYTES} bytes", ErrorBody),
    415: _described("Body is not JSON", ErrorBody),
    422: _described("Schema violation or refused registration: one entry per field", ErrorBody),
}
_INVALID = {422: _described("Invalid parameter: one entry per field", ErrorBody)}
_NOT_FOUND = {404: _described("Unknown key or id", ErrorBody), **_INVALID}
_SUBSCRIPTIONS_FAILED = {
    502: _described("Routes written, but SNS refused a change of the e-mail subscriptions", ErrorBody)
}

app = APIGatewayRestResolver(enable_validation=True)


def _ops() -> Operations:
    """The operations of this request, put on the resolver's context by the entry point."""
    operations = app.context.get("operations")
    if not isinstance(operations, Operations):
        raise RuntimeError("no Operations on the resolver context (use jobwatch.entrypoints.api.handle)")
    return operations


def _actor() -> str:
    """Who is calling, as API Gateway's IAM authorizer established it (for the audit lines)."""
    identity = app.current_event.request_context.identity
    return identity.user_arn or identity.caller or identity.source_ip or "unknown"


def _resource(status: int, model: BaseModel) -> Response[Any]:
    return Response(status_code=status, content_type=JSON, body=model.model_dump(mode="json", by_alias=True))


# -- jobs ----------------------------------------------------------------------------------------------


@app.post(
    "/jobs",
    summary="Track a job",
    description="Idempotent: registering a job that is already tracked answers 200 with the stored job.",
    responses={
        201: _described("Now tracked", JobResource),
        200: _described("Already tracked (nothing changed)", JobResource),
        **_BAD_BODY,
    },
    tags=["jobs"],
)
def track_job(registration: JobRegistration) -> Response[JobResource]:
    job, created = _ops().track(registration, _actor())
    return _resource(HTTPStatus.CREATED if created else HTTPStatus.OK, job)


@app.get(
    "/jobs",
    summary="List tracked jobs",
    description="Oldest first. Filters combine (AND); `label` may repeat. Page with `limit` and `nextToken`.",
    responses={200: _described("One page of jobs", JobList), **_INVALID},
    tags=["jobs"],
)
def list_jobs(
    phase: Annotated[Phase | None, Query(description="Only jobs currently in this phase")] = None,
    source: Annotated[str | None, Query(description="Only jobs of this source", max_length=64)] = None,
    label: Annotated[list[str] | None, Query(description="`key=value`; repeat for several")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")] = 50,
    next_token: Annotated[
        str | None, Query(alias="nextToken", max_length=1024, description="From the previous page")
    ] = None,
) -> Response[JobList]:
    if source is not None and source not in source_names():
        raise RegistrationRefused(
            f"unknown source {source!r}",
            field="source",
            detail=f"unknown source {source!r}; valid sources: {', '.join(source_names())}",
        )
    page = _ops().list_jobs(
        phase=phase, source=source, labels=label or [], limit=limit, next_token=next_token
    )
    return _resource(HTTPStatus.OK, page)


def _job_key(key: str) -> str:
    if not _JOB_KEY.match(key):  # cannot be a key this API issued: no need to ask DynamoDB
        raise ApiError(HTTPStatus.NOT_FOUND, f"no tracked job {key!r}")
    return key


@app.get(
    "/jobs/<key>",
    summary="One tracked job with its recent transitions",
    responses={200: _described("The job", JobResource), **_NOT_FOUND},
    tags=["jobs"],
)
def show_job(key: Annotated[str, Path(description="Job key", max_length=200)]) -> Response[JobResource]:
    job = _ops().show(_job_key(key))
    if job is None:
        raise ApiError(HTTPStatus.NOT_FOUND, f"no tracked job {key!r}")
    return _resource(HTTPStatus.OK, job)


@app.delete(
    "/jobs/<key>",
    summary="Stop tracking a job",
    responses={200: _described("No longer tracked", Deleted), **_NOT_FOUND},
    tags=["jobs"],
)
def untrack_job(key: Annotated[str, Path(description="Job key", max_length=200)]) -> Response[Deleted]:
    if not _ops().untrack(_job_key(key), _actor()):
        raise ApiError(HTTPStatus.NOT_FOUND, f"no tracked job {key!r}")
    return _resource(HTTPStatus.OK, Deleted(deleted=key))


@app.post(
    "/jobs/<key>/test",
    summary="Send a test notification",
    description="Publishes a transition marked TEST (event `TEST`, severity info) through SNS to the job's "
    "channels. Nothing is stored and the job is not changed.",
    responses={
        202: _described("Published", TestNotification),
        **_NOT_FOUND,
        502: _described("SNS refused the publish", ErrorBody),
    },
    tags=["jobs"],
)
def test_job(key: Annotated[str, Path(description="Job key", max_length=200)]) -> Response[TestNotification]:
    operations = _ops()
    try:
        sent = operations.send_test(_job_key(key))
    except ApiError:
        raise
    except Exception as exc:
        logger.exception("test notification not published", extra={"jobKey": key})
        raise ApiError(HTTPStatus.BAD_GATEWAY, f"could not publish: {type(exc).__name__}") from None
    if sent is None:
        raise ApiError(HTTPStatus.NOT_FOUND, f"no tracked job {key!r}")
    return _resource(HTTPStatus.ACCEPTED, sent)


_QUIET_RESPONSES: dict[int, OpenAPIResponse] = {
    200: _described("The job, with its `quiet` state", JobResource),
    **_NOT_FOUND,
    409: _described("The job kept changing while being written; try again", ErrorBody),
}


def _quieted(changed: JobResource | None, key: str) -> Response[JobResource]:
    if changed is None:
        raise ApiError(HTTPStatus.NOT_FOUND, f"no tracked job {key!r}")
    return _resource(HTTPStatus.OK, changed)


@app.put(
    "/jobs/<key>/snooze",
    summary="Snooze a job: only urgent events for a while",
    description="Until the time given, only FAILED, LOST and AUTH_FAILED are published for this job; the "
    "rest is counted as `suppressed`, and its state is kept up to date. A new snooze replaces the old.",
    responses={**_QUIET_RESPONSES, **_BAD_BODY},
    tags=["jobs"],
)
def snooze_job(
    key: Annotated[str, Path(description="Job key", max_length=200)], request: SnoozeRequest
) -> Response[JobResource]:
    try:
        seconds = parse_duration(request.for_)
    except BadDuration as exc:
        raise ApiError(
            HTTPStatus.UNPROCESSABLE_ENTITY, str(exc), [FieldProblem(field="for", message=str(exc))]
        ) from None
    return _quieted(_ops().snooze(_job_key(key), seconds, _actor()), key)


@app.delete(
    "/jobs/<key>/snooze",
    summary="End a job's snooze",
    responses=_QUIET_RESPONSES,
    tags=["jobs"],
)
def unsnooze_job(key: Annotated[str, Path(description="Job key", max_length=200)]) -> Response[JobResource]:
    return _quieted(_ops().unsnooze(_job_key(key), _actor()), key)


@app.put(
    "/jobs/<key>/mute",
    summary="Mute a job: nothing is published for it",
    description="Nothing, not even FAILED, is published until it is unmuted; its state is kept up to date.",
    responses=_QUIET_RESPONSES,
    tags=["jobs"],
)
def mute_job(key: Annotated[str, Path(description="Job key", max_length=200)]) -> Response[JobResource]:
    return _quieted(_ops().mute(_job_key(key), _actor()), key)


@app.delete(
    "/jobs/<key>/mute",
    summary="Unmute a job",
    responses=_QUIET_RESPONSES,
    tags=["jobs"],
)
def unmute_job(key: Annotated[str, Path(description="Job key", max_length=200)]) -> Response[JobResource]:
    return _quieted(_ops().unmute(_job_key(key), _actor()), key)


# -- watches -------------------------------------------------------------------------------------------


@app.post(
    "/watches",
    summary="Watch a cluster or backup backend",
    description="Each poll cycle lists the watched place and starts tracking jobs it has not seen, with the "
    "watch's labels, secret and notification settings. Jobs that had already ended before the watch are "
    "recorded but never notified. Idempotent like `POST /jobs`.",
    responses={
        201: _described("Now watched", Watch),
        200: _described("Already watched (nothing changed)", Watch),
        **_BAD_BODY,
    },
    tags=["watches"],
)
def add_watch(registration: WatchRegistration) -> Response[Watch]:
    watch, created = _ops().add_watch(registration, _actor())
    return _resource(HTTPStatus.CREATED if created else HTTPStatus.OK, watch)


@app.get(
    "/watches",
    summary="List watches",
    responses={200: _described("Every watch", WatchList), **_INVALID},
    tags=["watches"],
)
def list_watches() -> Response[WatchList]:
    return _resource(HTTPStatus.OK, _ops().list_watches())


@app.delete(
    "/watches/<id>",
    summary="Remove a watch",
    description="Jobs the watch discovered stay tracked.",
    responses={200: _described("Removed", Deleted), **_NOT_FOUND},
    tags=["watches"],
)
def remove_watch(id: Annotated[str, Path(description="Watch id", max_length=200)]) -> Response[Deleted]:
    if not _WATCH_ID.match(id) or not _ops().remove_watch(id, _actor()):
        raise ApiError(HTTPStatus.NOT_FOUND, f"no watch {id!r}")
    return _resource(HTTPStatus.OK, Deleted(deleted=id))


# -- routes --------------------------------------------------------------------------------------------


def _allow_missing() -> Any:
    """The `allowMissingSecret` query parameter (a fresh instance for each route that takes it)."""
    return Query(
        alias="allowMissingSecret",
        description="Accept destination secrets that do not exist yet (refused otherwise: a typo would make "
        "every delivery fail). Deliveries fail until they exist.",
    )


@app.get(
    "/routes",
    summary="List routes",
    description="In evaluation order. With no route stored, `defaults` shows the deployment's default "
    "routes, which apply then.",
    responses={200: _described("The stored routes", RouteList), **_INVALID},
    tags=["routes"],
)
def list_routes() -> Response[RouteList]:
    return _resource(HTTPStatus.OK, _ops().list_routes())


@app.post(
    "/routes",
    summary="Create or replace one route",
    description="A route without `position` keeps its place, or goes last when new. Webhook URLs must "
    "pass the endpoint rules and destination secrets must exist. E-mail addresses are subscribed to the "
    "alert e-mail topic with a filter on the destination (each confirms once).",
    responses={
        201: _described("Created", Route),
        200: _described("Replaced", Route),
        **_BAD_BODY,
        **_SUBSCRIPTIONS_FAILED,
    },
    tags=["routes"],
)
def put_route(
    route: Route, allow_missing_secret: Annotated[bool, _allow_missing()] = False
) -> Response[Route]:
    stored, created, _ = _ops().put_route(route, _actor(), allow_missing_secret=allow_missing_secret)
    return _resource(HTTPStatus.CREATED if created else HTTPStatus.OK, stored)


@app.put(
    "/routes",
    summary="Apply a whole set of routes",
    description="The stored routes become exactly `routes` (position = place in the list): routes not in the "
    "list are removed. Idempotent: applying the same set again changes nothing. `dryRun=true` answers the "
    "same diff and writes nothing. A set with any invalid route is refused whole (422, nothing written).",
    responses={
        200: _described("What changed (or would change)", RoutesDiff),
        **_BAD_BODY,
        **_SUBSCRIPTIONS_FAILED,
    },
    tags=["routes"],
)
def apply_routes(
    body: RoutesApply,
    dry_run: Annotated[bool, Query(alias="dryRun", description="Answer the diff, write nothing")] = False,
    allow_missing_secret: Annotated[bool, _allow_missing()] = False,
) -> Response[RoutesDiff]:
    diff = _ops().apply_routes(
        body, dry_run=dry_run, actor=_actor(), allow_missing_secret=allow_missing_secret
    )
    return _resource(HTTPStatus.OK, diff)


def _route_name(name: str) -> str:
    if not _ROUTE_NAME.match(name):  # cannot be a stored route's name
        raise ApiError(HTTPStatus.NOT_FOUND, f"no route {name!r}")
    return name


@app.get(
    "/routes/<name>",
    summary="One route",
    responses={200: _described("The route", Route), **_NOT_FOUND},
    tags=["routes"],
)
def show_route(name: Annotated[str, Path(description="Route name", max_length=200)]) -> Response[Route]:
    route = _ops().show_route(_route_name(name))
    if route is None:
        raise ApiError(HTTPStatus.NOT_FOUND, f"no route {name!r}")
    return _resource(HTTPStatus.OK, route)


@app.delete(
    "/routes/<name>",
    summary="Remove a route",
    description="E-mail addresses no remaining route names are unsubscribed.",
    responses={200: _described("Removed", Deleted), **_NOT_FOUND, **_SUBSCRIPTIONS_FAILED},
    tags=["routes"],
)
def remove_route(name: Annotated[str, Path(description="Route name", max_length=200)]) -> Response[Deleted]:
    if not _ops().remove_route(_route_name(name), _actor()):
        raise ApiError(HTTPStatus.NOT_FOUND, f"no route {name!r}")
    return _resource(HTTPStatus.OK, Deleted(deleted=name))


@app.get(
    "/jobs/<key>/routes",
    summary="Where a transition of this job would go",
    description="Evaluates the routes in force (the stored ones, or the deployment's defaults when none is "
    "stored) for a transition of the job to `event`: each route's verdict with its reasons, and the "
    "deliveries (one per destination, with the routes and mentions that lead there). Nothing is sent.",
    responses={200: _described("The explanation", Explanation), **_NOT_FOUND},
    tags=["routes"],
)
def explain_routes(
    key: Annotated[str, Path(description="Job key", max_length=200)],
    event: Annotated[Event, Query(description="The transition's event")],
) -> Response[Explanation]:
    explanation = _ops().explain(_job_key(key), event)
    if explanation is None:
        raise ApiError(HTTPStatus.NOT_FOUND, f"no tracked job {key!r}")
    return _resource(HTTPStatus.OK, explanation)


# -- errors --------------------------------------------------------------------------------------------

ErrorHandler = Callable[[ExcT], Response[Any]]


def _handles(kind: type[ExcT]) -> Callable[[ErrorHandler[ExcT]], ErrorHandler[ExcT]]:
    """`app.exception_handler`, typed (Powertools' decorator is not)."""

    def register(function: ErrorHandler[ExcT]) -> ErrorHandler[ExcT]:
        app.exception_handler(kind)(function)
        return function

    return register


def _field(loc: Sequence[Any]) -> str:
    """`body.jobId` -> `jobId` (`body.routes.0.destinations.1.webhook.url` -> `routes.0.destinations.1.url`:
    without the destination type pydantic adds); query and path parameters keep their location."""
    parts = list(loc)
    if parts and parts[0] == "body":
        return wire_path(parts[1:])
    return ".".join(str(part) for part in parts) or "request"


@_handles(RequestValidationError)
def _invalid(exc: RequestValidationError) -> Response[Any]:
    errors = exc.errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        reason = next(
            str(e.get("ctx", {}).get("error", "")) for e in errors if e.get("type") == "json_invalid"
        )
        return _error(
            HTTPStatus.BAD_REQUEST,
            "request body is not valid JSON",
            [FieldProblem(field="body", message=reason)],
        )
    problems = []
    for error in errors:
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(FieldProblem(field=_field(error.get("loc", ())), message=message))
    return _error(HTTPStatus.UNPROCESSABLE_ENTITY, "request does not match the schema", problems)


@_handles(RegistrationRefused)
def _refused(exc: RegistrationRefused) -> Response[Any]:
    return _error(HTTPStatus.UNPROCESSABLE_ENTITY, f"refused, nothing written: {exc}", exc.problems())


@_handles(BadToken)
def _bad_token(exc: BadToken) -> Response[Any]:
    return _error(
        HTTPStatus.UNPROCESSABLE_ENTITY, str(exc), [FieldProblem(field="query.nextToken", message=str(exc))]
    )


@_handles(QuietConflict)
def _quiet_conflict(exc: QuietConflict) -> Response[Any]:
    return _error(HTTPStatus.CONFLICT, str(exc))


@_handles(SubscriptionsFailed)
def _subscriptions_failed(exc: SubscriptionsFailed) -> Response[Any]:
    return _error(HTTPStatus.BAD_GATEWAY, str(exc))


@_handles(ApiError)
def _api_error(exc: ApiError) -> Response[Any]:
    return _error(exc.status, exc.message, exc.problems)


@_handles(Exception)
def _crash(exc: Exception) -> Response[Any]:
    logger.exception("unhandled error in the API")
    return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")


@app.not_found
def _no_route(exc: Exception) -> Response[Any]:
    event = app.current_event
    return _error(HTTPStatus.NOT_FOUND, f"no route {event.http_method} {event.path}")


# -- entry point ---------------------------------------------------------------------------------------


def _header(event: Mapping[str, Any], name: str) -> str | None:
    for source in (event.get("headers") or {}, event.get("multiValueHeaders") or {}):
        for key, value in source.items():
            if key.lower() == name:
                return str(value[0] if isinstance(value, list) and value else value)
    return None


def _plain(status: int, message: str, problems: Sequence[FieldProblem] = ()) -> dict[str, Any]:
    """A REST proxy response built without the resolver (for checks that must run before routing)."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": JSON},
        "body": json.dumps(ErrorBody(message=message, errors=list(problems)).to_wire()),
        "isBase64Encoded": False,
    }


def _precheck(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """Body size, encoding and content type, checked before the resolver parses anything."""
    body = event.get("body")
    if not body:
        return None
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(str(body), validate=True)
        except (binascii.Error, ValueError):
            return _plain(HTTPStatus.BAD_REQUEST, "body is not valid base64")
    else:
        raw = str(body).encode("utf-8", "surrogatepass")
    if len(raw) > MAX_BODY_BYTES:
        return _plain(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return _plain(
            HTTPStatus.BAD_REQUEST, "body is not UTF-8", [FieldProblem(field="body", message="not UTF-8")]
        )
    content_type = (_header(event, "content-type") or JSON).split(";", 1)[0].strip().lower()
    if content_type != JSON and not content_type.endswith("+json"):
        return _plain(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, f"content type {content_type!r} is not {JSON}")
    if _too_deep(raw):
        problem = FieldProblem(field="body", message=f"JSON nests deeper than {MAX_BODY_DEPTH} levels")
        return _plain(HTTPStatus.BAD_REQUEST, "request body nests too deeply", [problem])
    return None


def _too_deep(raw: bytes) -> bool:
    """True when the body is JSON nested deeper than any registration needs (or than the parser
    survives: a 10,000-deep body used to end in RecursionError and HTTP 500). Malformed JSON is
    left to the resolver, which answers 400 naming the error."""
    try:
        value = json.loads(raw)
    except RecursionError:
        return True
    except ValueError:
        return False
    level: list[tuple[object, int]] = [(value, 1)]
    while level:
        node, depth = level.pop()
        if depth > MAX_BODY_DEPTH:
            return True
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        level.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def handler(event: dict[str, Any], context: Any, operations: Operations) -> dict[str, Any]:
    """One proxy event through the routes, which reach the stores only through `operations`."""
    early = _precheck(event)
    if early is not None:
        return early
    app.context["operations"] = operations  # cleared by the resolver after this request
    response: dict[str, Any] = app.resolve(event, context)
    return response


def openapi_json() -> str:
    """The OpenAPI document of this API, exactly as committed in docs/openapi.json."""
    document = app.get_openapi_json_schema(
        title="jobwatch registration API",
        version=API_VERSION,
        description="Register long-running vector-database jobs and watches with jobwatch. Every route needs "
        "AWS Signature Version 4 (API Gateway IAM authorization).",
        security_schemes={
            "sigv4": APIKey(
                name="Authorization",
                in_=APIKeyIn.header,
                description="AWS SigV4-signed request (execute-api:Invoke)",
                **{"x-amazon-apigateway-authtype": "awsSigv4"},
            )
        },
        security=[{"sigv4": []}],
    )
    return json.dumps(json.loads(document), indent=2, sort_keys=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["--openapi"]:
        print("usage: python -m jobwatch.api --openapi", file=sys.stderr)
        return 2
    sys.stdout.write(openapi_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
