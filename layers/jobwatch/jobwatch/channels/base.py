"""The channel interface: where notifications go, what each destination allows, and how to send.

A channel is one module: it declares its limits (`ChannelLimits`: pace, order, retry budget, claim
lease) and implements `render` (pure: a transition into the destination's payload), `problems` (why a
payload breaks the destination's documented limits) and `send` (the I/O, classifying every answer
as delivered, retry later, rate limited, refused for good, or blocked). Everything else about
delivery — claims per transition, per-job order, retries with backoff, dead-letters and the SQS
batch report — belongs to the one engine in `jobwatch.delivery.engine`, so adding a channel never
copies that loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from jobwatch.domain.model import Transition


@dataclass(frozen=True, slots=True)
class ChannelLimits:
    name: str
    """Claim namespace and log name (`slack`, `email`): a delivery is exactly-once per (name, transition)."""
    metric_prefix: str
    """Metric names are this prefix plus a `ChannelMetric` (`SlackDelivered`)."""
    min_interval_s: float = 0.0
    """Pause between two sends of one batch (Slack: about one message a second)."""
    max_retry_after_s: float = 0.0
    """A rate-limit wait up to this long is slept through in process; longer ones defer the batch."""
    max_attempts: int = 10
    """Failed sends tried before the message is dead-lettered as failed for good."""
    retry_base_s: float = 30.0
    """Delay after the first failed send; doubles per attempt up to 900 s (SQS's longest delay)."""
    claim_lease_s: float = 60.0
    """How long a claim keeps other workers away: longer than one send can take."""
    ordered: bool = False
    """Keep each job's transitions in order (a transition waits for its predecessor)."""
    order_wait_s: float = 0.0
    """Longest a transition waits for a predecessor that is out of sight (ordered channels)."""
    order_retry_s: float = 5.0
    """First re-check of a waiting transition; doubles up to 60 s."""


@dataclass(frozen=True, slots=True)
class ChannelTuning:
    """The deployment's knobs a channel turns into its limits (from the notifier's settings)."""

    min_interval_s: float = 1.0
    max_retry_after_s: float = 5.0
    max_attempts: int = 30
    retry_base_s: float = 30.0
    order_wait_s: float = 3600.0
    order_retry_s: float = 5.0


class SendOutcome(StrEnum):
    DELIVERED = "DELIVERED"
    RETRY = "RETRY"
    """A failure that may pass (5xx, timeout, no answer): tried again with backoff, up to the cap."""
    RATE_LIMITED = "RATE_LIMITED"
    """The destination asked to wait (`retry_after_s`); not counted as a failed attempt."""
    PERMANENT = "PERMANENT"
    """Refused for good (bad webhook, revoked token, unknown channel): dead-lettered once, alarmed."""
    BLOCKED = "BLOCKED"
    """The channel cannot send anything now (its secret is unavailable): counts as a failed attempt,
    and the rest of the batch waits `retry_after_s`."""


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: SendOutcome
    detail: str = ""
    """What the destination said (status, error code): logged and kept with a dead-letter."""
    retry_after_s: float | None = None


DELIVERED = SendResult(SendOutcome.DELIVERED)


@dataclass(frozen=True, slots=True)
class Notice:
    """What one destination is asked to show: a transition, and what the routes that sent it here
    add (mentions to put in front, for Slack; the route names, for the record)."""

    transition: Transition
    mentions: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()


class Channel(Protocol):
    """What every channel declares and does."""

    @property
    def limits(self) -> ChannelLimits: ...

    def render(self, notice: Notice) -> Any:
        """The destination's payload for one notice (pure)."""
        ...

    def problems(self, payload: Any) -> list[str]:
        """Every way `payload` breaks the destination's limits; empty means safe to send."""
        ...

    def send(self, payload: Any) -> SendResult:
        """Send once and classify the answer; expected failures are results, never exceptions."""
        ...
