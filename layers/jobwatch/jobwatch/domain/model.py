"""The job model shared by every layer: what a job is, what one poll saw, and what changed.

Pure data, no I/O. Field names on the wire are camelCase because the snapshot and the transition
event are a published contract (docs/event-schema.md); Python code uses snake_case attributes.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Phase(StrEnum):
    """Normalized lifecycle phase: every source maps its own statuses onto these five."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    LOST = "LOST"
    """jobwatch's own verdict: upstream said "no such job" N polls in a row (expired or never existed)."""

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_PHASES


TERMINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELED, Phase.LOST})


class Event(StrEnum):
    """What a transition means to a reader; the value is the SNS `event` attribute subscribers filter on."""

    QUEUED = "QUEUED"
    STARTED = "STARTED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    LOST = "LOST"
    STALLED = "STALLED"
    RESUMED = "RESUMED"
    OVERDUE = "OVERDUE"
    UNREACHABLE = "UNREACHABLE"
    AUTH_FAILED = "AUTH_FAILED"
    RECOVERED = "RECOVERED"
    TEST = "TEST"


EVENT_FOR_PHASE: dict[Phase, Event] = {
    Phase.PENDING: Event.QUEUED,
    Phase.RUNNING: Event.STARTED,
    Phase.SUCCEEDED: Event.SUCCEEDED,
    Phase.FAILED: Event.FAILED,
    Phase.CANCELED: Event.CANCELED,
    Phase.LOST: Event.LOST,
}


class WireModel(BaseModel):
    """Base for models that cross a process boundary: camelCase on the wire, frozen in memory."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore")

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class Snapshot(WireModel):
    """One normalized observation of an upstream job.

    `status` is the raw upstream value (kept even when unknown); `phase` is what jobwatch makes of it.
    `details` is source-specific but JSON-only, so it can be stored, compared and published as is.
    """

    phase: Phase
    status: str
    progress: float | None = None
    error: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    status_known: bool = True
    """False when the upstream status is not one the source knows: shown as RUNNING, never alerted on."""


class NotifySettings(WireModel):
    """Per-job overrides of what is notified and when a job counts as stuck."""

    events: list[str] | None = None
    """Only these events are published for the job (None: all). Unknown names are rejected at registration."""
    stall_after_s: int | None = Field(default=None, ge=60)
    """A running job whose progress has not moved for this long is STALLED (None: deployment default)."""
    max_duration_s: int | None = Field(default=None, ge=60)
    """A job running longer than this is OVERDUE (None: deployment default)."""


JOB_ID_MAX = 512
"""Longest upstream job id accepted (Zilliz and Milvus ids are ~30 characters, Weaviate ids user-chosen)."""


class JobSpec(WireModel):
    """Everything needed to poll one job. Holds the *name* of the API-key secret, never the key."""

    source: str
    endpoint: str
    job_id: str
    backend: str | None = None
    cluster_id: str | None = None
    options: dict[str, str] = Field(default_factory=dict)
    secret_name: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    notify: NotifySettings | None = None
    """Per-job notification settings; None means the deployment defaults."""

    @property
    def scope(self) -> str:
        """The part of the identity that sits between endpoint and job id (backend, cluster, database...)."""
        parts = [self.backend or "", self.cluster_id or ""]
        parts += [f"{k}={v}" for k, v in sorted(self.options.items())]
        return "/".join(parts)

    @property
    def key(self) -> str:
        """Stable, URL-safe identity: the same job registered twice gets the same key."""
        raw = "\n".join([self.source, self.endpoint.rstrip("/").lower(), self.scope, self.job_id])
        digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:20]
        return f"{self.source}.{digest}"


class ProgressMark(WireModel):
    """A point of a job's progress history: when jobwatch saw (or upstream says) this progress."""

    at: str
    progress: float


class Health(WireModel):
    """What jobwatch knows about a job besides its snapshot: poll-error streaks and open alerts.

    Counters stop growing once they reach the alert thresholds, so a long outage costs a bounded
    number of writes; quiet polls never touch this.
    """

    consecutive_errors: int = 0
    not_found_streak: int = 0
    last_error: str | None = None
    last_error_kind: str | None = None
    alert: str | None = None
    """UNREACHABLE or AUTH_FAILED while that alert is open (RECOVERED closes it)."""
    stalled: bool = False
    overdue: bool = False
    observed_since: str | None = None
    """First successful observation: the start of the job for OVERDUE when upstream gives none."""
    retry_not_before: str | None = None
    """Upstream answered 429 with a `Retry-After` reaching past the next scheduled poll: no poll of
    this job is sent before this time. Cleared by the next successful poll."""
    progress_baseline: ProgressMark | None = None
    """Where the current run's progress started: the base of the ETA's rate (`domain.eta`, D41).
    Changed only inside writes that happen anyway; None for jobs stored before ETAs existed."""
    suppressed: int = 0
    """Transitions not published because the job was snoozed or muted (`domain.quiet`), counted since
    the last snooze or mute was set; kept in the writes that recorded them, so counting costs nothing."""
    last_suppressed: str | None = None
    """The last of them: `<EVENT> at <time>`."""


class Quiet(WireModel):
    """Whether people asked jobwatch to keep quiet about a job (`domain.quiet`): muted (nothing is
    published) or snoozed until a time (only urgent events are). Set through the API or the CLI."""

    muted: bool = False
    muted_by: str | None = None
    snoozed_until: str | None = None
    """RFC 3339 UTC; past it the snooze is over (nothing needs to clear it)."""
    snoozed_by: str | None = None


class TrackedJob(WireModel):
    """A job as stored: its spec, the last snapshot seen, and optimistic-concurrency bookkeeping."""

    spec: JobSpec
    snapshot: Snapshot | None = None
    version: int = 0
    created_at: str
    updated_at: str
    changed_at: str | None = None
    """When the snapshot last changed (phase or progress): the base for stall detection."""
    health: Health = Field(default_factory=Health)
    owes_transitions: bool = Field(default=False, exclude=True)
    """Read from the item, never stored in the document: older transitions still wait in the outbox."""
    last_transition_id: str | None = None
    """The job's latest notified transition: the next one names it, so channels can keep order."""
    life: str = ""
    """Set when the job is tracked (`transitions.new_life`) and part of every transition id, so a
    job untracked and tracked again never reuses one. Empty for jobs tracked before lives existed."""
    quiet: Quiet = Field(default_factory=Quiet)
    """Snoozed or muted (`domain.quiet`); the default (neither) is left out of the stored item."""

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def terminal(self) -> bool:
        return self.snapshot is not None and self.snapshot.phase.terminal


MAX_ID_CHARS = 256
"""Longest transition id or job key an event may carry (ours are under 60 characters); a longer one
in a queued message is refused as unreadable before it could reach a DynamoDB key."""


class Transition(WireModel):
    """A real change of phase, published once as the versioned transition event (schema below)."""

    schema_: str = Field(default="jobwatch.transition/v1", alias="schema")
    transition_id: str = Field(max_length=MAX_ID_CHARS)
    job_key: str = Field(max_length=MAX_ID_CHARS)
    source: str
    job_id: str
    event: str
    """An `Event` value; typed as str so consumers accept events added later (additive, same schema)."""
    severity: str
    occurred_at: str
    job: JobSpec
    previous: Snapshot | None
    current: Snapshot
    note: str | None = None
    """Why a health event fired (e.g. the poll error, which secret to fix); None for phase changes."""
    previous_transition_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    """The job's transition notified just before this one (None for its first): a channel that
    receives them out of order (SQS standard queues may) holds this one until that one is out."""
    eta: str | None = None
    """Estimated completion of a RUNNING job at `occurred_at` (`domain.eta`); None when there is no
    estimate. Top level, not in `current`: it comes from the job's history, not from one poll."""


WatchKind = Literal["zilliz-cloud-v1", "zilliz-cloud-v2", "milvus", "weaviate-backups"]
"""What a watch lists: a Zilliz Cloud cluster (v1 or v2 API), a Milvus instance, a Weaviate backup backend."""


class Watch(WireModel):
    """A watch as stored and shown."""

    id: str = Field(description="Stable id: `<kind>.<hash>` of kind, endpoint and scope.")
    kind: WatchKind
    endpoint: str
    cluster_id: str | None = None
    backend: str | None = None
    db_name: str | None = None
    secret_name: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    notify: NotifySettings | None = None
    created_at: str
    primed_at: str | None = Field(
        default=None,
        description="When the first listing succeeded; jobs already finished then were recorded silently.",
    )


SCHEMA_ID = "jobwatch.transition/v1"

MAX_ERROR_CHARS = 4000
MAX_DETAIL_TEXT_CHARS = 1000
MAX_SNAPSHOT_BYTES = 96_000
"""A job item holds the snapshot plus up to two in the outbox (previous/current): this keeps it far
below DynamoDB's 400 KB item limit and SNS's 256 KiB message limit whatever upstream sends."""


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[: limit - 40]}... [truncated, {len(text)} chars in all]"


def _clip_details(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return _clip(value, limit)
    if isinstance(value, list):
        return [_clip_details(item, limit) for item in value]
    if isinstance(value, dict):
        return {key: _clip_details(item, limit) for key, item in value.items()}
    return value


def bounded(snapshot: Snapshot) -> Snapshot:
    """Cap upstream text so one huge error can never make a job unstorable or unpublishable."""
    error = None if snapshot.error is None else _clip(snapshot.error, MAX_ERROR_CHARS)
    details = _clip_details(snapshot.details, MAX_DETAIL_TEXT_CHARS)
    clipped = snapshot.model_copy(update={"error": error, "details": details})
    if len(clipped.model_dump_json()) > MAX_SNAPSHOT_BYTES:
        small = {k: v for k, v in details.items() if not isinstance(v, list | dict)}
        clipped = clipped.model_copy(update={"details": {**small, "detailsTruncated": True}})
    return clipped
