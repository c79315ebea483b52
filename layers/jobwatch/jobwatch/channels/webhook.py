"""Signed webhooks: the transition event POSTed to an HTTPS endpoint, signed (docs/webhooks.md).

The body is the versioned transition event (`jobwatch.transition/v1`) as compact JSON, and exactly
those bytes are signed: `X-Jobwatch-Signature: v1=<hex HMAC-SHA256(key, "<timestamp>." + body)>`,
with the Unix time of this attempt in `X-Jobwatch-Timestamp` (a retry is signed afresh, so a
receiver may refuse timestamps older than a few minutes). The key is the value of the destination's
signing secret in Secrets Manager; an unreadable secret blocks the batch for a minute.

Answers: 2xx delivered; 429 rate limited (`Retry-After` honoured); 408, 5xx, timeouts, connection
errors and refusals by the endpoint rules (a host that now resolves to an internal address) are
retried with backoff; any other 4xx means the endpoint refuses this request for good, and a 3xx is
never followed (a vetted URL must not bounce us elsewhere), so both are dead-lettered with the
status. The channel is ordered per job: webhooks are often consumed by state machines (a ticket, a
pipeline step), which must not see a job's SUCCEEDED before its STARTED.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx

from jobwatch.channels.base import (
    DELIVERED,
    ChannelLimits,
    ChannelTuning,
    Notice,
    SendOutcome,
    SendResult,
)
from jobwatch.domain.routing import WebhookDestination
from jobwatch.domain.text import clean_text
from jobwatch.ports import Secrets, SecretUnavailableError

SIGNATURE_VERSION = "v1"
TIMESTAMP_HEADER = "X-Jobwatch-Timestamp"
SIGNATURE_HEADER = "X-Jobwatch-Signature"
TRANSITION_ID_HEADER = "X-Jobwatch-Transition-Id"
EVENT_HEADER = "X-Jobwatch-Event"
CONTENT_TYPE = "application/json"

CLAIM_LEASE_S = 60.0
"""Longer than one post can take (the poster's total deadline is 10 s)."""
SECRET_PAUSE_S = 60.0
"""An unreadable signing secret pauses the batch this long (and counts as a failed attempt)."""
RETRIED_CLIENT_ERRORS = frozenset({408})
"""4xx answers that say "not now" rather than "never" (429 is a rate limit of its own)."""


class Poster(Protocol):
    """Sends one POST and returns the answer; raises `httpx.HTTPError` when there is none (timeout,
    connection error, refused by the endpoint rules). `jobwatch.adapters.http.webhook_client`."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> httpx.Response: ...


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """What is sent for one transition; the timestamp and signature are added per attempt."""

    transition_id: str
    event: str
    body: bytes


def event_body(wire: Mapping[str, Any]) -> bytes:
    """The event as compact UTF-8 JSON: the exact bytes that are signed and sent."""
    text = json.dumps(wire, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8", "replace")  # a lone surrogate from upstream becomes `?`


def signature(key: bytes, timestamp: int, body: bytes) -> str:
    """`v1=<hex HMAC-SHA256(key, "<timestamp>." + body)>`."""
    digest = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def signed_headers(request: WebhookRequest, key: bytes, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": CONTENT_TYPE,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(key, timestamp, request.body),
        TRANSITION_ID_HEADER: request.transition_id,
        EVENT_HEADER: request.event,
    }


def retry_after_s(value: str | None, now_s: float) -> float | None:
    """`Retry-After` in seconds: a number of seconds or an HTTP date (None when absent or garbled)."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now_s
        except (TypeError, ValueError, OverflowError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def classify_status(response: httpx.Response, now_s: float) -> SendResult:
    """What an answer means: delivered, rate limited, refused for good, or worth another try."""
    status = response.status_code
    if 200 <= status < 300:
        return DELIVERED
    detail = f"HTTP {status}: {clean_text(response.text, 200)}"
    if status == 429:
        return SendResult(
            SendOutcome.RATE_LIMITED, detail, retry_after_s(response.headers.get("retry-after"), now_s)
        )
    if 300 <= status < 400:
        return SendResult(SendOutcome.PERMANENT, f"{detail} (redirects are never followed)")
    if 400 <= status < 500 and status not in RETRIED_CLIENT_ERRORS:
        return SendResult(SendOutcome.PERMANENT, detail)
    return SendResult(SendOutcome.RETRY, detail)


def _header_safe(value: str) -> bool:
    return value.isascii() and value.isprintable() and value == value.strip()


class WebhookChannel:
    def __init__(
        self,
        destination: WebhookDestination,
        secrets: Secrets,
        poster: Poster,
        tuning: ChannelTuning,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._url = destination.url
        self._secret_name = destination.signing_secret
        self._secrets = secrets
        self._poster = poster
        self._clock = clock
        self.limits = ChannelLimits(
            name=destination.id,
            metric_prefix="Webhook",
            max_retry_after_s=tuning.max_retry_after_s,
            max_attempts=tuning.max_attempts,
            retry_base_s=tuning.retry_base_s,
            claim_lease_s=CLAIM_LEASE_S,
            ordered=True,
            order_wait_s=tuning.order_wait_s,
            order_retry_s=tuning.order_retry_s,
        )

    def render(self, notice: Notice) -> WebhookRequest:
        t = notice.transition
        return WebhookRequest(transition_id=t.transition_id, event=str(t.event), body=event_body(t.to_wire()))

    def problems(self, payload: WebhookRequest) -> list[str]:
        return [
            f"{name} {value!r} cannot be sent as a header"
            for name, value in ((TRANSITION_ID_HEADER, payload.transition_id), (EVENT_HEADER, payload.event))
            if not _header_safe(value)
        ]

    def send(self, payload: WebhookRequest) -> SendResult:
        try:
            key = self._secrets.get(self._secret_name)
        except SecretUnavailableError as exc:
            return SendResult(SendOutcome.BLOCKED, f"signing secret unavailable: {exc}", SECRET_PAUSE_S)
        now = self._clock()
        headers = signed_headers(payload, key.encode("utf-8"), int(now))
        try:
            response = self._poster.post(self._url, payload.body, headers)
        except httpx.HTTPError as exc:
            return SendResult(SendOutcome.RETRY, f"no answer: {type(exc).__name__}: {exc}"[:300])
        return classify_status(response, now)
