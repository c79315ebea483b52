"""In-memory implementations of every port in `jobwatch.ports`, for the component tier.

They keep the same promises as the adapters (version-conditioned writes, the outbox inside the job,
claims with leases), so the application can be run in-process with no sockets: a poll cycle over a
few jobs takes milliseconds instead of a second against moto. tests/contract/test_port_contracts.py
runs one set of assertions against each fake and its DynamoDB adapter, which keeps the two honest.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from jobwatch.adapters.clock import utc_iso
from jobwatch.domain.errors import PollError
from jobwatch.domain.model import Health, JobSpec, Quiet, Snapshot, TrackedJob, Transition, Watch
from jobwatch.domain.shards import ONE_SHARD, ShardLayout
from jobwatch.domain.slack_interaction import Outcome as SlackOutcome
from jobwatch.domain.transitions import new_life, parse_transition_id
from jobwatch.ports import Claim, ConflictError, PendingTransition, SecretUnavailableError
from jobwatch.sources.base import HttpRequest, HttpResponse

# -- time ----------------------------------------------------------------------------------------------


@dataclass
class FakeClock:
    """Time that moves only when told to (`advance`), so backoffs and leases are tested instantly."""

    at: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z

    def now(self) -> float:
        return self.at

    def now_iso(self) -> str:
        return utc_iso(self.at)

    def advance(self, seconds: float) -> None:
        self.at += seconds


# -- the job store -------------------------------------------------------------------------------------


def _history_order(transition_id: str) -> tuple[str, int, int]:
    """The order the DynamoDB history sort key gives (older lives, then versions, then positions)."""
    ref = parse_transition_id(transition_id)
    assert ref is not None, transition_id
    return ref.order


@dataclass
class _OutboxEntry:
    transition: Transition
    recorded_at: float
    attempts: int = 0


@dataclass
class _JobItem:
    job: TrackedJob
    outbox: dict[str, _OutboxEntry] = field(default_factory=dict)


@dataclass
class _HistoryItem:
    transition: Transition
    delivery: str
    detail: str


class InMemoryJobStore:
    """`ports.JobStore` in a dict, with the same conditional writes as `DynamoJobStore`."""

    def __init__(self, page_size: int = 100, layout: ShardLayout = ONE_SHARD) -> None:
        self._lock = threading.RLock()
        self.layout = layout
        self._jobs: dict[str, _JobItem] = {}
        self._history: dict[str, dict[str, _HistoryItem]] = {}
        self.page_size = page_size
        self.writes = 0
        """Every write call that changed something (what DynamoDB would bill as writes)."""
        self.listing_reads = 0
        """Calls of `jobs_by_creation` (what `GET /jobs` costs in index queries)."""

    # -- jobs -------------------------------------------------------------------------------------

    def _view(self, item: _JobItem) -> TrackedJob:
        return item.job.model_copy(update={"owes_transitions": bool(item.outbox)})

    def add_job(
        self, spec: JobSpec, now_iso: str, *, initial_snapshot: Snapshot | None = None
    ) -> tuple[TrackedJob, bool]:
        with self._lock:
            existing = self._jobs.get(spec.key)
            if existing is not None:
                return self._view(existing), False
            job = TrackedJob(
                spec=spec,
                snapshot=initial_snapshot,
                created_at=now_iso,
                updated_at=now_iso,
                changed_at=now_iso if initial_snapshot else None,
                life=new_life(time.time()),
            )
            self._jobs[spec.key] = _JobItem(job)
            self.writes += 1
            return job, True

    def get_job(self, key: str) -> TrackedJob | None:
        with self._lock:
            item = self._jobs.get(key)
            return None if item is None else self._view(item)

    def delete_job(self, key: str) -> bool:
        with self._lock:
            return self._jobs.pop(key, None) is not None

    def pollable_pages(self, shards: Sequence[int] | None = None) -> Iterator[list[TrackedJob]]:
        for shard in range(self.layout.shards) if shards is None else shards:
            with self._lock:
                active = [
                    self._view(item)
                    for key, item in sorted(self._jobs.items())
                    if not item.job.terminal and self.layout.shard_of(item.job.spec.endpoint, key) == shard
                ]
            for start in range(0, len(active), self.page_size):
                yield active[start : start + self.page_size]

    def all_jobs(self) -> list[TrackedJob]:
        with self._lock:
            jobs = [self._view(item) for item in self._jobs.values()]
        return sorted(jobs, key=lambda job: job.created_at)

    def jobs_by_creation(
        self, after: tuple[str, str] | None, limit: int
    ) -> tuple[list[TrackedJob], tuple[str, str] | None]:
        self.listing_reads += 1
        with self._lock:
            ordered = sorted(self._jobs.values(), key=lambda item: (item.job.created_at, item.job.key))
            later = [self._view(i) for i in ordered if after is None or (i.job.created_at, i.job.key) > after]
        page = later[: max(1, min(limit, 100))]
        resume = (page[-1].created_at, page[-1].key) if len(later) > len(page) else None
        return page, resume

    def _current(self, job: TrackedJob) -> _JobItem:
        item = self._jobs.get(job.key)
        if item is None or item.job.version != job.version:
            raise ConflictError(f"job {job.key} is no longer at version {job.version}")
        return item

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
        with self._lock:
            item = self._current(job)
            updated = item.job.model_copy(
                update={
                    "snapshot": snapshot,
                    "health": health,
                    "version": job.version + 1,
                    "updated_at": now_iso,
                    "changed_at": now_iso if snapshot_changed else job.changed_at,
                    "last_transition_id": transitions[-1].transition_id
                    if transitions
                    else job.last_transition_id,
                    "owes_transitions": False,
                }
            )
            item.job = updated
            for transition in transitions:
                item.outbox[transition.transition_id] = _OutboxEntry(transition, now_s)
            self.writes += 1
            return updated

    def save_health(self, job: TrackedJob, health: Health) -> TrackedJob:
        with self._lock:
            item = self._current(job)
            item.job = item.job.model_copy(update={"health": health})
            self.writes += 1
            return job.model_copy(update={"health": health})

    def save_quiet(self, job: TrackedJob, quiet: Quiet, health: Health) -> TrackedJob:
        with self._lock:
            item = self._current(job)
            updated = item.job.model_copy(
                update={"quiet": quiet, "health": health, "version": job.version + 1}
            )
            item.job = updated
            self.writes += 1
            return self._view(item)

    def recent_transitions(self, key: str, limit: int = 20) -> list[Transition]:
        with self._lock:
            settled = list(self._history.get(key, {}).values())
        settled.sort(key=lambda h: _history_order(h.transition.transition_id), reverse=True)
        return [h.transition for h in settled[:limit]]

    # -- the outbox -------------------------------------------------------------------------------

    def pending_transitions(self) -> list[PendingTransition]:
        with self._lock:
            pending = [
                PendingTransition(entry.transition, entry.recorded_at, entry.attempts)
                for item in self._jobs.values()
                for entry in item.outbox.values()
            ]
        pending.sort(key=lambda p: (p.recorded_at, _history_order(p.transition.transition_id)))
        return pending

    def _settle(self, transition: Transition, state: str, detail: str) -> None:
        with self._lock:
            history = self._history.setdefault(transition.job_key, {})
            history.setdefault(transition.transition_id, _HistoryItem(transition, state, detail))
            item = self._jobs.get(transition.job_key)
            if item is not None and item.outbox.pop(transition.transition_id, None) is not None:
                self.writes += 1

    def mark_published(self, transition: Transition, message_id: str, now_s: float) -> None:
        self._settle(transition, "PUBLISHED", message_id)

    def mark_dead_lettered(self, transition: Transition, reason: str, now_s: float) -> None:
        self._settle(transition, "DEAD_LETTERED", reason)

    def note_publish_failure(self, transition: Transition) -> None:
        with self._lock:
            item = self._jobs.get(transition.job_key)
            entry = None if item is None else item.outbox.get(transition.transition_id)
            if entry is not None:
                entry.attempts += 1

    def transition_standing(self, transition_id: str) -> str | None:
        ref = parse_transition_id(transition_id)
        job_key = ref.job_key if ref is not None else ""
        with self._lock:
            settled = self._history.get(job_key, {}).get(transition_id)
            if settled is not None:
                return settled.delivery
            item = self._jobs.get(job_key)
            return "OWED" if item is not None and transition_id in item.outbox else None


# -- the delivery ledger -------------------------------------------------------------------------------


class InMemoryLedger:
    """`ports.DeliveryLedger` in a dict: claims with leases, and the lease of a waiting copy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claims: dict[tuple[str, str], dict[str, Any]] = {}
        self._waits: dict[tuple[str, str], dict[str, Any]] = {}
        self._routing: dict[str, list[dict[str, Any]]] = {}
        self._routed_previous: dict[str, str] = {}

    def claim(self, channel: str, transition_id: str, lease_s: float, now_s: float) -> Claim:
        with self._lock:
            existing = self._claims.get((channel, transition_id))
            if existing is None or (existing["state"] == "IN_PROGRESS" and existing["lease_until"] < now_s):
                self._claims[(channel, transition_id)] = {
                    "state": "IN_PROGRESS",
                    "lease_until": now_s + lease_s,
                }
                return Claim.CLAIMED
            return Claim.BUSY if existing["state"] == "IN_PROGRESS" else Claim.DONE

    def finish(self, channel: str, transition_id: str, state: str, detail: str, now_s: float) -> None:
        with self._lock:
            claim = self._claims.setdefault((channel, transition_id), {"lease_until": now_s})
            claim.update(state=state, detail=detail[:500], finished_at=now_s)

    def release(self, channel: str, transition_id: str) -> None:
        with self._lock:
            claim = self._claims.get((channel, transition_id))
            if claim is not None and claim["state"] == "IN_PROGRESS":
                del self._claims[(channel, transition_id)]

    def state(self, channel: str, transition_id: str, now_s: float | None = None) -> str | None:
        with self._lock:
            claim = self._claims.get((channel, transition_id))
        if claim is None:
            return None
        state = str(claim["state"])
        if state == "IN_PROGRESS" and now_s is not None and claim["lease_until"] < now_s:
            return "STALE"
        return state

    def waiting_copy(self, channel: str, transition_id: str, now_s: float) -> str | None:
        with self._lock:
            wait = self._waits.get((channel, transition_id))
        if wait is None or wait["lease_until"] < now_s:
            return None
        return str(wait["token"])

    def hand_wait_to(
        self, channel: str, transition_id: str, token: str, previous: str | None, now_s: float, lease_s: float
    ) -> bool:
        with self._lock:
            wait = self._waits.get((channel, transition_id))
            if wait is None or wait["lease_until"] < now_s or wait["token"] == (previous or "-"):
                self._waits[(channel, transition_id)] = {"token": token, "lease_until": now_s + lease_s}
                return True
            return False

    def routing(self, transition_id: str) -> list[dict[str, Any]] | None:
        with self._lock:
            stored = self._routing.get(transition_id)
        return None if stored is None else json.loads(json.dumps(stored))

    def routed_previous(self, transition_id: str) -> str | None:
        with self._lock:
            return self._routed_previous.get(transition_id)

    def record_routing(
        self,
        transition_id: str,
        deliveries: list[dict[str, Any]],
        now_s: float,
        previous: str | None = None,
    ) -> list[dict[str, Any]]:
        with self._lock:
            if transition_id not in self._routing and previous is not None:
                self._routed_previous[transition_id] = previous
            stored = self._routing.setdefault(transition_id, json.loads(json.dumps(deliveries)))
        copy: list[dict[str, Any]] = json.loads(json.dumps(stored))
        return copy


# -- watches -------------------------------------------------------------------------------------------


class InMemoryWatchStore:
    """`ports.WatchStore` in dicts."""

    def __init__(self) -> None:
        self._watches: dict[str, Watch] = {}
        self._seen: dict[str, dict[str, str]] = {}

    def add(self, watch: Watch) -> tuple[Watch, bool]:
        existing = self._watches.get(watch.id)
        if existing is not None:
            return existing, False
        stored = watch.model_copy(update={"primed_at": None})
        self._watches[watch.id] = stored
        return stored, True

    def get(self, watch_id: str) -> Watch | None:
        return self._watches.get(watch_id)

    def list(self) -> list[Watch]:
        return sorted(self._watches.values(), key=lambda watch: (watch.created_at, watch.id))

    def delete(self, watch_id: str) -> bool:
        self._seen.pop(watch_id, None)
        return self._watches.pop(watch_id, None) is not None

    def mark_primed(self, watch_id: str, now_iso: str) -> None:
        watch = self._watches.get(watch_id)
        if watch is not None and watch.primed_at is None:
            self._watches[watch_id] = watch.model_copy(update={"primed_at": now_iso})

    def seen_job_ids(self, watch_id: str) -> set[str]:
        return set(self._seen.get(watch_id, {}))

    def mark_seen(self, watch_id: str, job_id: str, job_key: str, now_iso: str) -> None:
        self._seen.setdefault(watch_id, {})[job_id] = job_key


# -- publishing and secrets ----------------------------------------------------------------------------


class RecordingPublisher:
    """`ports.Publisher`: keeps what was published; `fail_next(n)` makes the next n publishes raise
    before anything is published, `down` makes every publish raise."""

    def __init__(self) -> None:
        self.published: list[Transition] = []
        self.down = False
        self._failures = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def fail_next(self, count: int = 1) -> None:
        self._failures += count

    def publish(self, transition: Transition) -> str:
        with self._lock:
            if self.down or self._failures:
                self._failures = max(0, self._failures - 1)
                raise RuntimeError("publish refused (fake)")
            self.published.append(transition)
            return f"msg-{next(self._ids)}"

    def events(self) -> list[tuple[str, str]]:
        return [(t.job_id, t.event) for t in self.published]


class RecordingEmailTopic:
    """`ports.EmailPublisher`: keeps the transitions e-mailed; `fail_next(n)` as for the publisher."""

    def __init__(self) -> None:
        self.sent: list[Transition] = []
        self.destinations: list[str] = []
        self._failures = 0

    def fail_next(self, count: int = 1) -> None:
        self._failures += count

    def publish_email(self, transition: Transition, destination: str) -> str:
        if self._failures:
            self._failures -= 1
            raise RuntimeError("e-mail topic unavailable (fake)")
        self.sent.append(transition)
        self.destinations.append(destination)
        return f"mail-{len(self.sent)}"


class FakeSecrets:
    """`ports.Secrets` from a dict; a missing name is unavailable, as Secrets Manager would say."""

    def __init__(self, values: dict[str, str] | None = None) -> None:
        self.values = dict(values or {})
        self.reads: list[str] = []

    def exists(self, name: str) -> bool:
        """`ports.SecretNames` too: the names of the values held."""
        return name in self.values

    def get(self, name: str) -> str:
        self.reads.append(name)
        if name not in self.values:
            raise SecretUnavailableError(f"secret {name!r} unavailable: ResourceNotFoundException")
        return self.values[name]


# -- upstream ------------------------------------------------------------------------------------------

Answer = HttpResponse | PollError


def json_answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    """An upstream answer with a JSON body."""
    return HttpResponse(
        status_code=status,
        body=json.dumps(body).encode(),
        headers={"content-type": "application/json", **(headers or {})},
    )


class ScriptedUpstream:
    """`ports.Upstream` with scripted answers per job: each poll takes the next answer of the job's
    script, and the last one repeats. A key starting with `/` matches requests whose URL path ends
    with it (a listing); any other key matches requests whose URL, query or body contain it (the
    upstream job id, usually; the longest such key wins)."""

    def __init__(self) -> None:
        self._scripts: dict[str, deque[Answer]] = {}
        self.requests: list[HttpRequest] = []

    def script(self, job_id: str, answers: Iterable[Answer]) -> None:
        self._scripts[job_id] = deque(answers)

    def _script_for(self, request: HttpRequest) -> deque[Answer]:
        path = request.url.split("?", 1)[0]
        for key, answers in self._scripts.items():
            if key.startswith("/") and path.endswith(key):
                return answers
        haystack = request.url + json.dumps(request.json or {}) + json.dumps(request.params or {})
        found = [key for key in self._scripts if not key.startswith("/") and key in haystack]
        if not found:
            raise AssertionError(f"no script for {request.url}")
        return self._scripts[max(found, key=len)]  # `job-12` wins over `job-1`

    async def fetch(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        answers = self._script_for(request)
        answer = answers[0]
        if len(answers) > 1:
            answers.popleft()
        if isinstance(answer, PollError):
            raise answer
        return answer

    async def __aenter__(self) -> ScriptedUpstream:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None


# -- delivery ------------------------------------------------------------------------------------------


@dataclass
class _QueuedCopy:
    due: float
    body: str
    attributes: dict[str, str]


class FakeQueue:
    """`ports.DeliveryQueue` in fake time: delayed copies come back as Lambda SQS records once their
    delay has passed on the clock; dead letters and visibility retries are kept for inspection."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.copies: list[_QueuedCopy] = []
        self.dead_letters: list[tuple[str, str]] = []
        self.dead_letter_attributes: list[dict[str, str]] = []
        self.visibility_retries: list[tuple[str, int]] = []

    def send_later(self, body: str, delay_s: int, attributes: dict[str, str]) -> None:
        self.copies.append(_QueuedCopy(self.clock.now() + delay_s, body, dict(attributes)))

    def retry_later(self, receipt_handle: str, delay_s: int) -> None:
        self.visibility_retries.append((receipt_handle, delay_s))

    def dead_letter(self, body: str, reason: str, attributes: Mapping[str, str] | None = None) -> None:
        self.dead_letters.append((body, reason))
        self.dead_letter_attributes.append(dict(attributes or {}))

    def due_records(self) -> list[dict[str, Any]]:
        """The copies whose delay has passed, taken off the queue as Lambda records."""
        now = self.clock.now()
        due = [copy for copy in self.copies if copy.due <= now]
        self.copies = [copy for copy in self.copies if copy.due > now]
        return [record(copy.body, copy.attributes) for copy in due]

    def next_due(self) -> float | None:
        return min((copy.due for copy in self.copies), default=None)


def record(body: str, attributes: dict[str, str] | None = None) -> dict[str, Any]:
    """A Lambda SQS event record carrying `body`."""
    return {
        "messageId": uuid.uuid4().hex,
        "receiptHandle": uuid.uuid4().hex,
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {
            name: {"stringValue": value, "dataType": "String"} for name, value in (attributes or {}).items()
        },
        "eventSource": "aws:sqs",
    }


def sns_envelope(transition: Transition) -> str:
    """The SQS body an SNS subscription delivers for a published transition."""
    return json.dumps(
        {"Type": "Notification", "MessageId": uuid.uuid4().hex, "Message": json.dumps(transition.to_wire())}
    )


class FakeSlackWebhook:
    """A Slack incoming webhook behind `httpx.MockTransport` (in process, no sockets): keeps what was
    posted; scripted statuses are answered first (`answer(429, retry_after=3)`), then 200."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self._script: deque[tuple[int, dict[str, str]]] = deque()

    def answer(self, status: int, *, retry_after: float | None = None, times: int = 1) -> None:
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        self._script.extend([(status, headers)] * times)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        if self._script:
            status, headers = self._script.popleft()
            return httpx.Response(status, headers=headers, text="scripted")
        self.posts.append(json.loads(request.content))
        return httpx.Response(200, text="ok")

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self._handle))

    def texts(self) -> list[str]:
        return [str(post.get("text", "")) for post in self.posts]


def drain(
    deliver: Callable[[dict[str, Any]], Any],
    queue: FakeQueue,
    clock: FakeClock,
    first: Sequence[dict[str, Any]] = (),
    *,
    max_rounds: int = 1000,
) -> None:
    """Feed `first`, then every copy as it falls due, moving the clock to the next due copy."""
    batch = list(first)
    for _ in range(max_rounds):
        if batch:
            deliver({"Records": batch})
        upcoming = queue.next_due()
        if upcoming is None:
            return
        clock.at = max(clock.at, upcoming)
        batch = queue.due_records()
    raise AssertionError("the queue did not drain")


# -- routes and e-mail subscriptions -----------------------------------------------------------------------

from jobwatch.domain.routing import Route, ordered  # noqa: E402 - kept with the fakes that use it


class InMemoryRouteStore:
    """`ports.RouteStore` in a dict; routes are kept as their wire JSON, as the adapter keeps them."""

    def __init__(self) -> None:
        self._docs: dict[str, str] = {}
        self.writes = 0

    def list(self) -> list[Route]:
        return ordered(Route.model_validate_json(doc) for doc in self._docs.values())

    def get(self, name: str) -> Route | None:
        doc = self._docs.get(name)
        return None if doc is None else Route.model_validate_json(doc)

    def put(self, route: Route) -> bool:
        created = route.name not in self._docs
        self._docs[route.name] = json.dumps(route.to_wire(), sort_keys=True)
        self.writes += 1
        return created

    def delete(self, name: str) -> bool:
        self.writes += 1
        return self._docs.pop(name, None) is not None


class InMemoryEmailSubscriptions:
    """`ports.EmailSubscriptions` in a dict. `standing` holds addresses subscribed outside routes (never
    listed or changed); `confirm=False` leaves new subscriptions pending, as real e-mail does until
    the address confirms. `calls` records every change asked for."""

    def __init__(self, *, confirm: bool = True, standing: Iterable[str] = ()) -> None:
        self.confirm = confirm
        self.standing = set(standing)
        self.filters: dict[str, tuple[str, ...]] = {}
        self.pending: set[str] = set()
        self.calls: list[tuple[str, str, tuple[str, ...]]] = []

    def subscribed(self) -> dict[str, tuple[str, ...] | None]:
        listed: dict[str, tuple[str, ...] | None] = dict(self.filters)
        listed.update(dict.fromkeys(self.pending))
        return listed

    def subscribe(self, address: str, destination_ids: Sequence[str]) -> None:
        ids = tuple(sorted(set(destination_ids)))
        if address in self.standing or address in self.pending:
            return  # left as it is (outside routes), or unchangeable until confirmed
        self.calls.append(("subscribe" if address not in self.filters else "update", address, ids))
        if address not in self.filters and not self.confirm:
            self.pending.add(address)
            return
        self.filters[address] = ids

    def confirm_all(self) -> None:
        """Every pending address clicks its confirmation link (its filter: the one asked for last)."""
        for address in sorted(self.pending):
            ids = next(c[2] for c in reversed(self.calls) if c[1] == address)
            self.filters[address] = ids
        self.pending.clear()

    def unsubscribe(self, address: str) -> None:
        if address in self.filters:
            self.calls.append(("unsubscribe", address, self.filters.pop(address)))


# -- fan-out (D44) -------------------------------------------------------------------------------------


class InMemoryShardLeases:
    """`ports.ShardLeases` in a dict, with the DynamoDB adapter's condition (no lease, or an older tick)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ticks: dict[int, float] = {}
        self.holders: dict[int, str] = {}
        self.writes = 0

    def take(self, shard: int, tick_s: float, holder: str) -> bool:
        with self._lock:
            held = self.ticks.get(shard)
            if held is not None and held >= tick_s:
                return False
            self.ticks[shard], self.holders[shard] = tick_s, holder
            self.writes += 1
            return True


class ListedOrders:
    """`ports.ShardOrders` as a list the test hands to workers (what SQS would deliver)."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.fail = False

    def send(self, bodies: Sequence[str]) -> int:
        if self.fail:
            raise RuntimeError("queue unavailable")
        self.bodies.extend(bodies)
        return len(bodies)

    def take_all(self) -> list[str]:
        bodies, self.bodies = self.bodies, []
        return bodies


# -- Slack interactivity ---------------------------------------------------------------------------------


class InMemoryReplayGuard:
    """`ports.ReplayGuard` in a dict: the first use of a key wins, as with DynamoDB's conditional put
    (`expires_at_s` is kept, as the item's TTL is, and refuses nothing by itself)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seen: dict[str, float] = {}

    def first_use(self, key: str, expires_at_s: float) -> bool:
        with self._lock:
            if key in self.seen:
                return False
            self.seen[key] = expires_at_s
            return True


class RecordingResponder:
    """`ports.InteractionResponder` that keeps each outcome and the message it would send."""

    def __init__(self, *, succeed: bool = True) -> None:
        self.succeed = succeed
        self.outcomes: list[SlackOutcome] = []
        self.messages: list[dict[str, Any]] = []

    def respond(self, outcome: SlackOutcome) -> bool:
        from jobwatch.render.slack_actions import acted_message

        self.outcomes.append(outcome)
        self.messages.append(acted_message(outcome))
        return self.succeed
