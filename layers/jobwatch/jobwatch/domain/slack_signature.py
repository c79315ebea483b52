"""Slack's request signature (pure): is this request from Slack, and recent?

Slack signs every request it sends to an app (interactivity included): `X-Slack-Request-Timestamp`
carries the epoch seconds at which it signed, and `X-Slack-Signature` is `v0=` followed by the hex
HMAC-SHA256, keyed with the app's signing secret, of the base string `v0:<timestamp>:<raw body>`.
The raw body is the bytes as received, never a re-encoded form. A timestamp more than five minutes
from now is refused (a captured request cannot be replayed later), and the comparison runs in
constant time (`hmac.compare_digest`) so the answer time says nothing about how much of a forged
signature was right. Refusals name their reason and nothing of the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from enum import StrEnum

VERSION = "v0"
MAX_SKEW_S = 300
"""How far (either way) a request's timestamp may be from now: Slack's documented five minutes."""
TIMESTAMP_HEADER = "x-slack-request-timestamp"
SIGNATURE_HEADER = "x-slack-signature"

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
"""ASCII digits only: `int()` would also take `+1`, ` 1`, `1_0` and other scripts' digits."""
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


class Refusal(StrEnum):
    UNSIGNED = "unsigned"
    """A signature or timestamp header is missing or empty."""
    MALFORMED = "malformed"
    """A header is not in Slack's format."""
    STALE = "stale"
    """The timestamp is more than `MAX_SKEW_S` from now."""
    FORGED = "forged"
    """The signature is not the one the signing secret gives for this timestamp and body."""


_REASONS = {
    Refusal.UNSIGNED: "request is not signed: X-Slack-Signature and X-Slack-Request-Timestamp are required",
    Refusal.MALFORMED: "signature headers are not in Slack's v0 format",
    Refusal.STALE: f"request timestamp is more than {MAX_SKEW_S} s from now",
    Refusal.FORGED: "signature does not match",
}


class SignatureRefused(Exception):
    """The request is not (provably) from Slack; `reason` says which check failed."""

    def __init__(self, reason: Refusal) -> None:
        super().__init__(_REASONS[reason])
        self.reason = reason


def base_string(timestamp: str, body: bytes) -> bytes:
    return f"{VERSION}:{timestamp}:".encode("ascii") + body


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`v0=<hex HMAC-SHA256>` of the base string: what Slack sends for this timestamp and body."""
    digest = hmac.new(secret.encode("utf-8"), base_string(timestamp, body), hashlib.sha256).hexdigest()
    return f"{VERSION}={digest}"


def verify(
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now_s: float,
    *,
    max_skew_s: float = MAX_SKEW_S,
) -> int:
    """The request's timestamp (epoch seconds) when Slack signed `body` with `secret` within
    `max_skew_s` of `now_s`; SignatureRefused naming the first check that failed otherwise."""
    if not timestamp or not signature:
        raise SignatureRefused(Refusal.UNSIGNED)
    if not secret:
        raise ValueError("no signing secret to verify with")
    if not _TIMESTAMP.fullmatch(timestamp) or not _SIGNATURE.fullmatch(signature):
        raise SignatureRefused(Refusal.MALFORMED)
    signed_at = int(timestamp)
    if abs(now_s - signed_at) > max_skew_s:
        raise SignatureRefused(Refusal.STALE)
    expected = sign(secret, timestamp, body)
    # Both sides are ASCII here (the pattern above), so the byte comparison is the header's own.
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")):
        raise SignatureRefused(Refusal.FORGED)
    return signed_at
