"""Signed webhooks on a real socket: the real channel and poster against the devkit's receiver.

The receiver verifies every signature itself (it shares no code with the channel), so "delivered"
here means a customer's endpoint would have accepted the request. The engine runs on the in-memory
ledger and queue (fake time), the HTTP is real: retries on 5xx, timeouts and dropped connections,
dead-letters for a 4xx, `Retry-After` honoured, per-job order, and the endpoint rules applied to
every connection (a name that now resolves to an internal address is refused before anything is sent).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from jobwatch.adapters.http import aio_transport
from jobwatch.adapters.http.aio_transport import ResponseTooLarge
from jobwatch.adapters.http.webhook_client import RefusedWebhookUrl, WebhookPoster
from jobwatch.channels.base import ChannelTuning
from jobwatch.channels.webhook import WebhookChannel
from jobwatch.delivery.engine import DELIVERED, FAILED_PERMANENT, DeliveryDeps, deliver_batch
from jobwatch.delivery.records import BatchReport
from jobwatch.domain.model import JobSpec, Phase, Snapshot, Transition
from jobwatch.domain.routing import WebhookDestination
from jobwatch.domain.severity import severity_for
from jobwatch.settings import EndpointSettings
from jobwatch_devkit.fakes import (
    FakeClock,
    FakeQueue,
    FakeSecrets,
    InMemoryLedger,
    drain,
    record,
    sns_envelope,
)
from jobwatch_devkit.webhook_receiver import Answer, WebhookReceiver

pytestmark = pytest.mark.integration

SIGNING_KEY = "whsec_integration_8f1c"
SECRET_NAME = "jobwatch/notify/ci-hook"
SPEC = JobSpec(
    source="zilliz-import-v2", endpoint="https://api.cloud.zilliz.com", job_id="job-77", cluster_id="in01-z"
)


def _transition(event: str, version: int, phase: Phase) -> Transition:
    return Transition(
        transition_id=f"{SPEC.key}#{version}",
        job_key=SPEC.key,
        source=SPEC.source,
        job_id=SPEC.job_id,
        event=event,
        severity=severity_for(event),
        occurred_at="2026-01-01T10:42:05Z",
        job=SPEC,
        previous=None if version == 1 else Snapshot(phase=Phase.RUNNING, status="Importing"),
        current=Snapshot(phase=phase, status=event.title(), details={"collections": ["docs"]}),
        previous_transition_id=None if version == 1 else f"{SPEC.key}#{version - 1}",
    )


STARTED = _transition("STARTED", 1, Phase.RUNNING)
SUCCEEDED = _transition("SUCCEEDED", 2, Phase.SUCCEEDED)


@pytest.fixture(scope="module")
def _receiver_server() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(SIGNING_KEY)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def receiver(_receiver_server: WebhookReceiver) -> WebhookReceiver:
    _receiver_server.reset()
    return _receiver_server


@dataclass
class Rig:
    channel: WebhookChannel
    clock: FakeClock
    queue: FakeQueue
    ledger: InMemoryLedger
    deps: DeliveryDeps

    def deliver(self, event: dict[str, Any]) -> BatchReport:
        return deliver_batch(event, self.channel, self.deps)

    def deliver_all(self, *transitions: Transition) -> None:
        drain(self.deliver, self.queue, self.clock, [record(sns_envelope(t)) for t in transitions])

    def state(self, transition: Transition) -> str | None:
        return self.ledger.state(self.channel.limits.name, transition.transition_id)


@pytest.fixture
def make_rig() -> Callable[..., Rig]:
    def make(
        url: str,
        *,
        key: str = SIGNING_KEY,
        deadline_s: float = 1.0,
        standing: Callable[[str], str | None] = lambda _tid: None,
        **tuning: Any,
    ) -> Rig:
        clock = FakeClock()
        queue = FakeQueue(clock)
        ledger = InMemoryLedger()
        poster = WebhookPoster(EndpointSettings(allow_http_loopback=True), deadline_s=deadline_s)
        channel = WebhookChannel(
            WebhookDestination(url=url, signing_secret=SECRET_NAME),
            FakeSecrets({SECRET_NAME: key}),
            poster,
            ChannelTuning(**tuning),
        )
        deps = DeliveryDeps(
            ledger=ledger,
            queue=queue,
            clock=clock,
            standing=standing,
            sleep=clock.advance,
        )
        return Rig(channel, clock, queue, ledger, deps)

    return make


def test_a_signed_event_is_delivered_and_verified_by_the_receiver(
    receiver: WebhookReceiver, make_rig: Callable[..., Rig]
) -> None:
    rig = make_rig(receiver.url)

    report = rig.deliver({"Records": [record(sns_envelope(SUCCEEDED))]})

    assert (report.delivered, report.failures, report.dead_lettered) == (1, [], 0)
    (hook,) = receiver.received()
    assert hook.verified and hook.delivered and hook.path == "/hooks/jobwatch"
    assert hook.event == SUCCEEDED.to_wire()
    assert hook.headers["content-type"] == "application/json"
    assert hook.headers["x-jobwatch-event"] == "SUCCEEDED"
    assert hook.transition_id == SUCCEEDED.transition_id
    assert hook.headers["x-jobwatch-signature"].startswith("v1=")
    assert rig.state(SUCCEEDED) == DELIVERED


def test_server_errors_are_retried_with_backoff_until_delivered(
    receiver: WebhookReceiver, make_rig: Callable[..., Rig]
) -> None:
    receiver.script([Answer(503), Answer(500)])
    rig = make_rig(receiver.url)
    started = rig.clock.now()

    rig.deliver_all(SUCCEEDED)

    assert [r.status for r in receiver.received()] == [503, 500, 200]
    assert all(r.verified for r in receiver.received())  # each retry signed afresh, each verified
    assert len(receiver.deliveries()) == 1
    assert rig.queue.dead_letters == [] and rig.state(SUCCEEDED) == DELIVERED
    assert rig.clock.now() - started >= 30 + 60


@pytest.mark.parametrize("fault", [Answer(200, delay_s=2.0), Answer(drop=True)], ids=["timeout", "dropped"])
def test_no_answer_in_time_is_retried(
    receiver: WebhookReceiver, make_rig: Callable[..., Rig], fault: Answer
) -> None:
    receiver.script([fault])
    rig = make_rig(receiver.url, deadline_s=0.5)

    first = rig.deliver({"Records": [record(sns_envelope(SUCCEEDED))]})
    assert (first.delivered, first.retried) == (0, 1)
    drain(rig.deliver, rig.queue, rig.clock)

    assert rig.state(SUCCEEDED) == DELIVERED and rig.queue.dead_letters == []
    # The receiver saw the transition twice: a receiver must deduplicate on the transition id.
    assert {r.transition_id for r in receiver.verified()} == {SUCCEEDED.transition_id}
    assert len(receiver.verified()) == 2


@pytest.mark.parametrize("status", [400, 404, 410, 422])
def test_a_permanent_4xx_is_dead_lettered_once_with_the_status(
    receiver: WebhookReceiver, make_rig: Callable[..., Rig], status: int
) -> None:
    receiver.script([Answer(status)] * 3)
    rig = make_rig(receiver.url)

    rig.deliver_all(SUCCEEDED)

    assert len(receiver.received()) == 1
    ((_, reason),) = rig.queue.dead_letters
    assert reason.startswith(f"HTTP {status}")
    assert rig.state(SUCCEEDED) == FAILED_PERMANENT


def test_a_wrong_signing_key_is_refused_by_the_receiver_and_dead_lettered(
    receiver: WebhookReceiver, make_rig: Callable[..., Rig]
) -> None:
    rig = make_rig(receiver.url, key="not-the-shared-secret")

    rig.deliver_all(SUCCEEDED)

    (hook,) = receiver.rejected()
    assert hook.reason == "signature mismatch" and hook.status == 401
    ((_, reason),) = rig.queue.dead_letters
    assert reason == "HTTP 401: signature mismatch"


def test_a_short_retry_after_is_waited_out_and_the_send_repeated(
    receiver: WebhookReceiver, make_rig: Callable[..., Rig]
) -> None:
    receiver.script([Answer(429, retry_after="3")])
    rig = make_rig(receiver.url, max_retry_after_s=5)
    started = rig.clock.now()

    report = rig.deliver({"Records": [record(sns_envelope(SUCCEEDED))]})

    assert (report.delivered, report.retried, report.deferred) == (1, 0, 0)
    assert rig.clock.now() - started >= 3
    assert [r.status for r in receiver.received()] == [429, 200]


def test_a_long_retry_after_defers_the_batch_without_spending_attempts(
    receiver: WebhookReceiver, make_rig: Callable[..., Rig]
) -> None:
    receiver.script([Answer(429, retry_after="120")] * 3)
    rig = make_rig(receiver.url, max_retry_after_s=5, max_attempts=2)
    started = rig.clock.now()

    first = rig.deliver({"Records": [record(sns_envelope(STARTED)), record(sns_envelope(SUCCEEDED))]})
    assert (first.delivered, first.deferred, first.retried) == (0, 2, 0)
    drain(rig.deliver, rig.queue, rig.clock)

    assert rig.queue.dead_letters == []  # three 429s, with an attempt cap of two
    assert [r.event["event"] for r in receiver.deliveries()] == ["STARTED", "SUCCEEDED"]
    assert rig.clock.now() - started >= 3 * 120


def test_a_job_events_arrive_in_order_even_when_its_first_one_is_retried(
    receiver: WebhookReceiver, make_rig: Callable[..., Rig]
) -> None:
    receiver.script([Answer(503)])
    rig = make_rig(receiver.url, standing=lambda _tid: "PUBLISHED")  # the job store: SNS took both

    rig.deliver_all(SUCCEEDED, STARTED)  # in any order, as a standard queue may hand them over

    assert [r.event["event"] for r in receiver.received()] == ["STARTED", "STARTED", "SUCCEEDED"]
    assert [r.event["event"] for r in receiver.deliveries()] == ["STARTED", "SUCCEEDED"]


def _resolving_to(address: str) -> Callable[[str, int], Any]:
    async def resolve(host: str, port: int) -> list[str]:
        return [address]

    return resolve


@pytest.mark.parametrize("internal", ["127.0.0.1", "169.254.169.254", "10.0.0.7", "::ffff:192.168.1.1"])
def test_a_webhook_host_that_resolves_to_an_internal_address_is_refused_at_connection_time(
    receiver: WebhookReceiver, make_rig: Callable[..., Rig], monkeypatch: pytest.MonkeyPatch, internal: str
) -> None:
    """Registered while the name was public; it now points inside. Nothing may be sent."""
    port = urlsplit(receiver.url).port
    monkeypatch.setattr(aio_transport, "CONNECT_RESOLVER", _resolving_to(internal))
    rig = make_rig(f"https://hooks.rebind.test:{port}/hooks/jobwatch", max_attempts=2)

    rig.deliver_all(SUCCEEDED)

    assert receiver.received() == []
    ((_, reason),) = rig.queue.dead_letters
    assert reason.startswith(
        "gave up after 2 attempts; last: no answer: ConnectError: refused by the endpoint"
    )
    assert f"resolves to {ipaddress.ip_address(internal)}" in reason


@pytest.mark.parametrize(
    "url",
    ["https://169.254.169.254/latest/meta-data", "https://[fd00::1]/hook", "https://10.1.2.3:8443/hook"],
)
def test_an_internal_address_literal_is_refused_without_a_connection(url: str) -> None:
    poster = WebhookPoster(EndpointSettings(allow_http_loopback=True), deadline_s=1.0)
    with pytest.raises(httpx.ConnectError, match="refused by the endpoint rules"):
        poster.post(url, b"{}", {"Content-Type": "application/json"})


@pytest.mark.parametrize(
    ("url", "allow_http_loopback"),
    [
        ("http://hooks.example.com/jobwatch", True),  # plain http off loopback
        ("http://127.0.0.1:9/jobwatch", False),  # loopback http without the flag
        ("https://user:pw@hooks.example.com/jobwatch", True),  # credentials in the URL
        ("ftp://hooks.example.com/jobwatch", True),
    ],
)
def test_a_url_that_breaks_the_rules_is_refused_before_any_resolution(
    url: str, allow_http_loopback: bool
) -> None:
    def no_dns(host: str, port: int) -> Any:
        raise AssertionError(f"resolved {host}")

    poster = WebhookPoster(EndpointSettings(allow_http_loopback=allow_http_loopback))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(aio_transport, "CONNECT_RESOLVER", no_dns)
        with pytest.raises(RefusedWebhookUrl, match="refused by the endpoint rules"):
            poster.post(url, b"{}", {})


def test_a_redirect_is_not_followed_and_is_dead_lettered(
    receiver: WebhookReceiver, make_rig: Callable[..., Rig]
) -> None:
    elsewhere = (("Location", f"{receiver.base_url}/elsewhere"),)
    receiver.script([Answer(308, headers=elsewhere)])
    rig = make_rig(receiver.url)

    rig.deliver_all(SUCCEEDED)

    assert [r.path for r in receiver.received()] == ["/hooks/jobwatch"]  # never /elsewhere
    ((_, reason),) = rig.queue.dead_letters
    assert reason.startswith("HTTP 308") and "redirects are never followed" in reason


def test_the_answer_body_is_capped(receiver: WebhookReceiver) -> None:
    poster = WebhookPoster(EndpointSettings(allow_http_loopback=True), deadline_s=1.0, max_answer_bytes=4)
    with pytest.raises(ResponseTooLarge):
        poster.post(receiver.url, b"{}", {})  # unsigned: refused with a reason longer than 4 bytes
    assert [r.status for r in receiver.rejected()] == [401]
