"""The e-mail sender function: one SQS batch of alert e-mail events."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from jobwatch.adapters import aws
from jobwatch.entrypoints.wiring import _remaining, job_store
from jobwatch.settings import get_settings

if TYPE_CHECKING:  # the poller's cold start does not pay for the Slack side
    from jobwatch.delivery.email_sender import EmailDeps
    from jobwatch.delivery.records import BatchReport


@cache
def email_deps() -> EmailDeps:
    from jobwatch.adapters.sns import SnsEmailPublisher
    from jobwatch.delivery.email_sender import EmailDeps

    settings = get_settings()
    return EmailDeps(
        store=job_store(settings),
        publisher=SnsEmailPublisher(aws.sns(), settings.email_topic_arn),
        sqs=aws.sqs(),
        dlq_url=settings.email_dlq_url,
    )


def handle_email_batch(event: Mapping[str, Any], context: Any) -> BatchReport:
    """One SQS batch of e-mail events, as run by the e-mail-sender Lambda."""
    from jobwatch.delivery.email_sender import deliver_email_batch

    queue_url = get_settings().email_queue_url or None
    return deliver_email_batch(dict(event), email_deps(), queue_url, _remaining(context))
