"""Alert e-mail: each routed transition published once to the alert e-mail topic, where addresses
subscribe. The publish carries the destination's id as the `destination` attribute: a route's
addresses subscribe with a filter on it, the deployment's standing subscribers on `email`.

The text comes from `render.email`; the SNS request (subject, body, the same filterable
attributes as the transitions topic) from `adapters.sns_message`. Any publish failure is retried with
backoff: SNS errors are throttling or outages, and nothing SNS says makes an e-mail permanently wrong.
"""

from __future__ import annotations

from jobwatch.channels.base import DELIVERED, ChannelLimits, Notice, SendOutcome, SendResult
from jobwatch.domain.model import Transition
from jobwatch.ports import EmailPublisher

CLAIM_LEASE_S = 60.0
"""Longer than one publish can take; a sender that died holding a claim gives way after this."""


class EmailChannel:
    def __init__(
        self, destination_id: str, publisher: EmailPublisher, max_attempts: int, retry_base_s: float
    ) -> None:
        self._destination = destination_id
        self._publisher = publisher
        self.limits = ChannelLimits(
            name=destination_id,
            metric_prefix="Email",
            max_attempts=max_attempts,
            retry_base_s=retry_base_s,
            claim_lease_s=CLAIM_LEASE_S,
        )

    def render(self, notice: Notice) -> Transition:
        """The SNS e-mail publisher renders subject and body itself (`adapters.sns_message`)."""
        return notice.transition

    def problems(self, payload: Transition) -> list[str]:
        return []  # subject and body are capped by construction

    def send(self, payload: Transition) -> SendResult:
        try:
            self._publisher.publish_email(payload, self._destination)
        except Exception as exc:
            return SendResult(SendOutcome.RETRY, repr(exc)[:300])
        return DELIVERED
