"""The registration API function: wire the operations once per process, resolve one request."""

from __future__ import annotations

from typing import Any

from jobwatch.adapters import aws
from jobwatch.adapters.sns import SnsPublisher
from jobwatch.api import routes
from jobwatch.app.operations import Operations
from jobwatch.domain.endpoints import EndpointPolicy
from jobwatch.entrypoints.wiring import CLOCK, job_store, watch_store
from jobwatch.settings import ApiSettings


def wire(settings: ApiSettings) -> Operations:
    """Operations over the deployment's table and topic (the API reads no secret)."""
    return Operations(
        settings=settings,
        store=job_store(settings),
        watches=watch_store(settings),
        publisher=SnsPublisher(aws.sns(), settings.topic_arn),
        policy=EndpointPolicy.from_settings(settings),
        clock=CLOCK,
    )


def cold_start() -> Operations:
    """Settings and adapters for this process; a missing variable stops here with one line."""
    return wire(ApiSettings.from_env())


def handle(event: dict[str, Any], context: Any, operations: Operations) -> dict[str, Any]:
    """One API Gateway proxy event through the routes."""
    return routes.handler(event, context, operations)
