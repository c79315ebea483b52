"""The registration API function: wire the operations once per process, resolve one request."""

from __future__ import annotations

from functools import cache
from typing import Any

from jobwatch.adapters import aws
from jobwatch.adapters.dynamodb.watches import WatchStore
from jobwatch.adapters.sns import SnsPublisher
from jobwatch.api import routes
from jobwatch.app.operations import Operations
from jobwatch.domain.endpoints import EndpointPolicy
from jobwatch.entrypoints.wiring import job_store, secret_resolver
from jobwatch.settings import Settings, get_settings


def build_operations(settings: Settings) -> Operations:
    """Operations over the deployment's table, topic and secrets (clients from `adapters.aws`)."""
    return Operations(
        settings=settings,
        store=job_store(settings),
        watches=WatchStore(aws.dynamodb(), settings.table),
        publisher=SnsPublisher(aws.sns(), settings.topic_arn),
        secrets=secret_resolver(),
        policy=EndpointPolicy.from_settings(settings),
    )


@cache
def operations() -> Operations:
    return build_operations(get_settings())


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One API Gateway proxy event: the routes see this process's operations on their context."""
    return routes.handler(event, context, operations())
