"""The EventBridge channel through the real delivery engine, on fakes (no sockets).

What is put on the bus (source, detail-type per kind, the versioned event as detail, the job as
resource, the observation time), and what PutEvents answers do: a partial failure
(`FailedEntryCount` 1 in an answer that raised nothing) is retried and delivered exactly once,
never lost; codes that can never succeed are dead-lettered with the code; throttling waits without
spending attempts.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from jobwatch.channels.base import ChannelTuning
from jobwatch.channels.eventbridge import (
    DETAIL_TYPE_HEALTH,
    DETAIL_TYPE_STATE,
    DETAIL_TYPE_TEST,
    MAX_ENTRY_BYTES,
    EventBridgeChannel,
    entry_size,
)
from jobwatch.delivery.engine import DELIVERED, FAILED_PERMANENT, DeliveryDeps, deliver_batch
from jobwatch.delivery.records import BatchReport
from jobwatch.domain.model import Event, JobSpec, Phase, Snapshot, Transition
from jobwatch.domain.routing import EventBridgeDestination
from jobwatch.domain.severity import severity_for
from jobwatch_devkit.fakes import FakeClock, FakeQueue, InMemoryLedger, drain, record, sns_envelope
from jobwatch_devkit.fakes_events import FakeEventBridge

BUS = "vector-jobs"
DESTINATION = EventBridgeDestination(bus=BUS)
SPEC = JobSpec(
    source="zilliz-import-v2",
    endpoint="https://api.cloud.zilliz.com",
    job_id="job-01j9x7c2",
    cluster_id="in01-abc",
    labels={"team": "search"},
)
PHASE_OF = {
    "QUEUED": Phase.PENDING,
    "SUCCEEDED": Phase.SUCCEEDED,
    "FAILED": Phase.FAILED,
    "CANCELED": Phase.CANCELED,
    "LOST": Phase.LOST,
}


def _transition(
    event: str = "SUCCEEDED",
    version: int = 2,
    *,
    details: dict[str, Any] | None = None,
    note: str | None = None,
    spec: JobSpec = SPEC,
) -> Transition:
    return Transition(
        transition_id=f"{spec.key}#{version}",
        job_key=spec.key,
        source=spec.source,
        job_id=spec.job_id,
        event=event,
        severity=severity_for(event),
        occurred_at="2026-01-01T10:42:05Z",
        job=spec,
        previous=Snapshot(phase=Phase.RUNNING, status="Importing", progress=40.0),
        current=Snapshot(
            phase=PHASE_OF.get(event, Phase.RUNNING),
            status="Completed",
            details=details if details is not None else {"collections": ["articles"], "location": "cluster"},
        ),
        note=note,
        previous_transition_id=f"{spec.key}#{version - 1}",
    )


class Rig:
    """One channel, its engine dependencies and its fake bus."""

    def __init__(self, **tuning: Any) -> None:
        self.clock = FakeClock()
        self.bus = FakeEventBridge()
        self.ledger = InMemoryLedger()
        self.queue = FakeQueue(self.clock)
        self.channel = EventBridgeChannel(DESTINATION, self.bus, ChannelTuning(**tuning))
        self.deps = DeliveryDeps(
            ledger=self.ledger, queue=self.queue, clock=self.clock, sleep=self.clock.advance
        )

    def deliver(self, event: dict[str, Any]) -> BatchReport:
        return deliver_batch(event, self.channel, self.deps)

    def deliver_all(self, *transitions: Transition) -> None:
        drain(self.deliver, self.queue, self.clock, [record(sns_envelope(t)) for t in transitions])

    def state(self, transition: Transition) -> str | None:
        return self.ledger.state(self.channel.limits.name, transition.transition_id)


# -- what goes on the bus ---------------------------------------------------------------------------


def test_a_transition_is_one_entry_with_the_versioned_event_as_detail() -> None:
    rig = Rig()
    transition = _transition("SUCCEEDED")

    report = rig.deliver({"Records": [record(sns_envelope(transition))]})

    assert (report.delivered, report.failures, report.dead_lettered) == (1, [], 0)
    (entry,) = rig.bus.events
    assert entry["EventBusName"] == BUS
    assert entry["Source"] == "jobwatch"
    assert entry["DetailType"] == "Vector DB Job State Change"
    assert json.loads(entry["Detail"]) == transition.to_wire()
    assert entry["Resources"] == [f"jobwatch:job/{transition.job_key}"]
    assert entry["Time"] == datetime(2026, 1, 1, 10, 42, 5, tzinfo=UTC)
    assert rig.state(transition) == DELIVERED


@pytest.mark.parametrize("event", [e.value for e in Event])
def test_each_kind_of_event_has_its_detail_type(event: str) -> None:
    expected = {
        "QUEUED": DETAIL_TYPE_STATE,
        "STARTED": DETAIL_TYPE_STATE,
        "SUCCEEDED": DETAIL_TYPE_STATE,
        "FAILED": DETAIL_TYPE_STATE,
        "CANCELED": DETAIL_TYPE_STATE,
        "LOST": DETAIL_TYPE_STATE,
        "STALLED": DETAIL_TYPE_HEALTH,
        "RESUMED": DETAIL_TYPE_HEALTH,
        "OVERDUE": DETAIL_TYPE_HEALTH,
        "UNREACHABLE": DETAIL_TYPE_HEALTH,
        "AUTH_FAILED": DETAIL_TYPE_HEALTH,
        "RECOVERED": DETAIL_TYPE_HEALTH,
        "TEST": DETAIL_TYPE_TEST,
    }[event]
    rig = Rig()
    rig.deliver_all(_transition(event))
    assert [e["DetailType"] for e in rig.bus.events] == [expected]


def test_limits_name_the_destination_and_do_not_hold_events_in_order() -> None:
    limits = EventBridgeChannel(DESTINATION, FakeEventBridge(), ChannelTuning(max_attempts=4)).limits
    assert (limits.name, limits.metric_prefix, limits.ordered, limits.max_attempts) == (
        DESTINATION.id,
        "EventBridge",
        False,
        4,
    )


def test_a_job_whose_predecessor_is_not_out_yet_is_not_held_back() -> None:
    rig = Rig()
    later = _transition("SUCCEEDED", version=3)  # its predecessor #2 never reached this channel
    report = rig.deliver({"Records": [record(sns_envelope(later))]})
    assert (report.delivered, report.deferred) == (1, 0)


def test_an_event_too_big_for_one_entry_is_shrunk_like_for_sns_and_still_delivered() -> None:
    files = [{"fileName": f"part-{n:05d}.parquet", "error": "x" * 200} for n in range(1_500)]
    transition = _transition("FAILED", details={"collections": ["a"], "location": "s3", "files": files})
    rig = Rig()

    rig.deliver_all(transition)

    (entry,) = rig.bus.events
    assert entry_size(entry) < MAX_ENTRY_BYTES
    detail = json.loads(entry["Detail"])
    assert detail["current"]["details"]["detailsTruncated"] is True
    assert "files" not in detail["current"]["details"]
    assert detail["transitionId"] == transition.transition_id and detail["event"] == "FAILED"


def test_a_long_note_is_cut_when_nothing_else_is_left_to_shrink() -> None:
    transition = _transition("UNREACHABLE", note="HTTP 500: " + "e" * 300_000)
    rig = Rig()

    rig.deliver_all(transition)

    (detail,) = rig.bus.details()
    assert len(detail["note"]) <= 4_000 and "truncated" in detail["note"]


def test_an_event_that_cannot_fit_is_dead_lettered_with_the_reason_not_dropped() -> None:
    huge = JobSpec(
        source="zilliz-import-v2", endpoint="https://x.example", job_id="j", labels={"l": "v" * 300_000}
    )
    transition = _transition("FAILED", spec=huge)
    rig = Rig()

    rig.deliver_all(transition)

    assert rig.bus.events == [] and rig.bus.calls == 0
    ((_, reason),) = rig.queue.dead_letters
    assert reason.startswith("invalid payload: entry is") and "256 KB" in reason
    assert rig.state(transition) == FAILED_PERMANENT


# -- what PutEvents answers do -----------------------------------------------------------------------


def test_a_partial_failure_is_retried_through_the_engine_and_delivered_once() -> None:
    rig = Rig()
    rig.bus.fail_entries("InternalFailure", times=2)
    transition = _transition("SUCCEEDED")
    original = record(sns_envelope(transition))

    first = rig.deliver({"Records": [original]})
    assert (first.delivered, first.retried, first.deferred, first.failures) == (0, 1, 1, [])
    assert rig.bus.events == [] and rig.state(transition) is None  # released, owed, not lost

    drain(rig.deliver, rig.queue, rig.clock)
    again = rig.deliver({"Records": [record(original["body"])]})  # SQS delivers the original again

    assert rig.bus.calls == 3
    assert [json.loads(e["Detail"])["transitionId"] for e in rig.bus.events] == [transition.transition_id]
    assert (again.delivered, again.duplicates) == (0, 1)
    assert rig.queue.dead_letters == []
    assert rig.state(transition) == DELIVERED


@pytest.mark.parametrize(
    "code",
    [
        "AccessDeniedException",
        "InvalidAccountIdException",
        "InvalidArgument",
        "MalformedDetail",
        "RedactionFailure",
        "NotAuthorizedForSourceException",
        "NotAuthorizedForDetailTypeException",
    ],
)
def test_an_entry_refused_for_good_is_dead_lettered_once_with_its_code(code: str) -> None:
    rig = Rig()
    rig.bus.fail_entries(code, "scripted", times=5)
    transition = _transition("FAILED")

    rig.deliver_all(transition)

    assert rig.bus.calls == 1 and rig.bus.events == []
    ((_, reason),) = rig.queue.dead_letters
    assert reason == f"entry failed: {code}: scripted"
    assert rig.state(transition) == FAILED_PERMANENT


@pytest.mark.parametrize(
    "code", ["AccessDeniedException", "ResourceNotFoundException", "ValidationException"]
)
def test_a_call_refused_for_good_is_dead_lettered_once(code: str) -> None:
    rig = Rig()
    rig.bus.raise_error(code, "scripted", times=5)

    rig.deliver_all(_transition("FAILED"))

    assert rig.bus.calls == 1
    ((_, reason),) = rig.queue.dead_letters
    assert reason == f"call failed: {code}: scripted"


def test_a_short_throttle_is_waited_out_in_process() -> None:
    rig = Rig(max_retry_after_s=5)
    rig.bus.raise_error("ThrottlingException", "Rate exceeded", status=400)
    started = rig.clock.now()

    report = rig.deliver({"Records": [record(sns_envelope(_transition()))]})

    assert (report.delivered, report.retried, report.deferred) == (1, 0, 0)
    assert rig.clock.now() - started >= 2  # THROTTLE_WAIT_S
    assert len(rig.bus.events) == 1


def test_throttling_defers_the_batch_without_spending_attempts() -> None:
    rig = Rig(max_retry_after_s=0, max_attempts=2)
    rig.bus.fail_entries("ThrottlingException", "Rate exceeded", times=5)
    transitions = [_transition("STARTED", 1), _transition("SUCCEEDED", 2)]

    first = rig.deliver({"Records": [record(sns_envelope(t)) for t in transitions]})
    assert (first.delivered, first.deferred, first.retried) == (0, 2, 0)
    drain(rig.deliver, rig.queue, rig.clock)

    assert rig.queue.dead_letters == []  # five throttles, with an attempt cap of two
    assert sorted(json.loads(e["Detail"])["event"] for e in rig.bus.events) == ["STARTED", "SUCCEEDED"]


def test_unknown_codes_and_lost_answers_are_retried_until_the_cap_then_dead_lettered() -> None:
    rig = Rig(max_attempts=3)
    rig.bus.fail_entries("SomethingNew", "what is this", times=10)
    started = rig.clock.now()

    rig.deliver_all(_transition("FAILED"))

    assert rig.bus.calls == 3
    ((_, reason),) = rig.queue.dead_letters
    assert reason == "gave up after 3 attempts; last: entry failed: SomethingNew: what is this"
    assert rig.clock.now() - started >= 30 + 60


def test_no_answer_at_all_is_retried() -> None:
    class Unreachable(FakeEventBridge):
        def put_events(self, *, Entries: Any) -> dict[str, Any]:
            self.calls += 1
            if self.calls == 1:
                raise EndpointConnectionError(endpoint_url="https://events.us-east-1.amazonaws.com")
            return super().put_events(Entries=Entries)

    rig = Rig()
    rig.bus = Unreachable()
    rig.channel = EventBridgeChannel(DESTINATION, rig.bus, ChannelTuning())

    rig.deliver_all(_transition())

    assert len(rig.bus.events) == 1 and rig.queue.dead_letters == []
