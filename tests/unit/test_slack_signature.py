"""Slack's request signature (`domain.slack_signature`), checked against vectors computed outside the code.

Every expected signature below was computed once with `openssl dgst -sha256 -hmac <secret>` over
`v0:<timestamp>:<body>` and pasted here as a literal; the first is the example of Slack's own
"Verifying requests from Slack" guide (its documented secret, timestamp, body and signature).
"""

from __future__ import annotations

import hmac
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobwatch.domain import slack_signature
from jobwatch.domain.slack_signature import MAX_SKEW_S, Refusal, SignatureRefused, sign, verify

EVENTS = Path(__file__).resolve().parents[2] / "events"

# Slack's documented example (api.slack.com/authentication/verifying-requests-from-slack).
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TIMESTAMP = "1531420618"
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

# printf 'v0:1767225600:%s' 'payload=%7B%22type%22%3A%22block_actions%22%7D' \
#   | openssl dgst -sha256 -hmac 'jobwatch-test-signing-secret'
OUR_SECRET = "jobwatch-test-signing-secret"
OUR_TIMESTAMP = "1767225600"
OUR_BODY = b"payload=%7B%22type%22%3A%22block_actions%22%7D"
OUR_SIGNATURE = "v0=17e078a35b095b03e831864adaf46d2ef70bb1205a9aaf88bd9436823e8ae2b5"
# printf 'v0:1767225600:' | openssl dgst -sha256 -hmac 'jobwatch-test-signing-secret'
EMPTY_BODY_SIGNATURE = "v0=f7b2fcdcda56f54cf6b56469800c3c3b14624ac04c212ece2f96833a9e281b02"

# events/slack-interaction-snooze.md: the sample event's documented test secret and signature.
EVENT_SECRET = "jobwatch-example-signing-secret-0001"
EVENT_SIGNATURE = "v0=7cb3ee89d2e5fab5435c862586a3dae2095df0b5422eee7972620a54260ebd10"


@pytest.mark.parametrize(
    ("secret", "timestamp", "body", "signature"),
    [
        (SLACK_SECRET, SLACK_TIMESTAMP, SLACK_BODY, SLACK_SIGNATURE),
        (OUR_SECRET, OUR_TIMESTAMP, OUR_BODY, OUR_SIGNATURE),
        (OUR_SECRET, OUR_TIMESTAMP, b"", EMPTY_BODY_SIGNATURE),
    ],
)
def test_signatures_match_vectors_computed_with_openssl(
    secret: str, timestamp: str, body: bytes, signature: str
) -> None:
    assert sign(secret, timestamp, body) == signature
    for late in (0, 1, MAX_SKEW_S):  # the window's edge is inside it
        assert verify(secret, timestamp, signature, body, now_s=int(timestamp) + late) == int(timestamp)
        assert verify(secret, timestamp, signature, body, now_s=int(timestamp) - late) == int(timestamp)


def test_the_sample_event_is_signed_with_its_documented_test_secret() -> None:
    event = json.loads((EVENTS / "slack-interaction-snooze.json").read_text(encoding="utf-8"))
    headers = event["headers"]
    assert headers["X-Slack-Signature"] == EVENT_SIGNATURE
    assert EVENT_SECRET in (EVENTS / "slack-interaction-snooze.md").read_text(encoding="utf-8")
    timestamp = headers["X-Slack-Request-Timestamp"]
    body = event["body"].encode("utf-8")
    assert verify(EVENT_SECRET, timestamp, EVENT_SIGNATURE, body, now_s=int(timestamp)) == int(timestamp)
    with pytest.raises(SignatureRefused) as refused:  # and it is stale by now, as the note says
        verify(EVENT_SECRET, timestamp, EVENT_SIGNATURE, body, now_s=int(timestamp) + MAX_SKEW_S + 1)
    assert refused.value.reason is Refusal.STALE


def _refusal(secret: str, timestamp: str | None, signature: str | None, body: bytes, now_s: float) -> Refusal:
    with pytest.raises(SignatureRefused) as refused:
        verify(secret, timestamp, signature, body, now_s)
    return refused.value.reason


NOW = int(OUR_TIMESTAMP)
FULLWIDTH_TIMESTAMP = "".join(chr(0xFF10 + int(digit)) for digit in OUR_TIMESTAMP)
"""Digits int() reads as the timestamp (U+FF10..U+FF19), but not what Slack sends."""


@pytest.mark.parametrize(
    ("timestamp", "signature", "reason"),
    [
        (None, OUR_SIGNATURE, Refusal.UNSIGNED),
        (OUR_TIMESTAMP, None, Refusal.UNSIGNED),
        ("", OUR_SIGNATURE, Refusal.UNSIGNED),
        (OUR_TIMESTAMP, "", Refusal.UNSIGNED),
        # int() would read all of these as the same timestamp
        ("+1767225600", OUR_SIGNATURE, Refusal.MALFORMED),
        (" 1767225600", OUR_SIGNATURE, Refusal.MALFORMED),
        ("1767225600\n", OUR_SIGNATURE, Refusal.MALFORMED),
        ("1_767_225_600", OUR_SIGNATURE, Refusal.MALFORMED),
        (FULLWIDTH_TIMESTAMP, OUR_SIGNATURE, Refusal.MALFORMED),
        ("1767225600.0", OUR_SIGNATURE, Refusal.MALFORMED),
        (OUR_TIMESTAMP, OUR_SIGNATURE.upper(), Refusal.MALFORMED),
        (OUR_TIMESTAMP, OUR_SIGNATURE.replace("v0=", "v1="), Refusal.MALFORMED),
        (OUR_TIMESTAMP, OUR_SIGNATURE[:-2], Refusal.MALFORMED),
        (OUR_TIMESTAMP, OUR_SIGNATURE + " ", Refusal.MALFORMED),
        (OUR_TIMESTAMP, OUR_SIGNATURE.removeprefix("v0="), Refusal.MALFORMED),
        (OUR_TIMESTAMP, "v0=" + "é" * 64, Refusal.MALFORMED),
        (OUR_TIMESTAMP, OUR_SIGNATURE[:-1] + ("0" if OUR_SIGNATURE[-1] != "0" else "1"), Refusal.FORGED),
        (OUR_TIMESTAMP, EMPTY_BODY_SIGNATURE, Refusal.FORGED),  # another body's signature
        ("1767225601", OUR_SIGNATURE, Refusal.FORGED),  # the signature covers the timestamp
    ],
)
def test_unsigned_malformed_and_forged_requests_are_refused(
    timestamp: str | None, signature: str | None, reason: Refusal
) -> None:
    assert _refusal(OUR_SECRET, timestamp, signature, OUR_BODY, NOW) is reason


def test_stale_requests_are_refused_either_way() -> None:
    for now in (NOW + MAX_SKEW_S + 1, NOW - MAX_SKEW_S - 1, NOW + 86400, 0):
        assert _refusal(OUR_SECRET, OUR_TIMESTAMP, OUR_SIGNATURE, OUR_BODY, now) is Refusal.STALE


def test_another_secret_or_body_is_forged() -> None:
    assert (
        _refusal("jobwatch-test-signing-secreT", OUR_TIMESTAMP, OUR_SIGNATURE, OUR_BODY, NOW)
        is Refusal.FORGED
    )
    assert _refusal(OUR_SECRET, OUR_TIMESTAMP, OUR_SIGNATURE, OUR_BODY + b"&x=1", NOW) is Refusal.FORGED
    # The raw bytes count, not what they decode to: `%7b` and `%7B` are the same form value.
    assert _refusal(OUR_SECRET, OUR_TIMESTAMP, OUR_SIGNATURE, OUR_BODY.replace(b"%7B", b"%7b"), NOW) is (
        Refusal.FORGED
    )


def test_the_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(slack_signature.hmac, "compare_digest", recording)
    verify(OUR_SECRET, OUR_TIMESTAMP, OUR_SIGNATURE, OUR_BODY, NOW)
    _refusal(OUR_SECRET, OUR_TIMESTAMP, EMPTY_BODY_SIGNATURE, OUR_BODY, NOW)
    assert calls == [
        (OUR_SIGNATURE.encode(), OUR_SIGNATURE.encode()),
        (OUR_SIGNATURE.encode(), EMPTY_BODY_SIGNATURE.encode()),
    ]


def test_refusals_never_show_the_secret() -> None:
    for timestamp, signature, now in [
        (None, None, NOW),
        ("x", OUR_SIGNATURE, NOW),
        (OUR_TIMESTAMP, OUR_SIGNATURE, 0),
    ]:
        with pytest.raises(SignatureRefused) as refused:
            verify(OUR_SECRET, timestamp, signature, OUR_BODY, now)
        assert OUR_SECRET not in str(refused.value)
    with pytest.raises(SignatureRefused) as refused:
        verify(OUR_SECRET, OUR_TIMESTAMP, EMPTY_BODY_SIGNATURE, OUR_BODY, NOW)
    assert OUR_SECRET not in str(refused.value) and OUR_SIGNATURE not in str(refused.value)


@settings(max_examples=200, deadline=None)
@given(
    secret=st.text(min_size=1, max_size=64),
    body=st.binary(max_size=512),
    timestamp=st.integers(min_value=0, max_value=10**12 - 1),
    skew=st.integers(min_value=-MAX_SKEW_S, max_value=MAX_SKEW_S),
    flip=st.integers(min_value=0, max_value=10**6),
)
def test_any_change_to_a_signed_body_is_refused(
    secret: str, body: bytes, timestamp: int, skew: int, flip: int
) -> None:
    signature = sign(secret, str(timestamp), body)
    assert verify(secret, str(timestamp), signature, body, timestamp + skew) == timestamp
    if body:
        position = flip % len(body)
        changed = body[:position] + bytes([body[position] ^ 0x01]) + body[position + 1 :]
    else:
        changed = b"\x00"
    assert _refusal(secret, str(timestamp), signature, changed, timestamp + skew) is Refusal.FORGED
