"""The Slack sender function: one SQS batch of transitions to Slack."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from jobwatch.adapters import aws
from jobwatch.entrypoints.wiring import _remaining, job_store, secret_resolver
from jobwatch.settings import get_settings

if TYPE_CHECKING:  # the poller's cold start does not pay for the Slack side
    from jobwatch.delivery.records import BatchReport
    from jobwatch.delivery.slack_sender import DeliveryDeps


@cache
def delivery_deps() -> DeliveryDeps:
    import httpx

    from jobwatch.delivery.slack_sender import DeliveryDeps

    settings = get_settings()
    return DeliveryDeps(
        settings=settings,
        store=job_store(settings),
        secrets=secret_resolver(),
        sqs=aws.sqs(),
        http=httpx.Client(timeout=httpx.Timeout(10.0, connect=3.0), follow_redirects=False),
    )


def handle_slack_batch(event: Mapping[str, Any], context: Any) -> BatchReport:
    """One SQS batch of transitions for Slack, as run by the Slack-sender Lambda."""
    from jobwatch.delivery.slack_sender import deliver_batch

    deps = delivery_deps()
    return deliver_batch(dict(event), deps, _remaining(context), deps.settings.slack_queue_url or None)
