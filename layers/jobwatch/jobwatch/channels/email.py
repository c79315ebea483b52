"""Alert e-mail: each routed transition published once to the alert e-mail topic, where addresses
subscribe. The text comes from `render.email`; the SNS request (subject, body, the same filterable
attributes as the transitions topic) from `adapters.sns_message`. Any publish failure is retried with
backoff: SNS errors are throttling or outages, and nothing SNS says makes an e-mail permanently wrong.
"""

from __future__ import annotations

from jobwatch.channels.base import DELIVERED, ChannelLimits, Notice, SendOutcome, SendResult
from jobwatch.domain.model import Transition
from jobwatch.ports import EmailPublisher
from jobwatch.settings import EmailSenderSettings

CLAIM_LEASE_S = 60.0
"""Longer than one publish can take; a sender that died holding a claim gives way after this."""


class EmailChannel:
    def __init__(self, settings: EmailSenderSettings, publisher: EmailPublisher) -> None:
        self._publisher = publisher
        self.limits = ChannelLimits(
            name="email",
            metric_prefix="Email",
            max_attempts=settings.email_max_attempts,
            retry_base_s=settings.email_retry_base_s,
            claim_lease_s=CLAIM_LEASE_S,
        )

    def render(self, notice: Notice) -> Transition:
        """The SNS e-mail publisher renders subject and body itself (`adapters.sns_message`)."""
        return notice.transition

    def problems(self, payload: Transition) -> list[str]:
        return []  # subject and body are capped by construction

    def send(self, payload: Transition) -> SendResult:
        try:
            self._publisher.publish_email(payload)
        except Exception as exc:
            return SendResult(SendOutcome.RETRY, repr(exc)[:300])
        return DELIVERED
