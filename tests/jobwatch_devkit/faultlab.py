"""Fault-injection engine: random job stories against the real poller and Slack sender, then invariants.

This is the proof of issue 3 ("nothing lost, nothing doubled, nothing false"). One *round* registers
N random *schedules* (one job each) in one `LocalDeployment` (moto server + upstream simulators + Slack
sink), runs poll cycles through `jobwatch.poller.run_cycle` until every schedule's story is told and
every job has settled, drains the Slack queue through `jobwatch.delivery.engine.deliver_batch` in between, and
then checks what every channel received against ground truth computed from the scripts alone.

Schedules (`make_schedule`)
    A source (mostly weaviate-export and zilliz-import-v1; also weaviate-backup, zilliz-import-v2,
    milvus-import, pinecone-import) and a script of simulator steps: a random walk of upstream states
    (progress moving inside a phase, phases going back and forth, ending in a terminal state or not, or
    in a run of "not found" that must end as LOST), with *gaps* of upstream faults between states (HTTP
    5xx, 429 with and without Retry-After (1 s is waited out, 30 s rests the endpoint for the rest of
    the cycle, 300 s also holds the job past the next cycles), HTML pages, truncated JSON, arrays,
    schema drift, API error codes in HTTP 200, hangs and slow answers around the read timeout, resets,
    disconnects, 401/403 and vendor auth codes, 404 / "job does not exist"), undocumented statuses
    sprinkled anywhere, and slow but successful answers. A few jobs carry a `notify.events` filter (a
    random subset of events). Jobs are spread over several simulators (endpoints), because Zilliz's
    documented 20 requests/s apply per endpoint and would otherwise pace a whole round.

    Every step is *held*: the simulator serves it to every request until the engine advances the job.
    The engine advances a job after a cycle in which it was polled and its result was recorded, so an
    upstream state lasts at least one complete cycle, as real states last minutes. This is what makes
    ground truth exact although overlapping runs poll a job twice and a crash abandons a cycle halfway:
    both runs of an overlap see the same state, and after a crash (or an injected DynamoDB error for
    that job) the same state is served again to the next cycle instead of being skipped unseen.

Ground truth (`expected_story`)
    Computed from the script with the deployment's thresholds: the first observation (QUEUED, STARTED,
    or a terminal event), each later phase change, LOST after `lost_after` not-found answers in a row,
    one UNREACHABLE (AUTH_FAILED for auth errors) when `unreachable_after` polls in a row failed and one
    RECOVERED at the next successful known state, minus what the job's notify filter drops. Faults and
    undocumented statuses alone produce nothing.
    Poll-error counting is per *poll*, not per upstream step, so an overlap without rendezvous or a cycle
    repeated after a crash may count one step twice (the store says so: "only brings an alert one poll
    earlier"). Gaps are therefore generated so that this cannot change the outcome: a gap holds exactly
    one fault (at most 2 counted < unreachable_after = 3), or a long run of faults of a single class
    (>= unreachable_after: an alert of a known kind, whenever it fires inside the gap), and a not-found
    run is either one step or >= lost_after steps right after a good state (LOST, whenever it fires).
    The cycle planner keeps the multiplicity of any step at 2 or less: a cycle after one that left jobs
    unadvanced (crash, aborted cycle, injected store error) is clean, and staggered overlaps carry no
    crash and no store error. With that, the whole event sequence of every job, health events included,
    is known exactly in advance. STALLED / RESUMED / OVERDUE are kept out by huge thresholds.

Faults besides upstream ones (per cycle, from the seed)
    - SNS: a publisher wrapper fails before the real publish, or *after* it (SNS accepted it, the caller
      saw an error): the outbox must republish, SNS subscribers then see it twice and Slack must dedupe.
      Outages: every publish fails for 2-4 cycles, so a job owes several transitions at once.
    - Crashes: `Crash` (a BaseException, so no `except Exception` in jobwatch swallows it) raised at the
      k-th fault point the run reaches (k uniform over the points of the previous cycle): before/after a
      state write, a health write, a publish, settling an outbox entry, reading the outbox or the
      pollable jobs, so in the middle of a batch as often as not. Once crashed, every later call of that
      run raises too (the process is gone); the next cycles must recover everything from the outbox.
    - DynamoDB errors seen by the caller, before the write or after it was applied, on state/health
      writes (one job affected) and on outbox bookkeeping (mark published, count a failure, read the
      outbox: in the outbox drain, these must not take the cycle down with them).
    - Overlapping runs (a duplicated EventBridge invocation): two `run_cycle` at once in two threads with
      separate boto3 sessions and `PollerDeps`; either with a rendezvous (both have read every job before
      either writes: every transition is raced) or staggered by up to 0.3 s.
    - Lambda deadline: `remaining_s` drops below the margin after a random number of polls.
    - Slack sink scripted answers before batches: `rate_limited` (429 + Retry-After, rejected),
      `server_error`, `service_unavailable`, `drop` (rejected), and `accept_then_429`,
      `accept_then_500`, `accept_then_drop` (posted, but the client saw a failure).
    - E-mail: the e-mail queue (the transitions topic's FAILED and CANCELED events) drained through the
      e-mail sender after each Slack drain, with publishes to the e-mail topic failing before or after
      SNS took them, and batches processed twice or by two senders at once.
    - SQS: the SNS envelope of an earlier message re-sent to the Slack queue; a received batch processed
      twice before deletion; a batch processed by two senders concurrently (live-lease path).
    Time is one fake clock (`PollerDeps.clock` / `now_iso`): 120 s per poll cycle, so outbox backoff
    progresses without sleeping (adaptive polling is off), and the Slack sender runs between cycles,
    one batch per second. SQS visibility is kept in that time too: a record the sender reported as
    failed comes back when the visibility it asked for or else the queue's own timeout (365 s in the
    template) has passed, and a copy the sender deferred (SendMessage with DelaySeconds: an order
    hold, Slack's Retry-After, a busy claim) is sent when its delay has passed in fake time.
    Every offer is a real SQS receive, so the redrive policy (maxReceiveCount 5) applies as in AWS;
    `slack_dead_lettered` counts what reached the DLQ (lost, unless another copy was shown);
    `slack_deferred` / `slack_collapsed` / `order_waits_expired` count deferred copies, duplicate
    waiting copies dropped, and transitions posted out of order because their predecessor did not
    arrive within `slack_order_wait_s`. Sometimes
    the sender lags (handles only 0-2 batches before the next cycle). In-process Retry-After sleeps
    cost no time. Once every script is told, a few more cycles run with publish faults, then none,
    until the outbox and the Slack queue are empty (settling).

Invariants (`RoundResult`, checked at the end of each round)
    - transitions: expected events (sum over jobs); delivered: those shown in Slack.
    - lost: expected events never shown in Slack (including ones never published, or dead-lettered).
    - duplicated: extra *clean* Slack posts per transitionId (the id is in the message's context block).
      SNS duplicates are allowed (at-least-once) and reported as `sns_redeliveries`.
    - false_alerts: distinct transitions seen on SNS or in Slack that match no expected event.
    - emails_expected / emailed / email_lost / email_false / email_duplicated: routed transitions, those
      that reached the e-mail topic, those that did not, e-mails for anything else, and extra copies
      beyond the ones explained by a publish whose answer was lost (`email_ambiguous`).
    - out_of_order_sns / out_of_order_slack: jobs whose transitions reached SNS / Slack (first copy of
      each) in another order than they were recorded in (transition ids carry the order).
    - state_mismatches: jobs whose stored phase/status (`DynamoJobStore.get_job`) differs from the last
      upstream state the script served (LOST/NOT_FOUND for lost jobs).
    - outbox_left / slack_queue_left: the outbox and the Slack queue are empty at the end.
    Diagnostics (not invariants): `spurious_poll_errors` counts polls of a good answer that failed
    anyway (the machine was too slow for the read timeout); such a job is served the same state again,
    and if jobwatch's reaction to that real poll error changed its events, that shows up above.

`ambiguous_reposts`: Slack incoming webhooks have no idempotency key. When Slack accepted a post but the
sender saw a failure (`accept_then_429`: real Slack's 429 means "rejected", so this is the pathological
case; `accept_then_500`; `accept_then_drop`: the connection broke before the answer), no sender can tell
it apart from a rejected post, and retrying shows the message again. Such extra posts are counted here
(each accepted post whose answer was not 2xx), never in `duplicated`; `duplicated` counts posts that
were answered 2xx more than once for one transition, which dedupe must prevent.

moto: its server checks a conditional write's condition and then applies it without excluding a
concurrent write, so two conditional puts of one key can both succeed, which DynamoDB never allows
(this showed up as a Slack message posted twice after two senders claimed it at once). Every DynamoDB
client of the lab therefore applies its writes one at a time (`_AtomicWrites`); everything else
overlaps.

Determinism: schedules, cycle plans and delivery faults come from `random.Random` streams seeded by the
seed; error decisions inside a run hash (seed, round, cycle, run, operation, job or transition), so
thread order does not change them. Thread interleavings (which run wins a race, which call is the k-th
fault point of an overlapping cycle) are not seeded, so fault counts can differ slightly between two
runs of one seed; the invariants must hold for every interleaving.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import hashlib
import json
import logging
import math
import random
import re
import sys
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

import boto3
import httpx
from botocore.config import Config

from jobwatch.adapters.dynamodb.jobs import DynamoJobStore
from jobwatch.adapters.dynamodb.ledger import DynamoDeliveryLedger
from jobwatch.adapters.http.upstream import HttpUpstream
from jobwatch.adapters.secrets import SecretResolver
from jobwatch.adapters.sns import SnsEmailPublisher, SnsPublisher
from jobwatch.adapters.sqs import SqsDeliveryQueue
from jobwatch.app.poll_cycle import CycleReport, PollerDeps, run_cycle
from jobwatch.channels.email import EmailChannel
from jobwatch.channels.slack_webhook import SlackWebhookChannel
from jobwatch.delivery.engine import DeliveryDeps, deliver_batch
from jobwatch.delivery.envelope import transition_from_sqs_body
from jobwatch.delivery.records import BatchReport, record_from_message
from jobwatch.domain.errors import PollErrorKind
from jobwatch.domain.model import (
    EVENT_FOR_PHASE,
    Health,
    JobSpec,
    NotifySettings,
    Phase,
    Snapshot,
    TrackedJob,
    Transition,
)
from jobwatch.observability import logger, metrics
from jobwatch.ports import JobStore, PendingTransition

from .fakes import FakeClock
from .harness import LocalDeployment
from .simulator import (
    MILVUS,
    PINECONE,
    WEAVIATE_BACKUP,
    WEAVIATE_EXPORT,
    ZILLIZ_V1,
    ZILLIZ_V2,
    Step,
    UpstreamSimulator,
    fault_api_error,
    fault_array,
    fault_disconnect,
    fault_drift,
    fault_hang,
    fault_html,
    fault_http,
    fault_malformed,
    fault_rate_limit,
    fault_reset,
    state,
)
from .slack_sink import SlackSink

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_sns.client import SNSClient
    from mypy_boto3_sqs.client import SQSClient

__all__ = [
    "Crash",
    "FaultLab",
    "InjectedAwsError",
    "LabConfig",
    "PlannedStep",
    "RoundResult",
    "Schedule",
    "expected_story",
    "lab_env",
    "make_schedule",
]

T = TypeVar("T")

CLUSTER = "in01-faultlab"
BACKEND = "s3"
TID_IN_SLACK = re.compile(r"Transition `([^`]+)`")
ALL_EVENTS = frozenset(
    {
        "QUEUED",
        "STARTED",
        "SUCCEEDED",
        "FAILED",
        "CANCELED",
        "LOST",
        "UNREACHABLE",
        "AUTH_FAILED",
        "RECOVERED",
    }
)
"""The events a schedule can produce (STALLED, RESUMED and OVERDUE are kept out by thresholds)."""
POLL_ERROR_KINDS = frozenset(kind.value for kind in PollErrorKind)
_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 2},
    connect_timeout=3,
    read_timeout=30,
    max_pool_connections=32,
)


class Crash(BaseException):
    """The process dies here: raised at a fault point, never caught by jobwatch's `except Exception`."""


class InjectedAwsError(Exception):
    """An AWS call that failed as far as the caller can tell (it may have been applied)."""


def lab_env(config: LabConfig) -> dict[str, str]:
    """Settings of the deployment under test (extra_env of `LocalDeployment`)."""
    return {
        "JOBWATCH_READ_TIMEOUT_S": str(config.read_timeout_s),
        "JOBWATCH_CONNECT_TIMEOUT_S": "1",
        "JOBWATCH_ADAPTIVE_POLLING": "false",
        "JOBWATCH_UNREACHABLE_AFTER": str(config.unreachable_after),
        "JOBWATCH_LOST_AFTER": str(config.lost_after),
        "JOBWATCH_STALL_AFTER_S": "1000000000",
        "JOBWATCH_MAX_DURATION_S": "1000000000",
        "JOBWATCH_SLACK_MIN_INTERVAL_S": "0",
        "JOBWATCH_POLL_CONCURRENCY": "128",
    }


def _chance(*parts: object) -> float:
    """A uniform number in [0, 1) that depends only on `parts` (thread order cannot change it)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _tid_order(tid: str) -> tuple[int, int]:
    """`key#7` -> (7, 1), `key#7.2` -> (7, 2): the order a job's transitions were recorded in."""
    suffix = tid.rsplit("#", 1)[1]
    version, _, index = suffix.partition(".")
    return int(version), int(index or "1")


# ---------------------------------------------------------------------------------------------------
# Schedules and ground truth
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """One script step, with what it means for ground truth."""

    step: Step
    kind: str
    """`state`, `unknown` (undocumented status), or the fault's label (`http-500`, `hang`, ...)."""
    phase: Phase | None = None
    """The phase of a known state; None for faults and unknown statuses."""
    status: str | None = None
    """The `status` jobwatch stores for this known state."""
    fault_class: str | None = None
    """`other`, `auth` or `not-found` for faults."""


@dataclass
class Schedule:
    index: int
    spec: JobSpec
    simulator: int
    """Index of the simulator (endpoint) serving this job."""
    steps: list[PlannedStep]
    expected: list[str]
    final_phase: Phase
    final_status: str
    cursor: int = 0
    """Steps fully served (advanced past, or re-served at the end)."""
    settled: bool = False
    tainted: bool = False
    """Polled in a cycle whose recording may be partial (crash, store error): it owes a clean poll."""

    @property
    def current(self) -> PlannedStep:
        return self.steps[min(self.cursor, len(self.steps) - 1)]

    @property
    def key(self) -> str:
        return self.spec.key

    def describe(self) -> str:
        return " ".join(f"{s.kind}:{s.status}" if s.kind == "state" else s.kind for s in self.steps)


StateMaker = Callable[[random.Random], tuple[Step, str]]


@dataclass(frozen=True)
class _Kit:
    """How to script one source: states per phase, undocumented words, vendor-specific faults."""

    source: str
    states: Mapping[Phase, StateMaker]
    unknown_words: tuple[str, ...]
    auth_codes: tuple[int, ...] = ()
    api_error_codes: tuple[int, ...] = ()
    not_found_codes: tuple[int, ...] = ()

    @property
    def nonterminal(self) -> list[Phase]:
        return [p for p in self.states if not p.terminal]

    @property
    def terminal(self) -> list[Phase]:
        return [p for p in self.states if p.terminal]


_ERRORS = (
    "disk full on node weaviate-2",
    "file data/3.parquet: column `vector` has dimension 768, expected 1024",
    "<!channel> quota exceeded & retried 3 times > giving up",
    "permission denied: s3://jobwatch-sim/imports",
)


def _word(words: Sequence[str], **fields: Any) -> StateMaker:
    def make(rng: random.Random) -> tuple[Step, str]:
        word = rng.choice(list(words))
        values = {k: (v(rng) if callable(v) else v) for k, v in fields.items()}
        return state(word, **values), word

    return make


def _progress(rng: random.Random) -> int:
    return rng.randint(1, 99)


def _error(rng: random.Random) -> str:
    return rng.choice(_ERRORS)


def _zilliz_v1_running(rng: random.Random) -> tuple[Step, str]:
    return state(ready=round(rng.uniform(0.0, 0.99), 2)), "ImportRunning"


def _zilliz_v1_done(rng: random.Random) -> tuple[Step, str]:
    return state(ready=1), "ImportCompleted"


def _zilliz_v1_failed(rng: random.Random) -> tuple[Step, str]:
    return state(ready=round(rng.uniform(0.0, 0.9), 2), error_message=_error(rng)), "ImportFailed"


KITS: dict[str, _Kit] = {
    WEAVIATE_EXPORT: _Kit(
        WEAVIATE_EXPORT,
        {
            Phase.RUNNING: _word(["STARTED", "TRANSFERRING"], objects=lambda r: r.randint(0, 10**6)),
            Phase.SUCCEEDED: _word(["SUCCESS"], objects=lambda r: r.randint(1, 10**6)),
            Phase.FAILED: _word(["FAILED"], error=_error),
            Phase.CANCELED: _word(["CANCELED"]),
        },
        ("REBALANCING", "PAUSED"),
    ),
    WEAVIATE_BACKUP: _Kit(
        WEAVIATE_BACKUP,
        {
            Phase.RUNNING: _word(["STARTED", "TRANSFERRING", "TRANSFERRED", "FINALIZING", "CANCELLING"]),
            Phase.SUCCEEDED: _word(["SUCCESS"], size=lambda r: round(r.uniform(0.1, 50), 3)),
            Phase.FAILED: _word(["FAILED"], error=_error),
            Phase.CANCELED: _word(["CANCELED"]),
        },
        ("COMPACTING",),
    ),
    ZILLIZ_V1: _Kit(
        ZILLIZ_V1,
        {
            Phase.RUNNING: _zilliz_v1_running,
            Phase.SUCCEEDED: _zilliz_v1_done,
            Phase.FAILED: _zilliz_v1_failed,
        },
        (),  # v1 has no status word: there is no undocumented status to serve
        auth_codes=(80001, 80002),
        api_error_codes=(80010, 80020, 65535),
    ),
    ZILLIZ_V2: _Kit(
        ZILLIZ_V2,
        {
            Phase.PENDING: _word(["Pending"], progress=0),
            Phase.RUNNING: _word(["Importing", "InProgress"], progress=_progress),
            Phase.SUCCEEDED: _word(["Completed"], progress=100),
            Phase.FAILED: _word(["Failed"], error=_error, progress=_progress),
        },
        ("Paused", "Queued"),
        auth_codes=(21119, 80001),
        api_error_codes=(40020, 65535),
    ),
    MILVUS: _Kit(
        MILVUS,
        {
            Phase.PENDING: _word(["Pending"], progress=0),
            Phase.RUNNING: _word(["Importing", "Uncommitted", "Committing"], progress=_progress),
            Phase.SUCCEEDED: _word(["Completed"], progress=100),
            Phase.FAILED: _word(["Failed"], error=_error),
        },
        ("Rebalancing",),
        auth_codes=(1800, 1400),
        api_error_codes=(1100, 65535),
        not_found_codes=(2100,),
    ),
    PINECONE: _Kit(
        PINECONE,
        {
            Phase.PENDING: _word(["Pending"]),
            Phase.RUNNING: _word(["InProgress"], progress=_progress),
            Phase.SUCCEEDED: _word(["Completed"]),
            Phase.FAILED: _word(["Failed"], error=_error),
            Phase.CANCELED: _word(["Cancelled"]),
        },
        ("Paused",),
    ),
}

SOURCE_WEIGHTS: dict[str, float] = {
    WEAVIATE_EXPORT: 0.35,
    ZILLIZ_V1: 0.35,
    WEAVIATE_BACKUP: 0.06,
    ZILLIZ_V2: 0.08,
    MILVUS: 0.08,
    PINECONE: 0.08,
}

_OTHER_FAULTS: dict[str, float] = {
    "http-5xx": 3,
    "html": 2,
    "rate-limit": 2,
    "malformed": 2,
    "array": 1,
    "drift": 2,
    "api-error": 2,
    "hang": 1.5,
    "reset": 1.5,
    "disconnect": 1,
}


def _other_fault(rng: random.Random, kit: _Kit, read_timeout_s: float) -> PlannedStep:
    label = rng.choices(list(_OTHER_FAULTS), weights=list(_OTHER_FAULTS.values()))[0]
    if label == "http-5xx":
        status = rng.choice([500, 502, 503, 504])
        return PlannedStep(fault_http(status), f"http-{status}", fault_class="other")
    if label == "html":
        return PlannedStep(fault_html(rng.choice([502, 503])), "html", fault_class="other")
    if label == "rate-limit":
        return PlannedStep(fault_rate_limit(rng.choice([1, 30, 300, None])), "http-429", fault_class="other")
    if label == "malformed":
        return PlannedStep(fault_malformed(), "malformed", fault_class="other")
    if label == "array":
        return PlannedStep(fault_array(), "malformed", fault_class="other")
    if label == "drift":
        return PlannedStep(fault_drift(), "drift", fault_class="other")
    if label == "api-error":
        code = rng.choice(kit.api_error_codes) if kit.api_error_codes else 500
        step = fault_api_error(code, f"simulated API error {code}")
        return PlannedStep(step, "api-error-in-200", fault_class="other")
    if label == "hang":
        # Around the read timeout: shorter hangs end in a closed connection, longer ones in a timeout.
        seconds = round(rng.uniform(0.5, 1.5) * read_timeout_s, 3)
        kind = "timeout" if seconds > read_timeout_s else "hang-then-close"
        return PlannedStep(fault_hang(seconds), kind, fault_class="other")
    if label == "reset":
        return PlannedStep(fault_reset(), "reset", fault_class="other")
    return PlannedStep(fault_disconnect(), "disconnect", fault_class="other")


def _auth_fault(rng: random.Random, kit: _Kit) -> PlannedStep:
    options = ["http-401", "http-403"] + (["auth-code-in-200"] if kit.auth_codes else [])
    label = rng.choice(options)
    if label == "auth-code-in-200":
        code = rng.choice(kit.auth_codes)
        return PlannedStep(fault_api_error(code, "Invalid token"), label, fault_class="auth")
    return PlannedStep(fault_http(int(label[-3:])), label, fault_class="auth")


def _not_found(rng: random.Random, kit: _Kit) -> PlannedStep:
    if kit.not_found_codes and rng.random() < 0.5:
        code = rng.choice(kit.not_found_codes)
        step = fault_api_error(code, "import job does not exist, jobID=1: importing data failed")
        return PlannedStep(step, "not-found-code", fault_class="not-found")
    return PlannedStep(fault_http(404), "http-404", fault_class="not-found")


def _unknown(rng: random.Random, kit: _Kit) -> PlannedStep:
    return PlannedStep(state(rng.choice(kit.unknown_words)), "unknown")


def _sprinkle_unknowns(
    rng: random.Random, kit: _Kit, steps: list[PlannedStep], p: float
) -> list[PlannedStep]:
    """Insert undocumented statuses at random positions (they are transparent to every counter)."""
    if not kit.unknown_words:
        return steps
    out = list(steps)
    while rng.random() < p:
        out.insert(rng.randint(0, len(out)), _unknown(rng, kit))
    return out


def _gap(rng: random.Random, kit: _Kit, config: LabConfig) -> list[PlannedStep]:
    """Faults between two known states: none, exactly one, or a long run of one class."""
    roll = rng.random()
    faults: list[PlannedStep]
    if roll < 0.45:
        faults = []
    elif roll < 0.82:
        kind = rng.choices(["other", "auth", "not-found"], weights=[75, 12, 13])[0]
        if kind == "other":
            faults = [_other_fault(rng, kit, config.read_timeout_s)]
        elif kind == "auth":
            faults = [_auth_fault(rng, kit)]
        else:
            faults = [_not_found(rng, kit)]
    else:
        length = config.unreachable_after + rng.randint(0, 2)
        if rng.random() < 0.72:
            faults = [_other_fault(rng, kit, config.read_timeout_s) for _ in range(length)]
        else:
            faults = [_auth_fault(rng, kit) for _ in range(length)]
    return _sprinkle_unknowns(rng, kit, faults, 0.12)


def _known(rng: random.Random, kit: _Kit, phase: Phase, read_timeout_s: float) -> PlannedStep:
    step, status = kit.states[phase](rng)
    if rng.random() < 0.05:  # slow but well in time
        step = step.delayed(round(rng.uniform(0.1, 0.3) * read_timeout_s * 1000))
    return PlannedStep(step, "state", phase=phase, status=status)


def make_schedule(
    rng: random.Random, index: int, job_id: str, endpoint: str, simulator: int, config: LabConfig
) -> Schedule:
    """One random job story (see the module docstring for the rules that keep ground truth exact)."""
    source = rng.choices(list(SOURCE_WEIGHTS), weights=list(SOURCE_WEIGHTS.values()))[0]
    kit = KITS[source]
    count = rng.choices([1, 2, 3, 4, 5, 6, 7], weights=[8, 14, 18, 18, 14, 10, 6])[0]
    ending = rng.random()
    lost = ending >= 0.90
    phases: list[Phase] = []
    nonterminal = kit.nonterminal
    weights = [1 if p is Phase.PENDING else 3 for p in nonterminal]
    for _ in range(count - 1):
        phases.append(rng.choices(nonterminal, weights=weights)[0])
    if lost:
        if rng.random() < 0.15:
            phases = []  # never seen at all: a job id that never existed
        else:
            phases.append(rng.choices(nonterminal, weights=weights)[0])
    elif ending < 0.72:
        phases.append(rng.choice(kit.terminal))
    else:
        phases.append(rng.choices(nonterminal, weights=weights)[0])
    steps: list[PlannedStep] = []
    for phase in phases:
        steps += _gap(rng, kit, config)
        steps.append(_known(rng, kit, phase, config.read_timeout_s))
    if lost:
        run = [_not_found(rng, kit) for _ in range(config.lost_after + rng.randint(0, 2))]
        steps += _sprinkle_unknowns(rng, kit, run, 0.1)
    elif steps and rng.random() < 0.1 and kit.unknown_words:
        steps.insert(len(steps) - 1, _unknown(rng, kit))
    expected, final_phase, final_status = expected_story(steps, config.unreachable_after, config.lost_after)
    notify = None
    if rng.random() < config.p_notify_filter:
        allowed = sorted(rng.sample(sorted(ALL_EVENTS), rng.randint(1, len(ALL_EVENTS) - 1)))
        notify = NotifySettings(events=allowed)
        expected = [event for event in expected if event in allowed]
    spec = JobSpec(
        source=source,
        endpoint=endpoint,
        job_id=job_id,
        backend=BACKEND if source in (WEAVIATE_EXPORT, WEAVIATE_BACKUP) else None,
        cluster_id=CLUSTER if source in (ZILLIZ_V1, ZILLIZ_V2) else None,
        labels={"lab": "faultlab"},
        notify=notify,
    )
    return Schedule(index, spec, simulator, steps, expected, final_phase, final_status)


def expected_story(
    steps: Sequence[PlannedStep], unreachable_after: int, lost_after: int
) -> tuple[list[str], Phase, str]:
    """The events a correct jobwatch notifies for this script, and the phase/status it ends with."""
    phase: Phase | None = None
    status: str | None = None
    alert: str | None = None
    errors = not_found = 0
    cap = max(unreachable_after, lost_after)
    events: list[str] = []
    for step in steps:
        if phase is not None and phase.terminal:
            break  # a terminal job is not polled again
        if step.kind == "unknown":
            continue  # ignored: neither counted nor a reset
        if step.phase is not None:
            if alert is not None:
                events.append("RECOVERED")
                alert = None
            errors = not_found = 0
            if step.phase is not phase:
                events.append(EVENT_FOR_PHASE[step.phase].value)
            phase, status = step.phase, step.status
            continue
        errors = min(errors + 1, cap)
        not_found = min(not_found + 1, lost_after) if step.fault_class == "not-found" else 0
        if step.fault_class == "not-found" and not_found >= lost_after:
            events.append("LOST")
            phase, status = Phase.LOST, "NOT_FOUND"
            break
        if errors >= unreachable_after and alert is None:
            alert = "AUTH_FAILED" if step.fault_class == "auth" else "UNREACHABLE"
            events.append(alert)
    if phase is None or status is None:
        raise ValueError("a script must end in a known state or a not-found run")
    return events, phase, status


# ---------------------------------------------------------------------------------------------------
# Fault injection around the poller
# ---------------------------------------------------------------------------------------------------


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

    def pollable_pages(self) -> Iterator[list[TrackedJob]]:
        """All pages are read before the first is handed out; then both overlapping runs meet."""
        f = self.faults
        pages = f.around("pollable_pages", "", lambda: list(self.store.pollable_pages()), 0.0)
        if self.barrier is not None:
            with contextlib.suppress(threading.BrokenBarrierError):
                self.barrier.wait(timeout=60)
        yield from pages

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


class _VisibilitySpy:
    """The SQS client handed to the Slack sender: delays are kept in fake time, not applied by SQS.

    Visibility changes are noted (the lab hides the record itself, see `_Round._drain`); a message
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


class _AtomicWrites:
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


def _dynamodb(session: Any) -> DynamoDBClient:
    return cast("DynamoDBClient", _AtomicWrites(session.client("dynamodb", config=_CLIENT_CONFIG)))


@dataclass
class _Container:
    """What one warm Lambda container holds: its own boto3 session, clients and secret cache."""

    dynamodb: DynamoDBClient
    sns: SNSClient
    secrets: SecretResolver

    @classmethod
    def create(cls) -> _Container:
        session = boto3.session.Session()
        return cls(
            dynamodb=_dynamodb(session),
            sns=session.client("sns", config=_CLIENT_CONFIG),
            secrets=SecretResolver(session.client("secretsmanager", config=_CLIENT_CONFIG)),
        )


@dataclass
class _RunResult:
    faults: RunFaults
    report: CycleReport | None = None
    crashed: bool = False
    aborted: str | None = None


@dataclass(frozen=True)
class _CyclePlan:
    overlap: str | None = None
    """None, `rendezvous` or `staggered`."""
    crash_runs: tuple[int, ...] = ()
    store_errors: bool = False
    outbox_errors: bool = False
    deadline_after: int | None = None
    """`remaining_s` falls below the margin after this many calls."""
    publish_errors: bool = True
    sns_down: bool = False

    @property
    def disturbing(self) -> bool:
        return bool(self.crash_runs) or self.store_errors or self.outbox_errors


# ---------------------------------------------------------------------------------------------------
# Configuration and results
# ---------------------------------------------------------------------------------------------------


@dataclass
class LabConfig:
    seed: int = 1
    rounds: int = 2
    schedules_per_round: int = 60
    simulators: int = 4
    """Upstream endpoints (one simulator each): Zilliz's documented 20 requests/s apply per endpoint."""
    read_timeout_s: float = 1.0
    """Upstream read timeout of the deployment; hangs are drawn around it. The simulators share the
    GIL with the poller's I/O threads, so on a small machine a shorter one turns good answers into
    timeouts now and then (reported as `spurious_poll_errors`)."""
    unreachable_after: int = 3
    lost_after: int = 3
    cycle_s: float = 120.0
    """Fake time per cycle (more than the outbox grace period)."""
    p_overlap: float = 0.25
    p_staggered: float = 0.4
    """Share of overlaps without a rendezvous."""
    p_crash: float = 0.2
    p_store_errors: float = 0.12
    store_error_p: float = 0.03
    p_outbox_errors: float = 0.06
    outbox_error_p: float = 0.03
    publish_error_p: float = 0.08
    p_sns_outage: float = 0.04
    """Chance per cycle that SNS goes down for 2-4 cycles."""
    p_deadline: float = 0.05
    p_notify_filter: float = 0.08
    """Share of jobs registered with a `notify.events` filter (a random subset of events)."""
    p_drain: float = 0.75
    """Chance the Slack sender keeps up between two cycles (otherwise it handles 0-2 batches only)."""
    p_sink_script: float = 0.25
    p_resend: float = 0.15
    p_twice: float = 0.12
    p_concurrent: float = 0.08
    settle_fault_cycles: int = 3
    max_cycles: int = 200
    progress: Callable[[str], None] | None = None


EMAILED_EVENTS = frozenset({"FAILED", "CANCELED"})
"""The template's AlertEmailEvents default: what the e-mail queue's subscription lets through."""
P_EMAIL_PUBLISH_BEFORE = 0.08
P_EMAIL_PUBLISH_AFTER = 0.08


class _EmailTopic:
    """The alert e-mail topic as the e-mail sender sees it: with faults on, a publish fails before
    reaching SNS, or after SNS took it (the sender cannot tell the two apart and tries again)."""

    def __init__(self, real: SnsEmailPublisher, rng: random.Random) -> None:
        self.real = real
        self.rng = rng
        self.faults = False
        self.lock = threading.Lock()
        self.ambiguous: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()

    def publish_email(self, transition: Transition) -> str:
        with self.lock:
            roll = self.rng.random() if self.faults else 1.0
        if roll < P_EMAIL_PUBLISH_BEFORE:
            with self.lock:
                self.injected["email:publish-error-before"] += 1
            raise RuntimeError("SNS unavailable (injected)")
        message_id = self.real.publish_email(transition)
        if roll < P_EMAIL_PUBLISH_BEFORE + P_EMAIL_PUBLISH_AFTER:
            with self.lock:
                self.injected["email:publish-error-after"] += 1
                self.ambiguous[transition.transition_id] += 1
            raise RuntimeError("answer lost after SNS accepted the publish (injected)")
        return message_id


class _InstantRetry:
    """SQS for the e-mail sender: its retry delays are not waited for in fake time; a retried copy is
    sent back without its delay, and a record handed back to SQS is made visible again at once."""

    def __init__(self, sqs: SQSClient) -> None:
        self._sqs = sqs

    def change_message_visibility(self, **_: Any) -> None:
        return None

    def send_message(self, **kwargs: Any) -> Any:
        kwargs.pop("DelaySeconds", None)
        return self._sqs.send_message(**kwargs)


SINK_FAULTS: dict[str, float] = {
    "rate_limited": 3,
    "server_error": 2,
    "service_unavailable": 1,
    "drop": 2,
    "accept_then_drop": 1.5,
    "accept_then_429": 1,
    "accept_then_500": 1,
}


@dataclass
class RoundResult:
    schedules: int = 0
    transitions: int = 0
    delivered: int = 0
    lost: int = 0
    lost_sns: int = 0
    duplicated: int = 0
    false_alerts: int = 0
    out_of_order_sns: int = 0
    out_of_order_slack: int = 0
    state_mismatches: int = 0
    outbox_left: int = 0
    slack_queue_left: int = 0
    slack_dead_lettered: int = 0
    outbox_dead_lettered: int = 0
    stuck_jobs: int = 0
    spurious_poll_errors: int = 0
    """Polls of a good answer that failed anyway (the machine was too slow for the read timeout)."""
    sns_redeliveries: int = 0
    ambiguous_reposts: int = 0
    slack_refused: int = 0
    slack_deferred: int = 0
    slack_collapsed: int = 0
    order_waits_expired: int = 0
    emails_expected: int = 0
    emailed: int = 0
    email_lost: int = 0
    email_duplicated: int = 0
    email_false: int = 0
    email_ambiguous: int = 0
    """E-mails published twice because the topic took a publish whose answer the sender never saw."""
    email_dead_lettered: int = 0
    cycles: int = 0
    crashes: int = 0
    aborted_cycles: int = 0
    overlaps: int = 0
    conflicts: int = 0
    events: Counter[str] = field(default_factory=Counter)
    faults_injected: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.lost_sns
            or self.duplicated
            or self.false_alerts
            or self.out_of_order_sns
            or self.out_of_order_slack
            or self.state_mismatches
            or self.outbox_left
            or self.slack_queue_left
            or self.stuck_jobs
            or self.slack_refused
            or self.email_lost
            or self.email_duplicated
            or self.email_false
        )

    def add(self, other: RoundResult) -> None:
        for name, value in vars(other).items():
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(self, name, getattr(self, name) + value)
        self.events.update(other.events)
        self.faults_injected.update(other.faults_injected)
        self.problems.extend(other.problems)

    def summary(self, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schedules": self.schedules,
            "transitions": self.transitions,
            "delivered": self.delivered,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "false_alerts": self.false_alerts,
        }
        out.update(extra)
        out.update(
            {
                "crashes": self.crashes,
                "overlaps": self.overlaps,
                "sns_redeliveries": self.sns_redeliveries,
                "ambiguous_reposts": self.ambiguous_reposts,
                "lost_sns": self.lost_sns,
                "out_of_order_sns": self.out_of_order_sns,
                "out_of_order_slack": self.out_of_order_slack,
                "state_mismatches": self.state_mismatches,
                "outbox_left": self.outbox_left,
                "slack_queue_left": self.slack_queue_left,
                "slack_dead_lettered": self.slack_dead_lettered,
                "outbox_dead_lettered": self.outbox_dead_lettered,
                "stuck_jobs": self.stuck_jobs,
                "spurious_poll_errors": self.spurious_poll_errors,
                "slack_refused": self.slack_refused,
                "slack_deferred": self.slack_deferred,
                "slack_collapsed": self.slack_collapsed,
                "order_waits_expired": self.order_waits_expired,
                "emails_expected": self.emails_expected,
                "emailed": self.emailed,
                "email_lost": self.email_lost,
                "email_duplicated": self.email_duplicated,
                "email_false": self.email_false,
                "email_ambiguous": self.email_ambiguous,
                "email_dead_lettered": self.email_dead_lettered,
                "cycles": self.cycles,
                "aborted_cycles": self.aborted_cycles,
                "conflicts": self.conflicts,
                "events": dict(sorted(self.events.items())),
                "faults_injected": dict(sorted(self.faults_injected.items())),
                "ok": self.ok,
            }
        )
        return out


# ---------------------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------------------


DeploymentFactory = Callable[[dict[str, str]], LocalDeployment]


class FaultLab:
    """Runs rounds of random schedules; see the module docstring. `run()` returns the JSON summary."""

    def __init__(self, config: LabConfig, deployment_factory: DeploymentFactory, sink: SlackSink) -> None:
        self.config = config
        self.factory = deployment_factory
        self.sink = sink
        self.simulators: list[UpstreamSimulator] = []
        self.problems: list[str] = []
        """What went wrong, one line each (empty when every invariant held)."""

    def _say(self, text: str) -> None:
        if self.config.progress is not None:
            self.config.progress(text)

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        total = RoundResult()
        quiet = _Quiet()
        try:
            quiet.__enter__()
            for _ in range(self.config.simulators):
                sim = UpstreamSimulator()
                sim.start()
                self.simulators.append(sim)
            for number in range(self.config.rounds):
                round_started = time.monotonic()
                result = _Round(self, number).run()
                total.add(result)
                self._say(
                    f"round {number + 1}/{self.config.rounds}: {result.schedules} schedules, "
                    f"{result.transitions} transitions, {result.cycles} cycles, "
                    f"lost {result.lost}, duplicated {result.duplicated}, false {result.false_alerts}, "
                    f"ok={result.ok} ({time.monotonic() - round_started:.1f} s)"
                )
                for problem in result.problems[:20]:
                    self._say(f"  {problem}")
        finally:
            for sim in self.simulators:
                sim.stop()
            self.simulators.clear()
            quiet.__exit__(None, None, None)
        self.problems = list(total.problems)
        return total.summary(
            rounds=self.config.rounds,
            seed=self.config.seed,
            elapsed_s=round(time.monotonic() - started, 1),
        )


class _Quiet:
    """jobwatch's per-poll log lines and asyncio's complaints about crashed runs, muted for the run."""

    def __enter__(self) -> None:
        self._level = logger.log_level
        self._asyncio = logging.getLogger("asyncio").level
        logger.setLevel("CRITICAL")
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)

    def __exit__(self, *_: object) -> None:
        logger.setLevel(self._level)
        logging.getLogger("asyncio").setLevel(self._asyncio)


class _Round:
    def __init__(self, lab: FaultLab, number: int) -> None:
        self.lab = lab
        self.config = lab.config
        self.number = number
        self.rng = random.Random(f"{self.config.seed}:round:{number}")
        """Schedules and delivery faults."""
        self.plan_rng = random.Random(f"{self.config.seed}:plan:{number}")
        """Cycle plans (overlaps, crashes, errors, deadlines)."""
        self.result = RoundResult()
        self.clock = FakeClock(time.time())
        self.bodies: deque[str] = deque(maxlen=500)
        self.sns_seen: list[Transition] = []
        self.sleeps: list[float] = []
        self.dead_lettered: list[tuple[str, str]] = []
        self.outage_left = 0
        self.hidden: dict[str, float] = {}
        """Receipt handle -> fake time a failed Slack record becomes visible again."""
        self.delayed: list[tuple[float, dict[str, Any]]] = []
        """(fake time due, SendMessage arguments) of messages the sender sent with DelaySeconds."""
        self.email_rng = random.Random(f"{self.config.seed}:email:{number}")

    # -- set-up ---------------------------------------------------------------------------------------

    def run(self) -> RoundResult:
        config = self.config
        self.deployment = self.lab.factory(lab_env(config))
        self.settings = self.deployment.settings
        for sim in self.lab.simulators:
            sim.reset()
        self.lab.sink.reset()
        self.containers = (_Container.create(), _Container.create())
        session = boto3.session.Session()
        self.sqs: SQSClient = session.client("sqs", config=_CLIENT_CONFIG)
        self.reader = DynamoJobStore(_dynamodb(session), self.settings.table)
        self.email_topic = _EmailTopic(
            SnsEmailPublisher(session.client("sns", config=_CLIENT_CONFIG), self.settings.email_topic_arn),
            self.email_rng,
        )
        self.http = httpx.Client(timeout=httpx.Timeout(5.0, connect=3.0), follow_redirects=False)
        self.http2 = httpx.Client(timeout=httpx.Timeout(5.0, connect=3.0), follow_redirects=False)
        self.queue_visibility_s = float(
            self.sqs.get_queue_attributes(
                QueueUrl=self.settings.slack_queue_url, AttributeNames=["VisibilityTimeout"]
            )["Attributes"]["VisibilityTimeout"]
        )
        try:
            self.schedules = self._register()
            self._cycles()
            self._settle()
            self._check()
        finally:
            self.http.close()
            self.http2.close()
        return self.result

    def _register(self) -> list[Schedule]:
        config = self.config
        schedules = []
        for index in range(config.schedules_per_round):
            sim_index = index % len(self.lab.simulators)
            sim = self.lab.simulators[sim_index]
            job_id = f"fl{self.number:02d}-{index:04d}"
            schedule = make_schedule(self.rng, index, job_id, sim.url, sim_index, config)
            sim.add_job(schedule.spec.source, job_id, [s.step.held() for s in schedule.steps])
            schedules.append(schedule)
            for planned in schedule.steps:
                if planned.kind != "state":
                    self.result.faults_injected[f"upstream:{planned.kind}"] += 1
                elif planned.step.delay_ms:
                    self.result.faults_injected["upstream:slow-answer"] += 1
        now = self.clock.now_iso()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda s: self.reader.add_job(s.spec, now), schedules))
        self.result.schedules = len(schedules)
        self.by_key = {s.key: s for s in schedules}
        return schedules

    # -- cycles ---------------------------------------------------------------------------------------

    def _plan(self, clean: bool, cycle: int) -> _CyclePlan:
        rng, config = self.plan_rng, self.config
        overlap: str | None = None
        if rng.random() < config.p_overlap:
            overlap = "staggered" if (not clean and rng.random() < config.p_staggered) else "rendezvous"
        crash_runs: tuple[int, ...] = ()
        store_errors = outbox_errors = False
        deadline_after: int | None = None
        if not clean and overlap != "staggered":
            if rng.random() < config.p_crash:
                crash_runs = (rng.randrange(2 if overlap else 1),)
            store_errors = rng.random() < config.p_store_errors
            outbox_errors = rng.random() < config.p_outbox_errors
        if overlap is None and rng.random() < config.p_deadline:
            deadline_after = rng.randint(0, max(1, len(self.schedules)))
        if self.outage_left:
            self.outage_left -= 1
        elif rng.random() < config.p_sns_outage:
            self.outage_left = rng.randint(2, 4)
            self.result.faults_injected["sns-outage"] += 1
        sns_down = self.outage_left > 0
        return _CyclePlan(overlap, crash_runs, store_errors, outbox_errors, deadline_after, sns_down=sns_down)

    def _run_faults(self, plan: _CyclePlan, cycle: int, run: int, points_hint: int) -> RunFaults:
        config = self.config
        tag = f"{config.seed}:{self.number}:{cycle}:{run}"
        crash_at = self.plan_rng.randint(1, max(4, points_hint)) if run in plan.crash_runs else None
        return RunFaults(
            tag=tag,
            crash_at=crash_at,
            store_error_p=config.store_error_p if plan.store_errors else 0.0,
            outbox_error_p=config.outbox_error_p if plan.outbox_errors else 0.0,
            publish_error_p=config.publish_error_p if plan.publish_errors else 0.0,
            sns_down=plan.sns_down,
        )

    def _invoke(
        self, container: _Container, faults: RunFaults, barrier: threading.Barrier | None, plan: _CyclePlan
    ) -> _RunResult:
        settings = self.settings
        deps = PollerDeps(
            settings=settings,
            store=cast(
                "JobStore", FaultStore(DynamoJobStore(container.dynamodb, settings.table), faults, barrier)
            ),
            publisher=FlakyPublisher(SnsPublisher(container.sns, settings.topic_arn), faults),
            secrets=container.secrets,
            upstream=lambda: HttpUpstream(settings),
            clock=self.clock,
        )
        remaining: Callable[[], float] = lambda: math.inf  # noqa: E731
        if plan.deadline_after is not None:
            calls = iter(range(10**9))
            limit = plan.deadline_after
            remaining = lambda: math.inf if next(calls) < limit else 1.0  # noqa: E731
        result = _RunResult(faults)
        try:
            result.report = asyncio.run(run_cycle(deps, remaining))
        except Crash:
            result.crashed = True
        except Exception as exc:  # an error that escaped run_cycle: the invocation failed
            result.aborted = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            if barrier is not None:
                barrier.abort()  # a run that died before the rendezvous must not hold the other one
            metrics.clear_metrics()
        return result

    def _request_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for index, sim in enumerate(self.lab.simulators):
            for job_id, n in sim.job_counts().items():
                counts[f"{index}:{job_id}"] = n
        return counts

    def _cycle(self, cycle: int, plan: _CyclePlan, points_hint: int) -> tuple[list[_RunResult], set[str]]:
        """Run one cycle as planned; returns the run results and the keys of jobs polled."""
        before = self._request_counts()
        runs = 2 if plan.overlap else 1
        faults = [self._run_faults(plan, cycle, run, points_hint) for run in range(runs)]
        if plan.overlap is None:
            results = [self._invoke(self.containers[0], faults[0], None, plan)]
        else:
            barrier = threading.Barrier(2) if plan.overlap == "rendezvous" else None
            delay = self.plan_rng.uniform(0.0, 0.3) if plan.overlap == "staggered" else 0.0
            with ThreadPoolExecutor(max_workers=2, thread_name_prefix="faultlab-run") as pool:
                first = pool.submit(self._invoke, self.containers[0], faults[0], barrier, plan)
                if delay:
                    time.sleep(delay)
                second = pool.submit(self._invoke, self.containers[1], faults[1], barrier, plan)
                results = [first.result(timeout=600), second.result(timeout=600)]
            self.result.overlaps += 1
            self.result.faults_injected[f"overlap:{plan.overlap}"] += 1
        after = self._request_counts()
        polled = {
            s.key
            for s in self.schedules
            if after.get(f"{s.simulator}:{s.spec.job_id}", 0)
            > before.get(f"{s.simulator}:{s.spec.job_id}", 0)
        }
        for run in results:
            self.result.faults_injected.update(run.faults.injected)
            if run.crashed:
                self.result.crashes += 1
            if run.aborted:
                self.result.aborted_cycles += 1
                self.result.faults_injected["cycle-aborted"] += 1
            if run.report is not None:
                self.result.conflicts += run.report.conflicts
                self.result.outbox_dead_lettered += run.report.dead_lettered
        if plan.deadline_after is not None:
            self.result.faults_injected["lambda-deadline"] += 1
        self.result.cycles += 1
        return results, polled

    def _spurious_errors(self, results: list[_RunResult]) -> set[str]:
        """Jobs whose poll failed although the step served was an answer (a machine too slow).

        Ground truth assumes every good answer is seen; a timeout here is a real poll error to jobwatch
        (it counts towards UNREACHABLE), so the run reports it and serves the same state again.
        """
        spurious: set[str] = set()
        for run in results:
            for error in [] if run.report is None else run.report.errors:
                schedule = self.by_key.get(error.get("jobKey", ""))
                text = error.get("error", "")
                if schedule is None or text.split(" ", 1)[0].rstrip(":") not in POLL_ERROR_KINDS:
                    continue
                if schedule.current.kind in ("state", "unknown"):
                    spurious.add(schedule.key)
                    self.result.problems.append(f"{schedule.key}: poll of a good answer failed: {text}")
        self.result.spurious_poll_errors += len(spurious)
        return spurious

    def _cycles(self) -> None:
        config = self.config
        clean = True  # the first cycle sees every job for the first time: keep it plain
        points_hint = len(self.schedules)
        for cycle in range(config.max_cycles):
            if all(s.settled or s.cursor >= len(s.steps) for s in self.schedules):
                return
            plan = self._plan(clean, cycle)
            results, polled = self._cycle(cycle, plan, points_hint)
            dead = any(r.crashed or r.aborted for r in results)
            # A run that left polls for later (an upstream Retry-After resting an endpoint) did not
            # poll every pollable job, so "not polled" no longer means "terminal in the store".
            throttled = any(r.report is not None and r.report.throttled for r in results)
            failed = set().union(*(r.faults.failed_keys for r in results)) | self._spurious_errors(results)
            for schedule in self.schedules:
                if schedule.settled:
                    continue
                if schedule.key not in polled:
                    if plan.deadline_after is None and not dead and not throttled:
                        schedule.settled = True  # not pollable any more: terminal in the store
                    continue
                if dead or schedule.key in failed:
                    schedule.tainted = True  # the same step again, and only in clean cycles
                    continue
                self.lab.simulators[schedule.simulator].advance(
                    schedule.spec.job_id, source=schedule.spec.source
                )
                schedule.cursor += 1
                schedule.tainted = False
            clean = any(s.tainted and not s.settled for s in self.schedules)
            if not dead:
                points_hint = max(4, max(r.faults.points for r in results))
            next_cycle = self.clock.at + config.cycle_s
            lag = None if self.rng.random() < config.p_drain else self.rng.randint(0, 2)
            self._drain(until=next_cycle, faults=True, max_batches=lag)
            self.clock.at = max(self.clock.at, next_cycle)
        self.result.problems.append(
            f"round {self.number}: scripts not exhausted after {config.max_cycles} cycles"
        )

    def _settle(self) -> None:
        """Publish faults for a few more cycles, then none, until the outbox and the queue are empty."""
        config = self.config
        for extra in range(60):
            faulty = extra < config.settle_fault_cycles
            plan = _CyclePlan(publish_errors=faulty)
            self._cycle(config.max_cycles + extra, plan, 1)
            next_cycle = self.clock.at + 3600 + 64 * 60  # past the longest outbox backoff
            self._drain(until=next_cycle, faults=faulty)
            self.clock.at = max(self.clock.at, next_cycle)
            if not faulty and not self.reader.pending_transitions() and not self._queue_depth():
                return
        self.result.problems.append(f"round {self.number}: outbox or Slack queue not empty after settling")

    # -- delivery ---------------------------------------------------------------------------------------

    def _queue_depth(self) -> int:
        """Messages on the Slack queue: visible, in flight, delayed (by SQS or by the lab)."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.settings.slack_queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        counts = [
            attributes.get("ApproximateNumberOfMessages", "0"),
            attributes.get("ApproximateNumberOfMessagesNotVisible", "0"),
            attributes.get("ApproximateNumberOfMessagesDelayed", "0"),
        ]
        return sum(int(n) for n in counts) + len(self.delayed)

    def _capture(self) -> None:
        """What SNS delivered to an ordinary subscriber (the capture queue), in arrival order."""
        url = self.deployment.capture_queue_url
        while True:
            messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if not messages:
                return
            for message in messages:
                envelope = json.loads(message["Body"])
                self.sns_seen.append(Transition.model_validate_json(envelope["Message"]))
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )

    def _store(self, container: _Container) -> DynamoJobStore:
        return DynamoJobStore(container.dynamodb, self.settings.table)

    def _slack_sender(
        self, http: httpx.Client, spy: _VisibilitySpy, dynamodb: DynamoDBClient
    ) -> tuple[SlackWebhookChannel, DeliveryDeps]:
        """The Slack sender as one container builds it, over the lab's SQS spy and fake clock."""
        settings = self.settings
        channel = SlackWebhookChannel(settings, self.containers[0].secrets, http)
        deps = DeliveryDeps(
            ledger=DynamoDeliveryLedger(dynamodb, settings.table),
            queue=SqsDeliveryQueue(cast("SQSClient", spy), settings.slack_queue_url, settings.slack_dlq_url),
            clock=self.clock,  # waits for a predecessor and their leases are in fake time too
            standing=DynamoJobStore(dynamodb, settings.table).transition_standing,
            sleep=self.sleeps.append,  # in-process Retry-After waits cost no wall time
        )
        return channel, deps

    def _release_due(self) -> None:
        """Records whose (fake) visibility timeout or delay has passed become visible."""
        due = [receipt for receipt, at in self.hidden.items() if at <= self.clock.at]
        for receipt in due:
            del self.hidden[receipt]
            self.sqs.change_message_visibility(
                QueueUrl=self.settings.slack_queue_url, ReceiptHandle=receipt, VisibilityTimeout=0
            )
        ready = [entry for entry in self.delayed if entry[0] <= self.clock.at]
        for entry in ready:
            self.delayed.remove(entry)
            self.sqs.send_message(**entry[1])

    def _next_release(self) -> float | None:
        times = list(self.hidden.values()) + [at for at, _ in self.delayed]
        return min(times) if times else None

    def _drain(self, *, until: float | None, faults: bool, max_batches: int | None = None) -> None:
        """Feed the Slack queue through the sender's code, with SQS and Slack faults; then read SNS.

        Time is the fake clock: each batch takes a second, a record the sender failed comes back when
        the visibility it asked for (or the queue's default) has passed, and the drain runs until
        `until` (the next poll cycle) or, with None, until the queue is empty.
        """
        rng, config = self.rng, self.config
        queue = self.settings.slack_queue_url
        spy = _VisibilitySpy(self.sqs, self.clock.now, self.delayed)
        channel, deps = self._slack_sender(self.http, spy, self.containers[0].dynamodb)
        batches = 0
        for _ in range(20_000):
            self._release_due()
            messages = self._receive(queue)
            if not messages:
                next_at = self._next_release()
                if next_at is None or (until is not None and next_at > until):
                    break
                self.clock.at = max(self.clock.at, next_at)
                continue
            records = [record_from_message(dict(m)) for m in messages]
            mode = "once"
            if faults:
                # Scripted answers wait for the next posts; while a job's later transitions only wait
                # for an earlier one (no post), new scripts would pile up and fail every retry of that
                # earlier one in a row, which no real Slack does. Script only when none is pending.
                if rng.random() < config.p_sink_script and not self.lab.sink.pending_script():
                    names = rng.choices(
                        list(SINK_FAULTS), weights=list(SINK_FAULTS.values()), k=rng.randint(1, 3)
                    )
                    self.lab.sink.script(names)
                    self.result.faults_injected.update(f"slack:{n}" for n in names)
                if self.bodies and rng.random() < config.p_resend:
                    self.sqs.send_message(QueueUrl=queue, MessageBody=rng.choice(list(self.bodies)))
                    self.result.faults_injected["sqs:resent-envelope"] += 1
                roll = rng.random()
                if roll < config.p_twice:
                    mode = "twice"
                elif roll < config.p_twice + config.p_concurrent:
                    mode = "concurrent"
            self.bodies.extend(m["Body"] for m in messages)
            event = {"Records": records}
            if mode == "once":
                reports = [deliver_batch(event, channel, deps)]
            elif mode == "twice":
                self.result.faults_injected["sqs:batch-processed-twice"] += 1
                deliver_batch(event, channel, deps)
                reports = [deliver_batch(event, channel, deps)]  # its answer decides deletion
            else:
                self.result.faults_injected["sqs:batch-processed-concurrently"] += 1
                other_channel, other = self._slack_sender(self.http2, spy, self.containers[1].dynamodb)
                with ThreadPoolExecutor(max_workers=2) as pool:
                    futures = [
                        pool.submit(deliver_batch, event, channel, deps),
                        pool.submit(deliver_batch, event, other_channel, other),
                    ]
                    reports = [f.result(timeout=120) for f in futures]
            self.result.slack_deferred += sum(r.deferred for r in reports)
            self.result.slack_collapsed += sum(r.collapsed for r in reports)
            self.result.order_waits_expired += sum(r.order_waits_expired for r in reports)
            failed = set.intersection(*(set(r.failures) for r in reports))
            done = [m for m in messages if m["MessageId"] not in failed]
            self._delete(queue, done)
            for m in messages:
                if m["MessageId"] in failed:  # hidden until its visibility timeout passes (fake time)
                    receipt = m["ReceiptHandle"]
                    delay = spy.requested.get(receipt, self.queue_visibility_s)
                    self.hidden[receipt] = self.clock.at + delay
                    self.sqs.change_message_visibility(
                        QueueUrl=queue, ReceiptHandle=receipt, VisibilityTimeout=3600
                    )
            metrics.clear_metrics()  # Powertools would flush EMF lines to stdout after 100 values
            self.clock.at += 1.0
            batches += 1
            if until is not None and self.clock.at >= until:
                break
            if max_batches is not None and batches >= max_batches:
                break
        else:
            self.result.problems.append(f"round {self.number}: Slack drain did not end")
        self._drain_email(faults)
        self._capture()

    def _receive(self, queue: str) -> list[dict[str, Any]]:
        return [
            dict(m)
            for m in self.sqs.receive_message(
                QueueUrl=queue,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
        ]

    def _delete(self, queue: str, messages: list[dict[str, Any]]) -> None:
        if messages:
            self.sqs.delete_message_batch(
                QueueUrl=queue,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )

    def _drain_email(self, faults: bool) -> None:
        """Feed the e-mail queue through the e-mail sender until it is empty: publishes that fail
        before or after SNS took them, batches processed twice or by two senders at once."""
        queue = self.settings.email_queue_url
        self.email_topic.faults = faults
        settings = self.settings
        channel = EmailChannel(settings, self.email_topic)
        deps = DeliveryDeps(
            ledger=DynamoDeliveryLedger(self.containers[0].dynamodb, settings.table),
            queue=SqsDeliveryQueue(cast("SQSClient", _InstantRetry(self.sqs)), queue, settings.email_dlq_url),
            clock=self.clock,
        )
        for _ in range(5_000):
            messages = self._receive(queue)
            if not messages:
                break
            event = {"Records": [record_from_message(dict(m)) for m in messages]}
            roll = self.email_rng.random() if faults else 1.0
            reports: list[BatchReport]
            if roll < self.config.p_twice:
                self.result.faults_injected["email:batch-processed-twice"] += 1
                deliver_batch(event, channel, deps)
                reports = [deliver_batch(event, channel, deps)]
            elif roll < self.config.p_twice + self.config.p_concurrent:
                self.result.faults_injected["email:batch-processed-concurrently"] += 1
                with ThreadPoolExecutor(max_workers=2, thread_name_prefix="faultlab-email") as pool:
                    futures = [pool.submit(deliver_batch, event, channel, deps) for _ in range(2)]
                    reports = [f.result(timeout=120) for f in futures]
            else:
                reports = [deliver_batch(event, channel, deps)]
            failed = set.intersection(*(set(r.failures) for r in reports))
            done = [m for m in messages if m["MessageId"] not in failed]
            self._delete(queue, done)
            for m in messages:
                if m["MessageId"] in failed:
                    self.sqs.change_message_visibility(
                        QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                    )
            metrics.clear_metrics()
        else:
            self.result.problems.append(f"round {self.number}: e-mail drain did not end")

    # -- invariants -------------------------------------------------------------------------------------

    def _check(self) -> None:
        self._drain(until=None, faults=False)
        result = self.result
        sink = self.lab.sink
        result.outbox_left = len(self.reader.pending_transitions())
        result.slack_queue_left = self._queue_depth()
        dlq = self.settings.slack_dlq_url
        if dlq:
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            result.slack_dead_lettered = int(attributes["ApproximateNumberOfMessages"])
            self.dead_lettered = self._read_dlq(dlq)

        sns_count: Counter[str] = Counter(t.transition_id for t in self.sns_seen)
        result.sns_redeliveries = sum(n - 1 for n in sns_count.values())
        first_seen: dict[str, Transition] = {}
        sns_order: dict[str, list[str]] = defaultdict(list)
        for t in self.sns_seen:
            if t.transition_id not in first_seen:
                first_seen[t.transition_id] = t
                sns_order[t.job_key].append(t.transition_id)

        ok_posts: Counter[str] = Counter()
        ambiguous: Counter[str] = Counter()
        slack_order: dict[str, list[str]] = defaultdict(list)
        posted: set[str] = set()
        for message in sink.messages():
            found = TID_IN_SLACK.search(json.dumps(message.payload))
            if found is None:
                result.problems.append(f"Slack message without a transition id: {message.text!r}")
                result.false_alerts += 1
                continue
            tid = found.group(1)
            if 200 <= message.status < 300:
                ok_posts[tid] += 1
            else:
                ambiguous[tid] += 1
            if tid not in posted:
                posted.add(tid)
                slack_order[tid.rsplit("#", 1)[0]].append(tid)
        result.ambiguous_reposts = sum(ambiguous.values())
        for tid, why in self.dead_lettered:
            result.problems.append(f"Slack DLQ: {tid} ({why}), shown in Slack: {tid in posted}")
        result.duplicated = sum(n - 1 for n in ok_posts.values() if n > 1)
        result.slack_refused = sum(1 for m in sink.rejected() if m.status == 400)
        for tid, n in ok_posts.items():
            if n > 1:
                result.problems.append(f"{tid} posted {n} times with a 2xx answer")

        matched_tids: set[str] = set()
        jobs = self._stored_jobs()
        for schedule in self.schedules:
            key = schedule.key
            expected = schedule.expected
            result.transitions += len(expected)
            result.events.update(expected)
            recorded = sorted(sns_order.get(key, []), key=_tid_order)
            if recorded != sns_order.get(key, []):
                result.out_of_order_sns += 1
                result.problems.append(f"{key}: out of order on SNS: {sns_order.get(key)}")
            in_slack = slack_order.get(key, [])
            if sorted(in_slack, key=_tid_order) != in_slack:
                result.out_of_order_slack += 1
                result.problems.append(f"{key}: out of order in Slack: {in_slack}")
            got = [first_seen[tid].event for tid in recorded]
            matcher = difflib.SequenceMatcher(a=expected, b=got, autojunk=False)
            matched = 0
            for block in matcher.get_matching_blocks():
                for offset in range(block.size):
                    matched_tids.add(recorded[block.b + offset])
                    matched += 1
                    if recorded[block.b + offset] in posted:
                        result.delivered += 1
            missing_at_slack = sum(1 for tid in recorded if tid in matched_tids and tid not in posted)
            result.lost_sns += len(expected) - matched
            result.lost += len(expected) - matched + missing_at_slack
            job = jobs.get(key)
            stored = (
                None if job is None or job.snapshot is None else (job.snapshot.phase, job.snapshot.status)
            )
            if stored != (schedule.final_phase, schedule.final_status):
                result.state_mismatches += 1
                result.problems.append(
                    f"{key}: stored {stored}, expected {(schedule.final_phase, schedule.final_status)}"
                )
            if expected != got or missing_at_slack:
                result.problems.append(
                    f"{key} ({schedule.spec.source} {schedule.spec.job_id}): expected {expected}, "
                    f"SNS {got}, not in Slack {[t for t in recorded if t not in posted]}; "
                    f"script: {schedule.describe()}"
                )
            if not schedule.settled and schedule.cursor < len(schedule.steps):
                result.stuck_jobs += 1
        unexpected = (set(first_seen) | posted) - matched_tids
        result.false_alerts += len(unexpected)
        for tid in sorted(unexpected)[:20]:
            event = first_seen[tid].event if tid in first_seen else "?"
            result.problems.append(f"false alert {tid} ({event})")
        self._check_emails({tid for tid in matched_tids if first_seen[tid].event in EMAILED_EVENTS})

    def _check_emails(self, routed: set[str]) -> None:
        """Each routed transition e-mailed once; repeats only where a publish's answer was lost."""
        result = self.result
        sent = Counter(email.transition_id for email in self.deployment.emails())
        ambiguous = self.email_topic.ambiguous
        result.faults_injected.update(self.email_topic.injected)
        result.emails_expected = len(routed)
        result.emailed = len(routed & set(sent))
        result.email_lost = len(routed - set(sent))
        result.email_false = len(set(sent) - routed)
        result.email_ambiguous = sum(ambiguous.values())
        result.email_duplicated = sum(max(0, n - 1 - ambiguous[tid]) for tid, n in sent.items())
        result.email_dead_lettered = int(
            self.sqs.get_queue_attributes(
                QueueUrl=self.settings.email_dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
        )
        for tid in sorted(routed - set(sent))[:20]:
            result.problems.append(f"e-mail missing for {tid}")
        for tid in sorted(set(sent) - routed)[:20]:
            result.problems.append(f"e-mail for {tid}, which was not routed to e-mail")
        for tid, n in sorted(sent.items()):
            if n - 1 > ambiguous[tid]:
                result.problems.append(f"{tid} e-mailed {n} times ({ambiguous[tid]} after a lost answer)")

    def _read_dlq(self, url: str) -> list[tuple[str, str]]:
        """(transition id, why) of each message on the Slack dead-letter queue (drains it)."""
        out: list[tuple[str, str]] = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                return out
            for m in messages:
                tid = transition_from_sqs_body(m["Body"]).transition_id
                attribute = m.get("MessageAttributes", {}).get("reason")
                reason = None if attribute is None else attribute.get("StringValue")
                receives = m.get("Attributes", {}).get("ApproximateReceiveCount")
                out.append((tid, f"{reason or 'redrive'}, received {receives} times"))
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )

    def _stored_jobs(self) -> dict[str, TrackedJob]:
        with ThreadPoolExecutor(max_workers=8) as pool:
            found = pool.map(self.reader.get_job, [s.key for s in self.schedules])
            return {job.key: job for job in found if job is not None}


def print_progress(text: str) -> None:
    """A `LabConfig.progress` that writes to stderr."""
    print(text, file=sys.stderr, flush=True)
