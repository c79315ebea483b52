"""The registration API function: wire the operations once per process, resolve one request."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from jobwatch.adapters import aws
from jobwatch.adapters.dynamodb.routes import DynamoRouteStore
from jobwatch.adapters.secrets import SecretsManagerNames
from jobwatch.adapters.sns import SnsPublisher
from jobwatch.adapters.sns_subscriptions import SnsEmailSubscriptions
from jobwatch.api import routes
from jobwatch.app.operations import Operations
from jobwatch.domain.endpoints import EndpointPolicy
from jobwatch.domain.routing import default_routes
from jobwatch.entrypoints.wiring import CLOCK, job_store, watch_store
from jobwatch.observability import Metric, MetricUnit, metrics
from jobwatch.settings import ApiSettings, SettingsError, env_name


def _check_alert_email_events(settings: ApiSettings) -> None:
    """The default routes are built from these names on every listing and explanation: a name that is
    no event stops the cold start with one line instead of failing those requests."""
    try:
        default_routes(settings.alert_email_events)
    except ValidationError as exc:
        reason = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"{env_name('alert_email_events')} is invalid: {reason}") from None


def wire(settings: ApiSettings) -> Operations:
    """Operations over the deployment's table and topics (the API reads no secret)."""
    _check_alert_email_events(settings)
    topic = settings.email_topic_arn
    return Operations(
        settings=settings,
        store=job_store(settings),
        watches=watch_store(settings),
        publisher=SnsPublisher(aws.sns(), settings.topic_arn),
        policy=EndpointPolicy.from_settings(settings),
        clock=CLOCK,
        secret_names=SecretsManagerNames(aws.secretsmanager()),
        routes=DynamoRouteStore(aws.dynamodb(), settings.table),
        email_subscriptions=SnsEmailSubscriptions(aws.sns(), topic) if topic else None,
    )


def cold_start() -> Operations:
    """Settings and adapters for this process; a missing variable stops here with one line."""
    return wire(ApiSettings.from_env())


def handle(event: dict[str, Any], context: Any, operations: Operations) -> dict[str, Any]:
    """One API Gateway proxy event through the routes, counted by outcome (4xx: a caller's mistake,
    5xx: ours)."""
    response = routes.handler(event, context, operations)
    status = int(response.get("statusCode", 500))
    metrics.add_metric(name=Metric.API_REQUESTS, unit=MetricUnit.Count, value=1)
    if 400 <= status < 500:
        metrics.add_metric(name=Metric.API_CLIENT_ERRORS, unit=MetricUnit.Count, value=1)
    elif status >= 500:
        metrics.add_metric(name=Metric.API_SERVER_ERRORS, unit=MetricUnit.Count, value=1)
    return response
