"""What the lab injects around the code under test, and the AWS clients it hands that code.

Around the poller: `RunFaults` (crash points, DynamoDB and SNS errors before or after the call, decided
per call from the seed), `FaultStore` (the job store with those fault points and the overlap
rendezvous) and `FlakyPublisher` (SNS). Around the notifier: `VisibilitySpy` (SQS as the notifier
sees it, its delays kept in fake time), `EmailTopic` (the alert e-mail topic failing before or after a
publish) and `SINK_FAULTS` (the Slack sink's scripted answers). `AtomicWrites` makes moto's DynamoDB
writes atomic as DynamoDB's are; `Container` is one warm Lambda container's clients.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

import boto3
from botocore.config import Config

from jobwatch.adapters.secrets import SecretResolver
from jobwatch.adapters.sns import SnsEmailPublisher, SnsPublisher
from jobwatch.domain.model import Health, Snapshot, TrackedJob, Transition
from jobwatch.ports import JobStore, PendingTransition

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_sns.client import SNSClient
    from mypy_boto3_sqs.client import SQSClient

__all__ = [
    "CLIENT_CONFIG",
    "P_EMAIL_PUBLISH_AFTER",
    "P_EMAIL_PUBLISH_BEFORE",
    "SINK_FAULTS",
    "AtomicWrites",
    "Container",
    "Crash",
    "EmailTopic",
    "FaultStore",
    "FlakyPublisher",
    "InjectedAwsError",
    "RunFaults",
    "VisibilitySpy",
    "dynamodb_client",
]

T = TypeVar("T")

CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 2},
    connect_timeout=3,
    read_timeout=30,
    max_pool_connections=32,
)


class Crash(BaseException):
    """The process dies here: raised at a fault point, never caught by jobwatch's `except Exception`."""


class InjectedAwsError(Exception):
    """An AWS call that failed as far as the caller can tell (it may have been applied)."""


def _chance(*parts: object) -> float:
    """A uniform number in [0, 1) that depends only on `parts` (thread order cannot change it)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass
class RunFaults:
    """What to inject into one poller run, decided per call from the seed (thread-safe)."""

    tag: str
    crash_at: int | None = None
    """Die at this fault point of the run (counted in the order the run reaches them)."""
    store_error_p: float = 0.0
    outbox_error_p: float = 0.0
    publish_error_p: float = 0.0
    sns_down: bool = False
    """Every publish fails before reaching SNS (an outage spanning cycles)."""
    dead: bool = False
    crashed_at: str | None = None
    points: int = 0
    failed_keys: set[str] = field(default_factory=set)
    injected: Counter[str] = field(default_factory=Counter)
    _calls: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def point(self, where: str, key: str) -> None:
        """A place the process may die."""
        with self._lock:
            if self.dead:
                raise Crash(f"{self.tag}: already dead")
            self.points += 1
            if self.points == self.crash_at:
                self.dead = True
                self.crashed_at = where
                self.injected[f"crash:{where}"] += 1
                raise Crash(f"{self.tag}: crash at {where} ({key})")

    def kill(self, where: str) -> None:
        """The process is killed here (a Lambda timeout): like a crash, wherever the run is."""
        with self._lock:
            self.dead = True
            self.crashed_at = f"kill:{where}"
            self.injected[f"kill:{where}"] += 1
        raise Crash(f"{self.tag}: killed at {where}")

    def note(self, kind: str) -> None:
        with self._lock:
            self.injected[kind] += 1

    def _error(self, op: str, key: str, p: float) -> str | None:
        if not p:
            return None
        with self._lock:
            self._calls[f"{op}|{key}"] += 1
            attempt = self._calls[f"{op}|{key}"]
        roll = _chance(self.tag, "error", op, key, attempt)
        if roll >= p:
            return None
        return "before" if roll < p / 2 else "after"

    def around(self, op: str, key: str, call: Callable[[], T], p: float, *, job_level: bool = False) -> T:
        self.point(f"{op}:before", key)
        when = self._error(op, key, p)
        if when == "before":
            self._fail(op, key, when, job_level)
        result = call()
        if when == "after":
            self._fail(op, key, when, job_level)
        self.point(f"{op}:after", key)
        return result

    def _fail(self, op: str, key: str, when: str, job_level: bool) -> None:
        with self._lock:
            self.injected[f"{op}-error-{when}"] += 1
            if job_level:
                self.failed_keys.add(key)
        raise InjectedAwsError(
            f"injected {op} failure ({'applied, ' if when == 'after' else ''}caller saw it)"
        )


class FaultStore:
    """A job store (`ports.JobStore`) with fault points around every call the poller makes, and an
    optional rendezvous; what it does not intercept goes to the store it wraps."""

    def __init__(self, store: JobStore, faults: RunFaults, barrier: threading.Barrier | None = None) -> None:
        self.store = store
        self.faults = faults
        self.barrier = barrier

    def save_state(
        self,
        job: TrackedJob,
        snapshot: Snapshot | None,
        health: Health,
        snapshot_changed: bool,
        transitions: Sequence[Transition],
        now_iso: str,
        now_s: float,
    ) -> TrackedJob:
        f = self.faults
        return f.around(
            "save_state",
            job.key,
            lambda: self.store.save_state(
                job, snapshot, health, snapshot_changed, transitions, now_iso, now_s
            ),
            f.store_error_p,
            job_level=True,
        )

    def save_health(self, job: TrackedJob, health: Health) -> TrackedJob:
        f = self.faults
        return f.around(
            "save_health",
            job.key,
            lambda: self.store.save_health(job, health),
            f.store_error_p,
            job_level=True,
        )

    def mark_published(self, transition: Transition, message_id: str, now_s: float) -> None:
        f = self.faults
        f.around(
            "mark_published",
            transition.transition_id,
            lambda: self.store.mark_published(transition, message_id, now_s),
            f.outbox_error_p,
        )

    def note_publish_failure(self, transition: Transition) -> None:
        f = self.faults
        f.around(
            "note_publish_failure",
            transition.transition_id,
            lambda: self.store.note_publish_failure(transition),
            f.outbox_error_p,
        )

    def mark_dead_lettered(self, transition: Transition, reason: str, now_s: float) -> None:
        f = self.faults
        f.around(
            "mark_dead_lettered",
            transition.transition_id,
            lambda: self.store.mark_dead_lettered(transition, reason, now_s),
            0.0,
        )

    def pending_transitions(self) -> list[PendingTransition]:
        f = self.faults
        return f.around("pending_transitions", "", self.store.pending_transitions, f.outbox_error_p)

    def pollable_pages(self, shards: Sequence[int] | None = None) -> Iterator[list[TrackedJob]]:
        """All pages are read before the first is handed out; then both overlapping runs meet."""
        f = self.faults
        pages = f.around("pollable_pages", "", lambda: list(self.store.pollable_pages(shards)), 0.0)
        if self.barrier is not None:
            with contextlib.suppress(threading.BrokenBarrierError):
                self.barrier.wait(timeout=60)
        yield from pages

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


class VisibilitySpy:
    """The SQS client handed to the Slack sender: delays are kept in fake time, not applied by SQS.

    Visibility changes are noted (the lab hides the record itself, see `Drains.drain_slack`); a message
    sent with DelaySeconds is held by the lab and sent when its delay has passed in fake time.
    Everything else goes to SQS as is.
    """

    def __init__(
        self, sqs: SQSClient, now: Callable[[], float], delayed: list[tuple[float, dict[str, Any]]]
    ) -> None:
        self._sqs = sqs
        self._now = now
        self._delayed = delayed
        self._lock = threading.Lock()
        self.requested: dict[str, float] = {}

    def change_message_visibility(self, **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            self.requested[str(kwargs["ReceiptHandle"])] = float(kwargs["VisibilityTimeout"])
        return {}

    def send_message(self, **kwargs: Any) -> Any:
        delay = float(kwargs.pop("DelaySeconds", 0) or 0)
        if not delay:
            return self._sqs.send_message(**kwargs)
        with self._lock:
            self._delayed.append((self._now() + delay, kwargs))
        return {"MessageId": f"delayed-{len(self._delayed)}"}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)


class FlakyPublisher:
    """The real SNS publisher; fails before publishing, or after SNS accepted the message."""

    def __init__(self, real: SnsPublisher, faults: RunFaults) -> None:
        self.real = real
        self.faults = faults

    def publish(self, transition: Transition) -> str:
        f = self.faults
        if f.sns_down:
            f.point("publish:before", transition.transition_id)
            f.note("sns-outage-publish")
            raise InjectedAwsError("SNS unavailable (outage)")
        return f.around(
            "publish", transition.transition_id, lambda: self.real.publish(transition), f.publish_error_p
        )


_WRITE_LOCK = threading.Lock()


class AtomicWrites:
    """A DynamoDB client whose writes are applied one at a time, as DynamoDB applies them per item.

    moto server is threaded and checks a write's condition, then applies it, with nothing in between
    to stop a concurrent write: two conditional puts of one key can both succeed (measured here: about
    1 race in 300). Real DynamoDB evaluates the condition and writes atomically, so a lock around
    the write calls restores exactly that and nothing more: reads, polls and publishes still overlap,
    and which run or sender wins is still decided by the conditions.
    """

    _WRITES = frozenset(
        {"put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"}
    )

    def __init__(self, client: DynamoDBClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name not in self._WRITES:
            return attribute

        def write(**kwargs: Any) -> Any:
            with _WRITE_LOCK:
                return attribute(**kwargs)

        return write


def dynamodb_client(session: Any) -> DynamoDBClient:
    """A DynamoDB client of the lab: boto3's, with its writes applied one at a time (`AtomicWrites`)."""
    return cast("DynamoDBClient", AtomicWrites(session.client("dynamodb", config=CLIENT_CONFIG)))


@dataclass
class Container:
    """What one warm Lambda container holds: its own boto3 session, clients and secret cache."""

    dynamodb: DynamoDBClient
    sns: SNSClient
    secrets: SecretResolver

    @classmethod
    def create(cls) -> Container:
        session = boto3.session.Session()
        return cls(
            dynamodb=dynamodb_client(session),
            sns=session.client("sns", config=CLIENT_CONFIG),
            secrets=SecretResolver(session.client("secretsmanager", config=CLIENT_CONFIG)),
        )


P_EMAIL_PUBLISH_BEFORE = 0.08
P_EMAIL_PUBLISH_AFTER = 0.08


class EmailTopic:
    """The alert e-mail topic as the e-mail sender sees it: with faults on, a publish fails before
    reaching SNS, or after SNS took it (the sender cannot tell the two apart and tries again)."""

    def __init__(self, real: SnsEmailPublisher, rng: random.Random) -> None:
        self.real = real
        self.rng = rng
        self.faults = False
        self.lock = threading.Lock()
        self.ambiguous: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()

    def publish_email(self, transition: Transition, destination: str) -> str:
        with self.lock:
            roll = self.rng.random() if self.faults else 1.0
        if roll < P_EMAIL_PUBLISH_BEFORE:
            with self.lock:
                self.injected["email:publish-error-before"] += 1
            raise RuntimeError("SNS unavailable (injected)")
        message_id = self.real.publish_email(transition, destination)
        if roll < P_EMAIL_PUBLISH_BEFORE + P_EMAIL_PUBLISH_AFTER:
            with self.lock:
                self.injected["email:publish-error-after"] += 1
                self.ambiguous[transition.transition_id] += 1
            raise RuntimeError("answer lost after SNS accepted the publish (injected)")
        return message_id


SINK_FAULTS: dict[str, float] = {
    "rate_limited": 3,
    "server_error": 2,
    "service_unavailable": 1,
    "drop": 2,
    "accept_then_drop": 1.5,
    "accept_then_429": 1,
    "accept_then_500": 1,
}
