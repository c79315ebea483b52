"""The interfaces the application needs from the outside world, declared once.

Adapters in `jobwatch.adapters` implement them against AWS and HTTP; the test devkit implements them
in memory (`jobwatch_devkit.fakes`) for the component tier, which runs the application with no
sockets. They are Protocols, so an adapter never inherits from the application, and a contract test
(tests/contract/test_port_contracts.py) holds each fake to the same behaviour as its adapter.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from jobwatch.domain.model import Health, JobSpec, Quiet, Snapshot, TrackedJob, Transition, Watch
from jobwatch.domain.routing import Route
from jobwatch.domain.slack_interaction import Outcome as SlackOutcome
from jobwatch.sources.base import HttpRequest, HttpResponse


class ConflictError(Exception):
    """Another writer advanced the job first (an overlapping poller run): this run must not notify."""


@dataclass(frozen=True, slots=True)
class PendingTransition:
    """A transition recorded with its job's state but not yet published (the outbox)."""

    transition: Transition
    recorded_at: float
    attempts: int


class SecretUnavailableError(Exception):
    """A secret could not be read or has no usable value; the message names the secret, not the value."""


class Clock(Protocol):
    """Wall-clock time: tests move it forward instead of sleeping."""

    def now(self) -> float:
        """Epoch seconds."""
        ...

    def now_iso(self) -> str:
        """The same instant as ISO 8601 UTC with milliseconds and `Z`."""
        ...


class JobStore(Protocol):
    """Tracked jobs, their owed transitions (an outbox inside each job) and their settled history.

    Every state change is one write conditional on the version read, so of two overlapping runs only
    one records a transition; `save_state` raises `ConflictError` for the other.
    """

    def add_job(
        self, spec: JobSpec, now_iso: str, *, initial_snapshot: Snapshot | None = None
    ) -> tuple[TrackedJob, bool]: ...

    def get_job(self, key: str) -> TrackedJob | None: ...

    def delete_job(self, key: str) -> bool: ...

    def pollable_pages(self, shards: Sequence[int] | None = None) -> Iterator[list[TrackedJob]]:
        """Active jobs of these shards (None: every shard), page by page."""
        ...

    def all_jobs(self) -> list[TrackedJob]: ...

    def jobs_by_creation(
        self, after: tuple[str, str] | None, limit: int
    ) -> tuple[list[TrackedJob], tuple[str, str] | None]:
        """Up to `limit` (at most 100) jobs created after `after` ((createdAt, key)), oldest first,
        and where the next call goes on from (None: nothing more). What `GET /jobs` pages through,
        without reading every job; jobs deleted meanwhile are skipped, the cursor still moves."""
        ...

    def save_state(
        self,
        job: TrackedJob,
        snapshot: Snapshot | None,
        health: Health,
        snapshot_changed: bool,
        transitions: Sequence[Transition],
        now_iso: str,
        now_s: float,
    ) -> TrackedJob: ...

    def save_health(self, job: TrackedJob, health: Health) -> TrackedJob: ...

    def save_quiet(self, job: TrackedJob, quiet: Quiet, health: Health) -> TrackedJob:
        """Snooze or mute set or cleared: stored with the next version, only if the job is still at
        `job.version` (ConflictError otherwise: read it again and retry)."""
        ...

    def recent_transitions(self, key: str, limit: int = 20) -> list[Transition]: ...

    # -- the outbox ------------------------------------------------------------------------------

    def pending_transitions(self) -> list[PendingTransition]: ...

    def mark_published(self, transition: Transition, message_id: str, now_s: float) -> None: ...

    def mark_dead_lettered(self, transition: Transition, reason: str, now_s: float) -> None: ...

    def note_publish_failure(self, transition: Transition) -> None: ...

    def transition_standing(self, transition_id: str) -> str | None:
        """PUBLISHED or DEAD_LETTERED once settled, OWED while in the outbox, None when unknown."""
        ...


class Claim(StrEnum):
    CLAIMED = "claimed"
    """This worker may send now."""
    DONE = "done"
    """Already delivered or refused for good: skip."""
    BUSY = "busy"
    """Another worker holds a live lease: look again later."""


class ShardLeases(Protocol):
    """Who polls a shard in a tick (D44): of every run that asks for the same shard and tick, or for an
    older tick after a newer one was taken, exactly one gets it. The engine's redeliveries, a
    duplicated schedule and late orders therefore never poll a shard twice in a cycle."""

    def take(self, shard: int, tick_s: float, holder: str) -> bool:
        """True for the first taker of this shard at this tick; False if this tick or a later one
        was already taken."""
        ...


class ShardOrders(Protocol):
    """Hands shard orders to the poll workers (SQS with a Lambda event source mapping, D44)."""

    def send(self, bodies: Sequence[str]) -> int:
        """Queue these orders; returns how many were accepted (the rest waits for the next tick)."""
        ...


class DeliveryLedger(Protocol):
    """Per (channel, transition) delivery claims, and the lease of the one deferred copy that stands
    for a waiting transition. This is what makes delivery exactly-once per channel."""

    def claim(self, channel: str, transition_id: str, lease_s: float, now_s: float) -> Claim: ...

    def finish(self, channel: str, transition_id: str, state: str, detail: str, now_s: float) -> None:
        """Record DELIVERED or FAILED_PERMANENT; either way the transition is never sent again."""
        ...

    def release(self, channel: str, transition_id: str) -> None:
        """Give a claim back after a retryable failure."""
        ...

    def state(self, channel: str, transition_id: str, now_s: float | None = None) -> str | None:
        """IN_PROGRESS, DELIVERED, FAILED_PERMANENT, STALE (an expired lease, given `now_s`) or None."""
        ...

    def waiting_copy(self, channel: str, transition_id: str, now_s: float) -> str | None: ...

    def hand_wait_to(
        self, channel: str, transition_id: str, token: str, previous: str | None, now_s: float, lease_s: float
    ) -> bool: ...

    def routing(self, transition_id: str) -> list[dict[str, Any]] | None:
        """Where the notifier sent a transition (its deliveries as wire dicts), None before it did."""
        ...

    def record_routing(
        self,
        transition_id: str,
        deliveries: list[dict[str, Any]],
        now_s: float,
        previous: str | None = None,
    ) -> list[dict[str, Any]]:
        """Keep a transition's deliveries (and its job's previous transition id); the first record
        stands (a redelivered or concurrently handled message gets the same destinations even if
        the routes changed meanwhile)."""
        ...

    def routed_previous(self, transition_id: str) -> str | None:
        """The previous transition id recorded with a transition's routing (None: none, or not routed)."""
        ...


class WatchStore(Protocol):
    """Watches (auto-discovery) and the upstream jobs each one already handed over."""

    def add(self, watch: Watch) -> tuple[Watch, bool]: ...

    def get(self, watch_id: str) -> Watch | None: ...

    def list(self) -> list[Watch]: ...

    def delete(self, watch_id: str) -> bool: ...

    def mark_primed(self, watch_id: str, now_iso: str) -> None: ...

    def seen_job_ids(self, watch_id: str) -> set[str]: ...

    def mark_seen(self, watch_id: str, job_id: str, job_key: str, now_iso: str) -> None: ...


class Publisher(Protocol):
    """Publishes a transition event once (the transitions topic); returns the message id."""

    def publish(self, transition: Transition) -> str: ...


class EmailPublisher(Protocol):
    """Publishes the rendered alert e-mail of a transition to the e-mail topic; returns the message id."""

    def publish_email(self, transition: Transition, destination: str) -> str:
        """`destination` (the destination id) goes with the message: subscriptions filter on it."""
        ...


class Secrets(Protocol):
    """Reads a secret's value by name; raises `SecretUnavailableError` naming the secret, never the value."""

    def get(self, name: str) -> str: ...


class SecretNames(Protocol):
    """Whether a secret exists, without reading its value (registration refuses a name with a typo)."""

    def exists(self, name: str) -> bool: ...


class RouteStore(Protocol):
    """The stored routes (docs/decisions.md, D33); none stored means the deployment's defaults."""

    def list(self) -> list[Route]: ...

    def get(self, name: str) -> Route | None: ...

    def put(self, route: Route) -> bool:
        """Create or replace; True when it created."""
        ...

    def delete(self, name: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class ThreadRoot:
    """A job's root message in a Slack channel: edited in place, replied to in its thread."""

    channel: str
    ts: str


class ThreadStore(Protocol):
    """Where each (Slack destination, job) keeps its root message."""

    def root(self, destination_id: str, job_key: str) -> ThreadRoot | None: ...

    def save_root(self, destination_id: str, job_key: str, root: ThreadRoot) -> None: ...


class Upstream(Protocol):
    """The poller's side of HTTP: sends one source request, returns the response or raises PollError.

    Connection reuse, timeouts and the endpoint rules on every connection are the adapter's; the
    per-endpoint concurrency, rate and rests stay in the application (`app.gates`).
    """

    async def fetch(self, request: HttpRequest) -> HttpResponse: ...


class DeliveryQueue(Protocol):
    """A sender's own queue: where a message waits (a delayed copy) and where it is parked for good."""

    def send_later(self, body: str, delay_s: int, attributes: dict[str, str]) -> None:
        """Put a copy of `body` back with a delay; attributes are strings (numbers as text)."""
        ...

    def retry_later(self, receipt_handle: str, delay_s: int) -> None:
        """Let the queue offer a received message again after `delay_s` (spends one of its receives)."""
        ...

    def dead_letter(self, body: str, reason: str, attributes: Mapping[str, str] | None = None) -> None:
        """Park a message for an operator, with the reason (and the destination it failed for, so a
        redrive goes only there)."""
        ...


class EmailSubscriptions(Protocol):
    """The alert e-mail topic's subscriptions for routes' e-mail destinations.

    An e-mail destination with addresses is delivered by one publish to the topic with the message
    attribute `destination` = its id, so each address holds one subscription (SNS keeps one per
    address and topic) whose filter policy is `{"destination": [<the ids of every e-mail
    destination listing it>]}`. The topic's standing subscribers (no filter on `destination`) are
    neither listed nor touched.
    """

    def subscribed(self) -> dict[str, tuple[str, ...] | None]:
        """Address -> the destination ids its filter names; None while the address has not confirmed
        (SNS shows no filter, and allows no change, before that)."""
        ...

    def subscribe(self, address: str, destination_ids: Sequence[str]) -> None:
        """Subscribe the address with that filter (it confirms once), or re-point its confirmed
        subscription to it without a new confirmation."""
        ...

    def unsubscribe(self, address: str) -> None: ...


class ReplayGuard(Protocol):
    """Remembers the signed requests already acted on, until they would be refused as stale anyway."""

    def first_use(self, key: str, expires_at_s: float) -> bool:
        """True the first time `key` is seen (and remembered until `expires_at_s`); False after."""
        ...


class InteractionResponder(Protocol):
    """Updates the Slack message a button was clicked on, to show what the click did."""

    def respond(self, outcome: SlackOutcome) -> bool:
        """True when Slack took the update; False (logged, never raised) when it could not be sent."""
        ...
