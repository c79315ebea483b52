"""Request and response models of the registration API, shared with the CLI.

Why one module: the HTTP API validates its bodies with these models (Powertools turns them into the
OpenAPI document), and the CLI builds the very same models from its flags, so a registration means
the same thing and fails the same way whichever door it came through. Field checks that need no I/O
live here as validators (each failure is reported against its own field); checks that need the
network or the source registry's per-source rules live in `jobwatch.registration`.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator
from pydantic.alias_generators import to_camel

from jobwatch.domain.eta import NoEstimate, job_eta
from jobwatch.domain.model import (
    JOB_ID_MAX,
    Event,
    JobSpec,
    NotifySettings,
    Phase,
    Quiet,
    Snapshot,
    TrackedJob,
    Transition,
    Watch,
    WatchKind,
)
from jobwatch.domain.routing import MAX_ROUTES, Route
from jobwatch.domain.text import unsafe_character
from jobwatch.sources import UnknownSourceError, get_source, source_names

SECRET_NAME_PATTERN = r"^[A-Za-z0-9/_+=.@:-]{1,2048}$"
LABEL_KEY_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
OPTION_KEY_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
MAX_LABELS = 32
MAX_OPTIONS = 16
EVENT_NAMES: tuple[str, ...] = tuple(event.value for event in Event)

_SECRET_NAME = re.compile(SECRET_NAME_PATTERN)
_LABEL_KEY = re.compile(LABEL_KEY_PATTERN)
_OPTION_KEY = re.compile(OPTION_KEY_PATTERN)

_SOURCE_ENUM: list[JsonValue] = list(source_names())


def check_source(name: str) -> str:
    """The source name if it is registered; the error lists the valid ones."""
    try:
        get_source(name)
    except UnknownSourceError as exc:
        raise ValueError(str(exc)) from None
    return name


def check_secret_name(name: str | None) -> str | None:
    if name is not None and not _SECRET_NAME.match(name):
        raise ValueError("secret name has characters Secrets Manager does not allow")
    return name


def check_text(value: str | None) -> str | None:
    """Identifiers and names are refused when they hold a character that could make them print as
    something else (controls, bidi overrides, invisible characters): see `domain.text.unsafe_character`."""
    if value is not None and (problem := unsafe_character(value)) is not None:
        raise ValueError(f"contains {problem}; ids and names must be plain visible text")
    return value


def check_labels(labels: dict[str, str]) -> dict[str, str]:
    if len(labels) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels")
    for key, value in labels.items():
        if not _LABEL_KEY.match(key):
            raise ValueError(f"label key {key!r} must match {LABEL_KEY_PATTERN}")
        if len(value) > 256:
            raise ValueError(f"label {key!r}: value longer than 256 characters")
        if (problem := unsafe_character(value)) is not None:
            raise ValueError(f"label {key!r}: value contains {problem}")
    return labels


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case accepted too (the CLI passes Python names); unknowns refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def _event_enum(schema: dict[str, Any]) -> None:
    """Document the accepted event names in the OpenAPI schema (the validator enforces them)."""
    events = schema.get("properties", {}).get("events")
    if isinstance(events, dict):
        for option in events.get("anyOf", []):
            if option.get("type") == "array":
                option["items"] = {"type": "string", "enum": list(EVENT_NAMES)}


class NotifyRequest(NotifySettings):
    """Per-job notification settings as registered: `NotifySettings` with event names checked."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_event_enum)

    @field_validator("events")
    @classmethod
    def _known_events(cls, events: list[str] | None) -> list[str] | None:
        if events is None:
            return None
        unknown = [name for name in events if name not in EVENT_NAMES]
        if unknown:
            raise ValueError(f"unknown event {unknown[0]!r}; valid events: {', '.join(EVENT_NAMES)}")
        return list(dict.fromkeys(events))

    def settings(self) -> NotifySettings:
        return NotifySettings.model_validate(self.model_dump())


class _Registration(ApiModel):
    """Fields every registration (job or watch) has, with the same checks."""

    endpoint: str = Field(
        min_length=1,
        max_length=2048,
        description="API base URL: https (plain http only for loopback when the deployment allows it). "
        "Must not resolve to link-local, loopback, private or reserved addresses unless allow-listed.",
        examples=["https://controller.api.gcp-us-west1.zillizcloud.com"],
    )
    secret_name: str | None = Field(
        default=None,
        max_length=2048,
        description="Name of the Secrets Manager secret holding the API key (never the key itself).",
        json_schema_extra={"pattern": SECRET_NAME_PATTERN},
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description=f"Free-form key=value tags (at most {MAX_LABELS}); filterable with `label=k=v`.",
        json_schema_extra={"propertyNames": {"pattern": LABEL_KEY_PATTERN}, "maxProperties": MAX_LABELS},
    )
    notify: NotifyRequest | None = Field(default=None, description="Per-job notification settings.")
    allow_missing_secret: bool = Field(
        default=False,
        description="Accept a `secretName` that does not exist yet (it is refused otherwise, so a typo "
        "cannot register a job whose every poll will fail). Polls fail as AUTH_FAILED until it exists.",
    )

    _secret = field_validator("secret_name")(check_secret_name)
    _labels = field_validator("labels")(check_labels)


class JobRegistration(_Registration):
    """`POST /jobs` and `jobwatch track`: one job to track."""

    source: str = Field(
        description="Job source.", json_schema_extra={"enum": _SOURCE_ENUM}, examples=["zilliz-import-v1"]
    )
    job_id: str = Field(min_length=1, max_length=JOB_ID_MAX, description="Upstream job id.")
    backend: str | None = Field(
        default=None, max_length=256, description="Weaviate backup backend (s3, gcs, azure, filesystem)."
    )
    cluster_id: str | None = Field(default=None, max_length=256, description="Zilliz Cloud cluster id.")
    options: dict[str, str] = Field(
        default_factory=dict,
        description="Source options (bucket, path, dbName, apiVersion).",
        json_schema_extra={"propertyNames": {"pattern": OPTION_KEY_PATTERN}, "maxProperties": MAX_OPTIONS},
    )

    _source = field_validator("source")(check_source)
    _plain = field_validator("job_id", "backend", "cluster_id")(check_text)

    @field_validator("options")
    @classmethod
    def _options(cls, options: dict[str, str]) -> dict[str, str]:
        if len(options) > MAX_OPTIONS:
            raise ValueError(f"at most {MAX_OPTIONS} options")
        for key, value in options.items():
            if not _OPTION_KEY.match(key):
                raise ValueError(f"option name {key!r} must match {OPTION_KEY_PATTERN}")
            if len(value) > 1024:
                raise ValueError(f"option {key!r}: value longer than 1024 characters")
            if (problem := unsafe_character(value)) is not None:
                raise ValueError(f"option {key!r}: value contains {problem}")
        return options


class WatchRegistration(_Registration):
    """`POST /watches` and `jobwatch watch`: list a cluster's or backend's jobs and track new ones."""

    kind: WatchKind = Field(description="What to list.")
    cluster_id: str | None = Field(
        default=None, max_length=256, description="Zilliz Cloud cluster id (zilliz-cloud-v1/v2)."
    )
    backend: str | None = Field(
        default=None, max_length=256, description="Weaviate backup backend (weaviate-backups)."
    )
    db_name: str | None = Field(default=None, max_length=256, description="Milvus database (milvus).")

    _plain = field_validator("backend", "cluster_id", "db_name")(check_text)


# -- responses -------------------------------------------------------------------------------------------


class FieldProblem(ApiModel):
    field: str = Field(
        description="Wire name of the field (dotted for nested fields); `body` for the whole body."
    )
    message: str


class ErrorBody(ApiModel):
    """Every error response: a sentence, and one entry per offending field where there is one."""

    message: str
    errors: list[FieldProblem] = Field(default_factory=list)


class JobResource(ApiModel):
    """A tracked job as the API shows it."""

    model_config = ConfigDict(extra="ignore")
    key: str = Field(description="Stable job key: `<source>.<hash>` of source, endpoint, scope and job id.")
    spec: JobSpec
    phase: Phase | None = Field(description="Current phase; null until the first poll.")
    snapshot: Snapshot | None
    version: int
    created_at: str
    updated_at: str
    recent_transitions: list[Transition] | None = Field(
        default=None, description="Newest first; only filled by `GET /jobs/{key}` (null in listings)."
    )
    eta: str | None = Field(
        default=None,
        description="Estimated completion of a RUNNING job (RFC 3339 UTC): linear, from the progress "
        "stored since its run began; null when there is no estimate (see `etaNote`).",
    )
    eta_note: str | None = Field(
        default=None,
        description="Why there is no estimate (`progress flat`, `stalled`, `progress unknown`, ...); "
        "null when there is one or the job is not RUNNING.",
    )
    quiet: Quiet = Field(
        default_factory=Quiet,
        description="Snoozed (only FAILED, LOST and AUTH_FAILED are published until `snoozedUntil`) or "
        "muted (nothing is published), and by whom.",
    )
    suppressed: int = Field(
        default=0, description="Transitions left unpublished by the current (or last) snooze or mute."
    )
    last_suppressed: str | None = Field(default=None, description="The last of them: `<EVENT> at <time>`.")

    @classmethod
    def of(
        cls, job: TrackedJob, transitions: list[Transition] | None = None, *, now_iso: str | None = None
    ) -> JobResource:
        snapshot = job.snapshot
        eta = job_eta(job, now_iso)
        return cls(
            key=job.key,
            spec=job.spec,
            phase=snapshot.phase if snapshot else None,
            snapshot=snapshot,
            version=job.version,
            created_at=job.created_at,
            updated_at=job.updated_at,
            recent_transitions=transitions,
            eta=eta.at,
            eta_note=None if eta.reason is NoEstimate.NOT_RUNNING or eta.reason is None else eta.reason.value,
            quiet=job.quiet,
            suppressed=job.health.suppressed,
            last_suppressed=job.health.last_suppressed,
        )


class SnoozeRequest(ApiModel):
    """`PUT /jobs/{key}/snooze`: for how long."""

    for_: str = Field(
        alias="for",
        max_length=32,
        description="How long: `4h`, `90m`, `1d12h` (1 minute to 30 days); it replaces a running snooze.",
        examples=["4h"],
    )


class JobList(ApiModel):
    model_config = ConfigDict(extra="ignore")
    jobs: list[JobResource]
    next_token: str | None = Field(
        description="Pass as `nextToken` for the next page; null on the last page."
    )


class Deleted(ApiModel):
    model_config = ConfigDict(extra="ignore")
    deleted: str = Field(description="Key or id of what was removed.")


class TestNotification(ApiModel):
    model_config = ConfigDict(extra="ignore")
    transition_id: str = Field(description="`<key>#test-<uuid>`: never collides with a real transition.")
    message_id: str = Field(description="SNS message id of the publish.")


class WatchList(ApiModel):
    model_config = ConfigDict(extra="ignore")
    watches: list[Watch]


# -- routes ----------------------------------------------------------------------------------------------


class RoutesApply(ApiModel):
    """`PUT /routes` and `jobwatch routes apply`: the whole set of routes. The stored set becomes exactly
    this one; each route's `position` is its place in the list."""

    routes: list[Route] = Field(
        max_length=MAX_ROUTES, description=f"Every route, in evaluation order (at most {MAX_ROUTES})."
    )


class RouteList(ApiModel):
    model_config = ConfigDict(extra="ignore")
    routes: list[Route] = Field(description="The stored routes in evaluation order.")
    defaults: list[Route] | None = Field(
        description="Only when no route is stored: the deployment's default routes, which apply then."
    )


class RouteChange(ApiModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    fields: list[str] = Field(description="The route's wire fields that differ from the stored route.")


class AddressChange(ApiModel):
    model_config = ConfigDict(extra="ignore")
    address: str
    destinations: list[str] = Field(description="The e-mail destination ids the address's filter names.")


class SubscriptionChanges(ApiModel):
    """What happened (or, in a dry run, would happen) to the alert e-mail topic's route subscriptions."""

    model_config = ConfigDict(extra="ignore")
    subscribed: list[AddressChange] = Field(
        default_factory=list, description="New subscriptions: each address receives one confirmation e-mail."
    )
    updated: list[AddressChange] = Field(
        default_factory=list, description="Confirmed subscriptions whose filter now names other destinations."
    )
    unsubscribed: list[str] = Field(default_factory=list, description="Addresses no route names any more.")
    pending: list[str] = Field(
        default_factory=list,
        description="Addresses that have not confirmed yet: SNS allows no change before they do.",
    )


class RoutesDiff(ApiModel):
    """The answer of `PUT /routes`: each route by name, and the e-mail subscriptions."""

    model_config = ConfigDict(extra="ignore")
    dry_run: bool = Field(description="True: nothing was written.")
    added: list[str]
    changed: list[RouteChange]
    removed: list[str]
    unchanged: list[str]
    subscriptions: SubscriptionChanges


class RouteVerdict(ApiModel):
    model_config = ConfigDict(extra="ignore")
    route: str
    matched: bool
    reasons: list[str] = Field(description="`matches`, or why not (one reason per unmet condition).")
    stopped_here: bool = Field(description="It matched and has `continue: false`: later routes are skipped.")
    skipped: bool = Field(description="Not tried: an earlier matching route has `continue: false`.")


class DeliveryView(ApiModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(description="Destination id (one delivery per destination, whatever the routes).")
    type: str
    routes: list[str] = Field(description="The matching routes that lead to this destination.")
    mentions: list[str] = Field(description="Slack mentions for this event, merged from those routes.")


class Explanation(ApiModel):
    """`GET /jobs/{key}/routes` and `jobwatch routes explain`: where a transition of the job would go."""

    model_config = ConfigDict(extra="ignore")
    job_key: str
    event: Event
    severity: str
    defaults: bool = Field(description="True: no route is stored, so the deployment's default routes apply.")
    published: bool = Field(
        description="False when the job's `notify.events` leaves this event out: the poller does not publish "
        "it, so it goes nowhere whatever the routes say."
    )
    routes: list[RouteVerdict] = Field(description="Every route in evaluation order with its verdict.")
    deliveries: list[DeliveryView]
