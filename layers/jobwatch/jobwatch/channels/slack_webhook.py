"""Slack through an incoming webhook: Block Kit within Slack's limits, about one message a second.

A webhook can only post (no threads, no edits: the Slack app destination does those, D35).
Its answers: 2xx delivered; 429 rate limited with
`Retry-After`; 400/403/404/410 mean the webhook is wrong or revoked (refused for good, alarm);
anything else, or no answer, is retried with backoff. The webhook URL is a secret: read from Secrets
Manager by name, cached for the process, never logged.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from jobwatch.channels.base import DELIVERED, ChannelLimits, ChannelTuning, Notice, SendOutcome, SendResult
from jobwatch.ports import Secrets, SecretUnavailableError
from jobwatch.render.slack_blocks import render_payload, validate_payload

CLAIM_LEASE_S = 120.0
SECRET_PAUSE_S = 60.0
"""An unreadable webhook secret pauses the batch this long (and counts as a failed attempt)."""


def _retry_after(response: httpx.Response) -> float | None:
    header = response.headers.get("retry-after")
    if header is None:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        return None


class SlackWebhookChannel:
    permanent_statuses: ClassVar[frozenset[int]] = frozenset({400, 403, 404, 410})

    def __init__(
        self,
        destination_id: str,
        secret_name: str,
        secrets: Secrets,
        http: httpx.Client,
        tuning: ChannelTuning,
    ) -> None:
        self._secret_name = secret_name
        self._secrets = secrets
        self._http = http
        self._webhook: str | None = None
        self.limits = ChannelLimits(
            name=destination_id,
            metric_prefix="Slack",
            min_interval_s=tuning.min_interval_s,
            max_retry_after_s=tuning.max_retry_after_s,
            max_attempts=tuning.max_attempts,
            retry_base_s=tuning.retry_base_s,
            claim_lease_s=CLAIM_LEASE_S,
            ordered=True,
            order_wait_s=tuning.order_wait_s,
            order_retry_s=tuning.order_retry_s,
        )

    def close(self) -> None:
        """Close the HTTP client (local runs that rebuild their wiring)."""
        self._http.close()

    def render(self, notice: Notice) -> dict[str, Any]:
        return render_payload(notice.transition, notice.mentions)

    def problems(self, payload: dict[str, Any]) -> list[str]:
        return validate_payload(payload)

    def send(self, payload: dict[str, Any]) -> SendResult:
        try:
            webhook = self._webhook or self._secrets.get(self._secret_name)
        except SecretUnavailableError as exc:
            return SendResult(SendOutcome.BLOCKED, f"webhook secret unavailable: {exc}", SECRET_PAUSE_S)
        self._webhook = webhook
        try:
            response = self._http.post(webhook, json=payload)
        except httpx.HTTPError as exc:
            return SendResult(SendOutcome.RETRY, f"no answer: {type(exc).__name__}: {exc}")
        status = response.status_code
        if 200 <= status < 300:
            return DELIVERED
        detail = f"HTTP {status}: {response.text[:200]}"
        if status == 429:
            return SendResult(SendOutcome.RATE_LIMITED, detail, _retry_after(response))
        if status in self.permanent_statuses:
            return SendResult(SendOutcome.PERMANENT, detail)
        return SendResult(SendOutcome.RETRY, detail)
