"""Webhook signatures and answers, checked against vectors computed here, not by the code under test.

The expected signatures are computed in the tests with `hmac`/`hashlib` straight from the documented
recipe (docs/webhooks.md: `v1=` + hex HMAC-SHA256(key, "<timestamp>." + body)), and one is a literal
computed once by hand, so a change to the channel's signing cannot move the expectation with it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from jobwatch.channels.base import ChannelTuning, Notice, SendOutcome
from jobwatch.channels.webhook import (
    WebhookChannel,
    WebhookRequest,
    classify_status,
    retry_after_s,
    signature,
    signed_headers,
)
from jobwatch.domain.model import JobSpec, Phase, Snapshot, Transition
from jobwatch.domain.routing import WebhookDestination
from jobwatch.domain.severity import severity_for
from jobwatch_devkit.fakes import FakeSecrets
from jobwatch_devkit.webhook_receiver import verification_failure

KEY = "whsec_test_key"
SECRET_NAME = "jobwatch/notify/hook-key"
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
SPEC = JobSpec(
    source="zilliz-import-v1", endpoint="https://api.cloud.zilliz.com", job_id="job-01", cluster_id="in01-x"
)
DESTINATION = WebhookDestination(url="https://hooks.example.com/jobwatch", signing_secret=SECRET_NAME)


def _reference_signature(key: bytes, timestamp: int, body: bytes) -> str:
    """The documented recipe, written out independently of `jobwatch.channels.webhook`."""
    return "v1=" + hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def _transition(event: str = "SUCCEEDED", note: str | None = None) -> Transition:
    return Transition(
        transition_id=f"{SPEC.key}#2",
        job_key=SPEC.key,
        source=SPEC.source,
        job_id=SPEC.job_id,
        event=event,
        severity=severity_for(event),
        occurred_at="2026-01-01T00:00:00Z",
        job=SPEC,
        previous=None,
        current=Snapshot(phase=Phase.SUCCEEDED, status="Completed", details={"collections": ["médium"]}),
        note=note,
    )


class CapturingPoster:
    """A poster that records what it was asked to send and answers from a script."""

    def __init__(self, *answers: httpx.Response | httpx.HTTPError) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, bytes, dict[str, str]]] = []

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
        self.sent.append((url, body, dict(headers)))
        answer = self.answers.pop(0) if self.answers else httpx.Response(204)
        if isinstance(answer, httpx.HTTPError):
            raise answer
        return answer


def _channel(
    poster: CapturingPoster, clock: float = NOW, secrets: FakeSecrets | None = None
) -> WebhookChannel:
    return WebhookChannel(
        DESTINATION,
        secrets or FakeSecrets({SECRET_NAME: KEY}),
        poster,
        ChannelTuning(),
        clock=lambda: clock,
    )


# -- the signature ----------------------------------------------------------------------------------


def test_the_signature_matches_a_vector_computed_by_hand() -> None:
    body = b'{"schema":"jobwatch.transition/v1","event":"SUCCEEDED"}'
    # python -c 'import hmac,hashlib; print(hmac.new(b"whsec_test_key",
    #   b"1767225600." + b"{\"schema\":\"jobwatch.transition/v1\",\"event\":\"SUCCEEDED\"}",
    #   hashlib.sha256).hexdigest())'
    expected = "v1=bc29147309103f12f153c411a403db550d300d32f548816277d833994c182e0e"
    assert signature(KEY.encode(), NOW, body) == expected


@pytest.mark.parametrize(
    ("key", "timestamp", "body"),
    [
        (b"k", 0, b""),
        (b"whsec_test_key", NOW, b"{}"),
        ("clé-secrète-ü".encode(), 1_700_000_000, '{"note":"überfällig ✓"}'.encode()),
        (b"x" * 200, 4_102_444_800, b"\x00\xff binary-safe"),
    ],
)
def test_the_signature_matches_hmac_sha256_computed_here(key: bytes, timestamp: int, body: bytes) -> None:
    assert signature(key, timestamp, body) == _reference_signature(key, timestamp, body)


def test_one_changed_byte_or_second_changes_the_signature() -> None:
    body = b'{"event":"FAILED"}'
    good = signature(KEY.encode(), NOW, body)
    assert signature(KEY.encode(), NOW, body.replace(b"FAILED", b"FAILEd")) != good
    assert signature(KEY.encode(), NOW + 1, body) != good
    assert signature(b"other key", NOW, body) != good


def test_the_headers_carry_the_timestamp_signature_ids_and_content_type() -> None:
    request = WebhookRequest(transition_id=f"{SPEC.key}#2", event="SUCCEEDED", body=b"{}")
    headers = signed_headers(request, KEY.encode(), NOW)
    assert headers == {
        "Content-Type": "application/json",
        "X-Jobwatch-Timestamp": str(NOW),
        "X-Jobwatch-Signature": _reference_signature(KEY.encode(), NOW, b"{}"),
        "X-Jobwatch-Transition-Id": f"{SPEC.key}#2",
        "X-Jobwatch-Event": "SUCCEEDED",
    }


# -- the channel: what is sent ----------------------------------------------------------------------


def test_the_exact_bytes_sent_are_the_event_json_and_are_what_is_signed() -> None:
    poster = CapturingPoster()
    channel = _channel(poster)
    transition = _transition(note="überfällig")

    result = channel.send(channel.render(Notice(transition)))

    assert result.outcome is SendOutcome.DELIVERED
    ((url, body, headers),) = poster.sent
    assert url == DESTINATION.url
    assert json.loads(body) == transition.to_wire()
    assert headers["X-Jobwatch-Timestamp"] == str(NOW)
    assert headers["X-Jobwatch-Signature"] == _reference_signature(KEY.encode(), NOW, body)
    assert (headers["X-Jobwatch-Transition-Id"], headers["X-Jobwatch-Event"]) == (
        transition.transition_id,
        "SUCCEEDED",
    )


def test_each_attempt_is_signed_afresh_with_its_own_timestamp() -> None:
    poster = CapturingPoster(httpx.Response(503), httpx.Response(200))
    request = _channel(poster).render(Notice(_transition()))

    assert _channel(poster, clock=NOW).send(request).outcome is SendOutcome.RETRY
    assert _channel(poster, clock=NOW + 900.7).send(request).outcome is SendOutcome.DELIVERED

    (_, body1, first), (_, body2, second) = poster.sent
    assert body1 == body2
    assert (first["X-Jobwatch-Timestamp"], second["X-Jobwatch-Timestamp"]) == (str(NOW), str(NOW + 900))
    assert second["X-Jobwatch-Signature"] == _reference_signature(KEY.encode(), NOW + 900, body2)


def test_the_devkit_receiver_accepts_what_the_channel_signs_and_nothing_else() -> None:
    """The receiver verifies on its own (it imports no signing code): it and the channel agree."""
    poster = CapturingPoster()
    channel = _channel(poster)
    channel.send(channel.render(Notice(_transition())))
    ((_, body, headers),) = poster.sent
    lower = {name.lower(): value for name, value in headers.items()}

    assert verification_failure(KEY.encode(), lower, body, NOW + 10) is None
    assert verification_failure(b"wrong key", lower, body, NOW) == "signature mismatch"
    assert verification_failure(KEY.encode(), lower, body + b" ", NOW) == "signature mismatch"
    assert "outside" in (verification_failure(KEY.encode(), lower, body, NOW + 301) or "")


def test_an_unreadable_signing_secret_blocks_the_batch_for_a_minute() -> None:
    poster = CapturingPoster()
    result = _channel(poster, secrets=FakeSecrets()).send(_channel(poster).render(Notice(_transition())))

    assert result.outcome is SendOutcome.BLOCKED and result.retry_after_s == 60
    assert SECRET_NAME in result.detail and KEY not in result.detail
    assert poster.sent == []


def test_limits_name_the_destination_and_keep_each_job_in_order() -> None:
    tuning = ChannelTuning(max_attempts=7, retry_base_s=11, order_wait_s=99, order_retry_s=3)
    channel = WebhookChannel(DESTINATION, FakeSecrets(), CapturingPoster(), tuning)
    limits = channel.limits
    assert (limits.name, limits.metric_prefix, limits.ordered) == (DESTINATION.id, "Webhook", True)
    assert (limits.max_attempts, limits.retry_base_s, limits.order_wait_s, limits.order_retry_s) == (
        7,
        11,
        99,
        3,
    )


# -- the channel: what answers mean ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, SendOutcome.DELIVERED),
        (202, SendOutcome.DELIVERED),
        (204, SendOutcome.DELIVERED),
        (301, SendOutcome.PERMANENT),
        (400, SendOutcome.PERMANENT),
        (401, SendOutcome.PERMANENT),
        (403, SendOutcome.PERMANENT),
        (404, SendOutcome.PERMANENT),
        (410, SendOutcome.PERMANENT),
        (422, SendOutcome.PERMANENT),
        (408, SendOutcome.RETRY),
        (429, SendOutcome.RATE_LIMITED),
        (500, SendOutcome.RETRY),
        (502, SendOutcome.RETRY),
        (503, SendOutcome.RETRY),
    ],
)
def test_each_status_is_classified(status: int, outcome: SendOutcome) -> None:
    result = classify_status(httpx.Response(status, text="nope"), NOW)
    assert result.outcome is outcome
    if outcome is not SendOutcome.DELIVERED:
        assert result.detail.startswith(f"HTTP {status}: nope")


def test_connection_errors_timeouts_and_refusals_are_retried() -> None:
    poster = CapturingPoster(
        httpx.ConnectError("refused by the endpoint rules: hooks.example.com now resolves to 10.0.0.7"),
        httpx.ReadTimeout("no complete answer within 10 s"),
    )
    channel = _channel(poster)
    request = channel.render(Notice(_transition()))

    refused, timed_out = channel.send(request), channel.send(request)

    assert refused.outcome is timed_out.outcome is SendOutcome.RETRY
    assert "refused by the endpoint rules" in refused.detail and "ReadTimeout" in timed_out.detail


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    in_two_minutes = format_datetime(datetime.fromtimestamp(NOW + 120, UTC), usegmt=True)
    assert retry_after_s("3", NOW) == 3.0
    assert retry_after_s(in_two_minutes, NOW) == pytest.approx(120)
    assert retry_after_s("-5", NOW) == 0.0
    assert retry_after_s("soon", NOW) is None and retry_after_s(None, NOW) is None
    answer = httpx.Response(429, headers={"Retry-After": "7"})
    assert classify_status(answer, NOW).retry_after_s == 7.0


def test_a_transition_id_that_cannot_be_a_header_is_refused_before_sending() -> None:
    channel = _channel(CapturingPoster())
    bad = WebhookRequest(transition_id="x\r\nInjected: 1", event="SUCCEEDED", body=b"{}")
    assert channel.problems(bad) != []
    assert channel.problems(channel.render(Notice(_transition()))) == []
