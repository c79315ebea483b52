"""EventBridge: each transition as one event on a bus, for rules to route (docs/eventbridge.md).

One `PutEvents` entry per transition: `Source` `jobwatch`, a `DetailType` per kind of event (phase,
health, test), `Detail` the versioned transition event (`jobwatch.transition/v1`), `Resources` naming
the job, `Time` when jobwatch observed it. An entry must stay under 256 KB, so details shrink the
way they do for SNS when an event would not fit (docs/event-schema.md, "Size limit and truncation").

Answers: a call that raises nothing can still have failed its entry (`FailedEntryCount` 1); the
entry's `ErrorCode` is classified like an error of the call itself. Throttling is a rate limit;
the codes EventBridge documents as non-retryable (access denied, malformed detail, invalid
argument...) and a bus that does not exist are refused for good (dead-lettered with the code,
alarmed); everything else, unknown codes included, is retried with backoff up to the attempt cap,
so nothing is dropped on a guess. The channel is unordered: EventBridge itself delivers to targets
in no guaranteed order (and retries per target), so holding events back here would buy consumers
nothing; they order by `previousTransitionId` and deduplicate on `transitionId`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from jobwatch.channels.base import (
    DELIVERED,
    ChannelLimits,
    ChannelTuning,
    Notice,
    SendOutcome,
    SendResult,
)
from jobwatch.domain.model import Event, Transition
from jobwatch.domain.routing import EventBridgeDestination
from jobwatch.domain.severity import HEALTH_EVENTS
from jobwatch.render.event_json import event_json, shrinking, utf8_len

SOURCE = "jobwatch"
DETAIL_TYPE_STATE = "Vector DB Job State Change"
DETAIL_TYPE_HEALTH = "Vector DB Job Health Change"
DETAIL_TYPE_TEST = "Vector DB Job Test"
RESOURCE_PREFIX = "jobwatch:job/"
"""`Resources` is `jobwatch:job/<jobKey>`: stable per job, matchable with a `prefix` pattern."""

MAX_ENTRY_BYTES = 262_144
"""An entry (Source + DetailType + Detail + Resources, + 14 bytes for Time) must be *under* this."""
TIME_BYTES = 14
ENTRY_SAFETY_BYTES = 1_024
"""Headroom below the limit, so a rounding difference in how EventBridge counts never fails an entry."""
MAX_DETAIL_TYPE_CHARS = 128
MAX_RESOURCE_CHARS = 2_048
CLAIM_LEASE_S = 120.0
"""Longer than one PutEvents can take with botocore's own retries (4 attempts, 10 s read timeout)."""
THROTTLE_WAIT_S = 2.0
"""EventBridge says nothing about how long to wait after throttling: pause the batch this long."""

THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})
PERMANENT_CODES = frozenset(
    {
        # Documented as non-retryable for a PutEvents entry (PutEventsResultEntry.ErrorCode):
        "AccessDeniedException",
        "InvalidAccountIdException",
        "InvalidArgument",
        "MalformedDetail",
        "RedactionFailure",
        "NotAuthorizedForSourceException",
        "NotAuthorizedForDetailTypeException",
        # Errors of the call itself that the same request can never get past:
        "ValidationException",
        "ResourceNotFoundException",
    }
)
"""Codes no retry can get past: the entry, the bus name or the function's rights must change first."""


class EventsClient(Protocol):
    """What the channel uses of boto3's `events` client."""

    def put_events(self, *, Entries: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]: ...


def detail_type(event: str) -> str:
    """The DetailType rules match on: phase changes, health events, or test notifications."""
    if event == Event.TEST.value:
        return DETAIL_TYPE_TEST
    if event in HEALTH_EVENTS:
        return DETAIL_TYPE_HEALTH
    return DETAIL_TYPE_STATE


def resource_of(job_key: str) -> str:
    return f"{RESOURCE_PREFIX}{job_key}"


def entry_size(entry: Mapping[str, Any]) -> int:
    """The entry's size as EventBridge counts it (UTF-8 bytes; `Time` counts 14)."""
    size = TIME_BYTES if entry.get("Time") is not None else 0
    for name in ("Source", "DetailType", "Detail"):
        size += utf8_len(str(entry.get(name) or ""))
    return size + sum(utf8_len(str(resource)) for resource in entry.get("Resources") or ())


def _occurred(transition: Transition) -> datetime | None:
    try:
        return datetime.fromisoformat(transition.occurred_at)
    except ValueError:
        return None  # EventBridge then stamps the time it received the event


# -- the channel ----------------------------------------------------------------------------------------


def _classify(code: str, message: str, where: str) -> SendResult:
    detail = f"{where} {code}: {message}"[:300]
    if code in THROTTLING_CODES:
        return SendResult(SendOutcome.RATE_LIMITED, detail, THROTTLE_WAIT_S)
    if code in PERMANENT_CODES:
        return SendResult(SendOutcome.PERMANENT, detail)
    return SendResult(SendOutcome.RETRY, detail)


def classify_answer(answer: Mapping[str, Any]) -> SendResult:
    """The outcome of a PutEvents call of one entry that raised nothing."""
    entries = answer.get("Entries") or [{}]
    entry = entries[0] if isinstance(entries[0], Mapping) else {}
    if not answer.get("FailedEntryCount") and entry.get("EventId"):
        return DELIVERED
    code = str(entry.get("ErrorCode") or "NoEventId")
    return _classify(code, str(entry.get("ErrorMessage") or "the entry was not accepted"), "entry failed:")


def classify_error(exc: Exception) -> SendResult:
    """The outcome of a PutEvents call that raised."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return _classify(
            str(error.get("Code") or "ClientError"), str(error.get("Message") or ""), "call failed:"
        )
    if isinstance(exc, BotoCoreError):  # no answer: connection, timeout, endpoint
        return SendResult(SendOutcome.RETRY, f"no answer: {type(exc).__name__}: {exc}"[:300])
    return SendResult(SendOutcome.RETRY, repr(exc)[:300])


class EventBridgeChannel:
    def __init__(
        self, destination: EventBridgeDestination, events_client: EventsClient, tuning: ChannelTuning
    ) -> None:
        self._bus = destination.bus
        self._client = events_client
        self.limits = ChannelLimits(
            name=destination.id,
            metric_prefix="EventBridge",
            max_retry_after_s=tuning.max_retry_after_s,
            max_attempts=tuning.max_attempts,
            retry_base_s=tuning.retry_base_s,
            claim_lease_s=CLAIM_LEASE_S,
            ordered=False,
        )

    def render(self, notice: Notice) -> dict[str, Any]:
        """The PutEvents entry: the whole event as `Detail`, shrunk only if it would not fit."""
        t = notice.transition
        entry: dict[str, Any] = {
            "EventBusName": self._bus,
            "Source": SOURCE,
            "DetailType": detail_type(str(t.event)),
            "Resources": [resource_of(t.job_key)],
        }
        occurred = _occurred(t)
        if occurred is not None:
            entry["Time"] = occurred
        budget = MAX_ENTRY_BYTES - ENTRY_SAFETY_BYTES
        for detail in map(event_json, shrinking(t.to_wire())):
            entry["Detail"] = detail
            if entry_size(entry) < budget:
                break
        return entry

    def problems(self, payload: Mapping[str, Any]) -> list[str]:
        found = []
        size = entry_size(payload)
        if size >= MAX_ENTRY_BYTES - ENTRY_SAFETY_BYTES:
            found.append(f"entry is {size:,} bytes even after truncation; EventBridge takes under 256 KB")
        if str(payload.get("Source", "")).startswith("aws."):
            found.append("Source must not start with 'aws.'")
        if not 0 < len(str(payload.get("DetailType", ""))) <= MAX_DETAIL_TYPE_CHARS:
            found.append(f"DetailType must be 1 to {MAX_DETAIL_TYPE_CHARS} characters")
        if any(len(str(r)) > MAX_RESOURCE_CHARS for r in payload.get("Resources") or ()):
            found.append(f"a resource is longer than {MAX_RESOURCE_CHARS} characters")
        return found

    def send(self, payload: Mapping[str, Any]) -> SendResult:
        try:
            answer = self._client.put_events(Entries=[payload])
        except Exception as exc:
            return classify_error(exc)
        return classify_answer(answer)
