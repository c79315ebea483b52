"""Simulator of the upstream job-status APIs jobwatch polls (Weaviate, Zilliz v1/v2, Milvus, Pinecone).

Why: jobwatch must be tested offline, but its hard cases are the upstreams' quirks (Weaviate's zero
`completedAt` while running, Zilliz v1's 0..1 `readyPercentage`, HTTP 200 carrying an error code,
401 bodies per vendor...). Every body here follows the shapes recorded in shared/reference; the
simulator never invents a shape, only values.

A job is a script of steps. Each status request serves the current step, then moves on; the last step
repeats forever. A step is either a job *state* (rendered into that source's exact body) or a *fault*
(HTTP error, 429, malformed JSON, schema drift, hang, reset...). Another process can drive it through
the `/_sim/*` control API; `python -m <package>.simulator --port P` runs it standalone.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from http import HTTPStatus
from typing import Any, NamedTuple

from .http11 import Disconnect, HttpApp, Request, Response

__all__ = [
    "MILVUS",
    "PINECONE",
    "SOURCES",
    "WEAVIATE_BACKUP",
    "WEAVIATE_EXPORT",
    "WEAVIATE_RESTORE",
    "ZILLIZ_V1",
    "ZILLIZ_V2",
    "Fault",
    "FaultKind",
    "JobState",
    "RequestRecord",
    "Step",
    "UpstreamSimulator",
    "fault_api_error",
    "fault_array",
    "fault_disconnect",
    "fault_drift",
    "fault_hang",
    "fault_html",
    "fault_http",
    "fault_malformed",
    "fault_rate_limit",
    "fault_reset",
    "hold",
    "state",
    "steps_from_json",
    "steps_to_json",
    "unknown_status",
]

WEAVIATE_EXPORT = "weaviate-export"
WEAVIATE_BACKUP = "weaviate-backup"
WEAVIATE_RESTORE = "weaviate-restore"
ZILLIZ_V1 = "zilliz-import-v1"
ZILLIZ_V2 = "zilliz-import-v2"
MILVUS = "milvus-import"
PINECONE = "pinecone-import"
SOURCES: tuple[str, ...] = (
    WEAVIATE_EXPORT,
    WEAVIATE_BACKUP,
    WEAVIATE_RESTORE,
    ZILLIZ_V1,
    ZILLIZ_V2,
    MILVUS,
    PINECONE,
)
_WEAVIATE = frozenset({WEAVIATE_EXPORT, WEAVIATE_BACKUP, WEAVIATE_RESTORE})
_ENVELOPED = frozenset({ZILLIZ_V1, ZILLIZ_V2, MILVUS})

_DEFAULT_STATUS: dict[str, str | None] = {
    WEAVIATE_EXPORT: "TRANSFERRING",
    WEAVIATE_BACKUP: "STARTED",
    WEAVIATE_RESTORE: "STARTED",
    ZILLIZ_V1: None,
    ZILLIZ_V2: "Importing",
    MILVUS: "Importing",
    PINECONE: "InProgress",
}
_STATUS_KEYS: dict[str, tuple[str, ...]] = {
    WEAVIATE_EXPORT: ("status",),
    WEAVIATE_BACKUP: ("status",),
    WEAVIATE_RESTORE: ("status",),
    # Zilliz v1 has no status word: its state is readyPercentage plus errorMessage.
    ZILLIZ_V1: ("readyPercentage", "errorMessage"),
    ZILLIZ_V2: ("state",),
    MILVUS: ("state",),
    PINECONE: ("status",),
}
_DEFAULT_COLLECTION: dict[str, str] = {
    WEAVIATE_EXPORT: "Article",
    WEAVIATE_BACKUP: "Article",
    WEAVIATE_RESTORE: "Article",
    ZILLIZ_V1: "medium_articles",
    ZILLIZ_V2: "medium_articles",
    MILVUS: "medium_articles",
    PINECONE: "articles",
}
_WEAVIATE_TERMINAL = frozenset({"SUCCESS", "FAILED", "CANCELED"})
_PINECONE_TERMINAL = frozenset({"Completed", "Failed", "Cancelled"})
_ZERO_TIME = "0001-01-01T00:00:00.000Z"
"""Go's zero time as Weaviate serializes an unset `completedAt` (it is never omitted)."""
_FILE_SIZE = 3_279_917
_DEFAULT_TOTAL_ROWS = 100_000

# Bodies copied from shared/reference samples (recorded or synthesized from server code).
_WEAVIATE_ANON_401 = (
    '{"code":401,"message": "anonymous access not enabled. Please authenticate through one of the '
    'available methods: [API-keys, OIDC]" }'
)
_ZILLIZ_V1_401 = {
    "code": 80001,
    "message": "Invalid token: Your token is not valid. Please double-check your request parameters "
    "and ensure that you have provided a valid token.",
}
_ZILLIZ_V2_401 = {"code": 21119, "message": "The apikey is illegal"}
_MILVUS_401 = {"code": 1800, "message": "user hasn't authenticated"}
# Not recorded anywhere we could read: Zilliz's code for an unknown job id and Pinecone's rpcStatus
# texts. Chosen to follow each API's convention (HTTP 200 + non-success code; gRPC status codes).
ZILLIZ_V1_NOT_FOUND_CODE = 80020
ZILLIZ_V2_NOT_FOUND_CODE = 40020
ZILLIZ_V1_BAD_PARAMS_CODE = 80000
_GRPC_CODE = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 422: 3, 429: 8, 500: 13, 502: 14, 503: 14, 504: 4}
_HTML_503 = (
    "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
    "<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


# ---------------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobState:
    """A source-independent job state; the simulator renders it into the source's exact body.

    `status` is in the source's own vocabulary (`TRANSFERRING`, `Importing`, `InProgress`...) and is
    served verbatim, so unknown words are allowed. Zilliz v1 has no status field: use `ready`
    (fraction 0..1) and `error` (its `errorMessage`); a `status` there only feeds the list endpoint.
    `progress` is a percentage 0..100 (v2/Milvus `progress`, Pinecone `percentComplete`; Zilliz v1
    `readyPercentage = progress/100` when `ready` is not given). `rows`/`total_rows` are imported and
    total rows (Pinecone `recordsImported` = rows), `objects` the exported objects of a Weaviate export,
    `size` a Weaviate backup size in GiB. `shards` replaces Weaviate's generated `shardStatus`, `files`
    the generated file list of import details. `extra` is merged into the job object (the `data` of
    enveloped APIs) and `drop` removes keys from it, for schema-drift scripts.
    """

    status: str | None = None
    progress: float | None = None
    ready: float | None = None
    rows: int | None = None
    total_rows: int | None = None
    objects: int | None = None
    error: str | None = None
    shards: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None
    files: tuple[str, ...] | None = None
    size: float | None = None
    extra: Mapping[str, Any] | None = None
    drop: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for attr, key in _STATE_KEYS:
            value = getattr(self, attr)
            if value is None or (attr == "drop" and not value):
                continue
            if attr in ("files", "drop"):
                value = list(value)
            elif attr in ("shards", "extra"):
                value = _plain(value)
            out[key] = value
        return out

    @classmethod
    def from_json(cls, data: Any) -> JobState:
        """Accepts the `to_json` form, snake_case keys, `errorMessage` for `error`, or a bare status."""
        if isinstance(data, str):
            return cls(status=data)
        if not isinstance(data, Mapping):
            raise ValueError(f"a state must be a JSON object or a status string, got {type(data).__name__}")
        kwargs: dict[str, Any] = {}
        aliases = {key: attr for attr, key in _STATE_KEYS}
        aliases.update({attr: attr for attr, _ in _STATE_KEYS})
        aliases.update({"errorMessage": "error", "error_message": "error"})
        for key, value in data.items():
            attr = aliases.get(key)
            if attr is None:
                raise ValueError(f"unknown state field {key!r}")
            if attr in ("files", "drop") and value is not None:
                value = tuple(str(v) for v in value)
            kwargs[attr] = value
        return cls(**kwargs)


_STATE_KEYS: tuple[tuple[str, str], ...] = (
    ("status", "status"),
    ("progress", "progress"),
    ("ready", "ready"),
    ("rows", "rows"),
    ("total_rows", "totalRows"),
    ("objects", "objects"),
    ("error", "error"),
    ("shards", "shards"),
    ("files", "files"),
    ("size", "size"),
    ("extra", "extra"),
    ("drop", "drop"),
)


class FaultKind(StrEnum):
    HTTP = "http"
    """Any HTTP status with a body (default: the source's own error shape; or HTML)."""
    RATE_LIMIT = "rate_limit"
    """429 with an optional Retry-After."""
    MALFORMED = "malformed"
    """HTTP 200, `application/json`, truncated JSON."""
    ARRAY = "array"
    """HTTP 200 with a JSON array instead of an object."""
    DRIFT = "drift"
    """The job's last state with keys removed (default: the source's status key)."""
    API_ERROR = "api_error"
    """`{code, message}` with HTTP 200 (Zilliz/Milvus convention) or the given status."""
    HANG = "hang"
    """Sleep `seconds`, then close without answering: longer than the client's read timeout."""
    RESET = "reset"
    """TCP reset instead of an answer."""
    DISCONNECT = "disconnect"
    """Graceful close instead of an answer."""


@dataclass(frozen=True, slots=True)
class Fault:
    """A non-state answer. Fields used depend on `kind` (see FaultKind)."""

    kind: FaultKind
    status: int | None = None
    body: str | None = None
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    retry_after: str | None = None
    code: int | None = None
    message: str | None = None
    seconds: float = 30.0
    drop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name, value in self.headers:
            if any(c in name + value for c in "\r\n"):
                raise ValueError(f"header {name!r} contains a line break")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.value}
        if self.status is not None:
            out["status"] = self.status
        if self.body is not None:
            out["body"] = self.body
        if self.content_type is not None:
            out["contentType"] = self.content_type
        if self.headers:
            out["headers"] = dict(self.headers)
        if self.retry_after is not None:
            out["retryAfter"] = self.retry_after
        if self.code is not None:
            out["code"] = self.code
        if self.message is not None:
            out["message"] = self.message
        if self.kind is FaultKind.HANG:
            out["seconds"] = self.seconds
        if self.drop:
            out["drop"] = list(self.drop)
        return out

    @classmethod
    def from_json(cls, data: Any) -> Fault:
        if not isinstance(data, Mapping) or "kind" not in data:
            raise ValueError("a fault must be a JSON object with a 'kind'")
        headers = data.get("headers") or {}
        retry_after = data.get("retryAfter", data.get("retry_after"))
        return cls(
            kind=FaultKind(data["kind"]),
            status=data.get("status"),
            body=data.get("body"),
            content_type=data.get("contentType", data.get("content_type")),
            headers=tuple((str(k), str(v)) for k, v in dict(headers).items()),
            retry_after=None if retry_after is None else str(retry_after),
            code=data.get("code"),
            message=data.get("message"),
            seconds=float(data.get("seconds", 30.0)),
            drop=tuple(str(k) for k in data.get("drop") or ()),
        )


@dataclass(frozen=True, slots=True)
class Step:
    """One entry of a job script: a state or a fault, served `repeat` times (or, with `hold`, until
    `advance()`), after `delay_ms` on top of the global latency. A step with neither state nor fault
    and `hold=True` is a bare `hold()`: it re-serves the previous step until released."""

    state: JobState | None = None
    fault: Fault | None = None
    repeat: int = 1
    hold: bool = False
    delay_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.state is not None and self.fault is not None:
            raise ValueError("a step is a state or a fault, not both")
        if self.state is None and self.fault is None and not self.hold:
            raise ValueError("a step needs a state or a fault")
        if self.repeat < 1:
            raise ValueError("repeat must be >= 1")

    @property
    def is_bare_hold(self) -> bool:
        return self.state is None and self.fault is None

    def times(self, n: int) -> Step:
        """This step served `n` times before the script moves on."""
        return replace(self, repeat=n)

    def held(self) -> Step:
        """This step served until `UpstreamSimulator.advance()` releases it."""
        return replace(self, hold=True)

    def delayed(self, ms: float) -> Step:
        """This step answered `ms` later than the global latency."""
        return replace(self, delay_ms=ms)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.state is not None:
            out["state"] = self.state.to_json()
        if self.fault is not None:
            out["fault"] = self.fault.to_json()
        if self.repeat != 1:
            out["repeat"] = self.repeat
        if self.hold:
            out["hold"] = True
        if self.delay_ms:
            out["delayMs"] = self.delay_ms
        return out

    @classmethod
    def from_json(cls, data: Any) -> Step:
        if isinstance(data, str):
            return cls(state=JobState(status=data))
        if not isinstance(data, Mapping):
            raise ValueError(f"a step must be a JSON object, got {type(data).__name__}")
        unknown = set(data) - {"state", "fault", "repeat", "hold", "delayMs", "delay_ms"}
        if unknown:
            raise ValueError(f"unknown step fields {sorted(unknown)}")
        return cls(
            state=JobState.from_json(data["state"]) if data.get("state") is not None else None,
            fault=Fault.from_json(data["fault"]) if data.get("fault") is not None else None,
            repeat=int(data.get("repeat", 1)),
            hold=bool(data.get("hold", False)),
            delay_ms=float(data.get("delayMs", data.get("delay_ms", 0.0))),
        )


def steps_to_json(steps: Iterable[Step]) -> list[dict[str, Any]]:
    return [s.to_json() for s in steps]


def steps_from_json(data: Any) -> list[Step]:
    if not isinstance(data, list):
        raise ValueError("steps must be a JSON array")
    return [Step.from_json(item) for item in data]


def _plain(value: Any) -> Any:
    """Mappings/tuples to JSON-ready dicts/lists (for to_json of nested state fields)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# -- builders: scripts read like [state("STARTED"), fault_http(500), state("SUCCESS")] ---------------


def state(
    status: str | None = None,
    *,
    progress: float | None = None,
    ready: float | None = None,
    rows: int | None = None,
    total_rows: int | None = None,
    objects: int | None = None,
    error: str | None = None,
    error_message: str | None = None,
    shards: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
    files: Sequence[str] | None = None,
    size: float | None = None,
    extra: Mapping[str, Any] | None = None,
    drop: Sequence[str] = (),
    repeat: int = 1,
    hold: bool = False,
    delay_ms: float = 0.0,
) -> Step:
    """A state step. `error_message` is an alias of `error` (Zilliz v1 calls it `errorMessage`)."""
    job_state = JobState(
        status=status,
        progress=progress,
        ready=ready,
        rows=rows,
        total_rows=total_rows,
        objects=objects,
        error=error if error is not None else error_message,
        shards=shards,
        files=None if files is None else tuple(files),
        size=size,
        extra=extra,
        drop=tuple(drop),
    )
    return Step(state=job_state, repeat=repeat, hold=hold, delay_ms=delay_ms)


def unknown_status(word: str = "REBALANCING", *, repeat: int = 1) -> Step:
    """A state whose status word the source never documented (must read as 'unknown, non-terminal')."""
    return state(word, repeat=repeat)


def fault_http(
    status: int = 500,
    body: str | None = None,
    *,
    content_type: str | None = None,
    headers: Mapping[str, str] | None = None,
    repeat: int = 1,
) -> Step:
    """HTTP error. Without `body`, the source's own error shape (Weaviate `{"error":[{"message"}]}`,
    Zilliz/Milvus `{code,message}`, Pinecone rpcStatus)."""
    fault = Fault(
        FaultKind.HTTP,
        status=status,
        body=body,
        content_type=content_type,
        headers=tuple((headers or {}).items()),
    )
    return Step(fault=fault, repeat=repeat)


def fault_html(status: int = 503, body: str | None = None, *, repeat: int = 1) -> Step:
    """An HTML error page from a proxy in front of the API (nginx-style 503 by default)."""
    return fault_http(status, body or _HTML_503, content_type="text/html", repeat=repeat)


def fault_rate_limit(
    retry_after: float | str | None = 1, *, body: str | None = None, repeat: int = 1
) -> Step:
    """429 Too Many Requests with `Retry-After` (seconds or an HTTP date; None omits the header)."""
    value = None if retry_after is None else _retry_after_text(retry_after)
    return Step(fault=Fault(FaultKind.RATE_LIMIT, status=429, body=body, retry_after=value), repeat=repeat)


def fault_malformed(*, repeat: int = 1) -> Step:
    return Step(fault=Fault(FaultKind.MALFORMED), repeat=repeat)


def fault_array(*, repeat: int = 1) -> Step:
    return Step(fault=Fault(FaultKind.ARRAY), repeat=repeat)


def fault_drift(drop: Sequence[str] | None = None, *, repeat: int = 1) -> Step:
    """The last state with keys missing. Default: the status key (`status`, `state`; for Zilliz v1
    `readyPercentage` and `errorMessage`, which together stand in for a status)."""
    return Step(fault=Fault(FaultKind.DRIFT, drop=tuple(drop or ())), repeat=repeat)


def fault_api_error(code: int, message: str, *, status: int = 200, repeat: int = 1) -> Step:
    """An API-level error body `{code, message}`; HTTP 200 unless `status` says otherwise."""
    return Step(fault=Fault(FaultKind.API_ERROR, status=status, code=code, message=message), repeat=repeat)


def fault_hang(seconds: float = 30.0, *, repeat: int = 1) -> Step:
    """No answer for `seconds` (then the connection is closed): exercises the client's read timeout."""
    return Step(fault=Fault(FaultKind.HANG, seconds=seconds), repeat=repeat)


def fault_reset(*, repeat: int = 1) -> Step:
    return Step(fault=Fault(FaultKind.RESET), repeat=repeat)


def fault_disconnect(*, repeat: int = 1) -> Step:
    return Step(fault=Fault(FaultKind.DISCONNECT), repeat=repeat)


def hold(step: Step | None = None) -> Step:
    """`hold()` re-serves the previous step until `advance()`; `hold(step)` serves `step` that way."""
    return Step(hold=True) if step is None else step.held()


def _retry_after_text(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)


# ---------------------------------------------------------------------------------------------------
# Jobs and the server
# ---------------------------------------------------------------------------------------------------


class RequestRecord(NamedTuple):
    """One upstream request as seen by the simulator (control API calls are not recorded)."""

    method: str
    path: str
    source: str | None
    job_id: str | None
    status: int
    """HTTP status answered; 0 when the connection was reset, dropped or left hanging."""
    at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "source": self.source,
            "jobId": self.job_id,
            "status": self.status,
            "at": self.at,
        }


@dataclass(slots=True)
class _Shared:
    """The one step all jobs of a static group serve (flipped by `set_all`)."""

    step: Step


@dataclass(slots=True)
class _Job:
    source: str
    job_id: str
    steps: list[Step]
    backend: str | None
    cluster_id: str | None
    api_key: str | None
    collection: str
    started: datetime
    shard_name: str
    shared: _Shared | None = None
    index: int = 0
    served: int = 0
    last_state: JobState | None = None
    completed: datetime | None = None

    def current(self) -> Step:
        return self.shared.step if self.shared is not None else self.steps[self.index]

    def take(self) -> Step:
        """The step to serve now; moves the cursor per `repeat`/`hold` (the last step repeats forever)."""
        step = self.current()
        if self.shared is None:
            self.served += 1
            if not step.hold and self.served >= step.repeat and self.index < len(self.steps) - 1:
                self.index += 1
                self.served = 0
        if step.state is not None:
            self.last_state = step.state
        return step

    def advance(self, n: int = 1) -> None:
        if self.shared is None:
            self.index = min(self.index + n, len(self.steps) - 1)
            self.served = 0

    def visible_state(self) -> JobState:
        """What a list endpoint shows: the last served state, else the next scripted one."""
        if self.shared is not None:
            return self.shared.step.state or self.last_state or JobState()
        if self.last_state is not None:
            return self.last_state
        for step in self.steps[self.index :]:
            if step.state is not None:
                return step.state
        return JobState()


def _resolve_holds(steps: Sequence[Step]) -> list[Step]:
    """Turn each bare `hold()` into a held copy of the step before it."""
    out: list[Step] = []
    for step in steps:
        if step.is_bare_hold:
            if not out:
                raise ValueError("hold() needs a step before it")
            out.append(replace(out[-1], hold=True, repeat=1))
        else:
            out.append(step)
    if not out:
        raise ValueError("a job needs at least one step")
    return out


def _weaviate_time(dt: datetime) -> str:
    """go-openapi strfmt DateTime: RFC 3339 with milliseconds, always UTC `Z`."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _seconds_time(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _number(value: float) -> float | int:
    """Integral floats as ints: `readyPercentage` is `0`/`1` in the samples, not `0.0`/`1.0`."""
    return int(value) if float(value).is_integer() else value


def _location(backend: str, kind: str, job_id: str) -> str:
    if backend in ("s3", "backup-s3"):
        return f"s3://jobwatch-sim/{kind}/{job_id}"
    if backend in ("gcs", "backup-gcs"):
        return f"gs://jobwatch-sim/{kind}/{job_id}"
    if backend in ("azure", "backup-azure"):
        return f"https://jobwatchsim.blob.core.windows.net/jobwatch-sim/{kind}/{job_id}"
    return f"/var/lib/weaviate/{kind}/{job_id}"


class UpstreamSimulator(HttpApp):
    """All upstream status APIs on one port, driven by per-job scripts. Thread-safe.

    Jobs are keyed by (source, job id). `backend`/`cluster_id` None means 'any': the job answers under
    whatever backend or cluster the request names. With `api_key`, requests must carry it (Bearer, or
    `Api-Key` for Pinecone) or get the vendor's real 401 body.
    """

    def __init__(self, *, port: int = 0, latency_ms: float = 0.0, log_limit: int = 200_000) -> None:
        super().__init__(port=port)
        self._lock = threading.Lock()
        self._initial_latency_ms = latency_ms
        self._latency_ms = latency_ms
        self._jobs: dict[tuple[str, str], _Job] = {}
        self._groups: dict[str, list[_Shared]] = {}
        self._by_job: Counter[tuple[str, str]] = Counter()
        self._by_path: Counter[str] = Counter()
        self._log: deque[RequestRecord] = deque(maxlen=log_limit)

    @property
    def url(self) -> str:
        """Same as `base_url`: what a JobSpec's `endpoint` should be for any source."""
        return self.base_url

    # -- scripting (in-process API) --------------------------------------------------------------------

    @property
    def latency_ms(self) -> float:
        return self._latency_ms

    @latency_ms.setter
    def latency_ms(self, value: float) -> None:
        if value < 0:
            raise ValueError("latency must be >= 0")
        self._latency_ms = value

    def add_job(
        self,
        source: str,
        job_id: str,
        steps: Sequence[Step],
        *,
        backend: str | None = None,
        cluster_id: str | None = None,
        api_key: str | None = None,
        collection: str | None = None,
    ) -> None:
        """Register (or replace) a scripted job."""
        _check_source(source)
        job = self._new_job(source, job_id, _resolve_holds(steps), backend, cluster_id, api_key, collection)
        with self._lock:
            self._jobs[(source, job_id)] = job

    def add_static_jobs(
        self,
        source: str,
        ids: Iterable[str],
        state: JobState | Step | None = None,
        *,
        backend: str | None = None,
        cluster_id: str | None = None,
        api_key: str | None = None,
        collection: str | None = None,
    ) -> int:
        """Register many jobs that all serve one shared step (default: the source's running state).

        For the benchmark: cheap to create, no per-job script; `set_all` flips every static job of a
        source at once. Returns the number of jobs added.
        """
        _check_source(source)
        shared = _Shared(_as_step(state) if state is not None else Step(state=JobState()))
        jobs = [
            self._new_job(source, job_id, [], backend, cluster_id, api_key, collection, shared)
            for job_id in ids
        ]
        with self._lock:
            self._groups.setdefault(source, []).append(shared)
            for job in jobs:
                self._jobs[(source, job.job_id)] = job
        return len(jobs)

    def set_all(self, source: str, state: JobState | Step) -> int:
        """Make every static job of `source` serve `state` from now on; returns how many jobs changed."""
        _check_source(source)
        step = _as_step(state)
        with self._lock:
            for shared in self._groups.get(source, []):
                shared.step = step
            return sum(1 for job in self._jobs.values() if job.source == source and job.shared is not None)

    def advance(self, job_id: str, *, source: str | None = None, steps: int = 1) -> int:
        """Move a scripted job's cursor on (releases a `hold`). Returns how many jobs matched."""
        with self._lock:
            matched = [
                job
                for job in self._jobs.values()
                if job.job_id == job_id and (source is None or job.source == source)
            ]
            for job in matched:
                job.advance(steps)
        return len(matched)

    def reset(self) -> None:
        """Forget jobs, counters and the log; latency returns to its start value."""
        with self._lock:
            self._jobs.clear()
            self._groups.clear()
            self._by_job.clear()
            self._by_path.clear()
            self._log.clear()
            self._latency_ms = self._initial_latency_ms

    # -- observation -----------------------------------------------------------------------------------

    def request_count(self, job_id: str, *, source: str | None = None) -> int:
        """Status requests that named this job (all sources unless `source` is given)."""
        with self._lock:
            return sum(n for (src, jid), n in self._by_job.items() if jid == job_id and source in (None, src))

    def job_counts(self) -> dict[str, int]:
        """Status requests per job id (summed over sources)."""
        out: Counter[str] = Counter()
        with self._lock:
            for (_, job_id), n in self._by_job.items():
                out[job_id] += n
        return dict(out)

    def path_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._by_path)

    def requests_log(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def jobs_info(self) -> list[dict[str, Any]]:
        """Each job's cursor, for debugging scripts."""
        with self._lock:
            return [
                {
                    "source": j.source,
                    "jobId": j.job_id,
                    "static": j.shared is not None,
                    "index": j.index,
                    "served": j.served,
                    "steps": len(j.steps),
                    "requests": self._by_job[(j.source, j.job_id)],
                }
                for j in self._jobs.values()
            ]

    # -- HTTP ------------------------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/_sim/"):
            return self._control(request)
        parts = path.split("/")
        method = request.method
        if parts[1:3] == ["v1", "export"] and len(parts) == 5:
            if method != "GET":
                return _weaviate_405(method, "GET")
            return await self._status(request, WEAVIATE_EXPORT, parts[4], backend=parts[3])
        if parts[1:3] == ["v1", "backups"] and len(parts) in (4, 5, 6):
            if method != "GET":
                return _weaviate_405(method, "GET")
            if len(parts) == 4:
                return await self._weaviate_list(request, parts[3])
            if len(parts) == 5:
                return await self._status(request, WEAVIATE_BACKUP, parts[4], backend=parts[3])
            if parts[5] == "restore":
                return await self._status(request, WEAVIATE_RESTORE, parts[4], backend=parts[3])
        if path.startswith("/v1/vector/collections/import/"):
            if method != "GET":
                return _zilliz_v1_not_found_path()
            if path == "/v1/vector/collections/import/get":
                return await self._zilliz_v1_get(request)
            if path == "/v1/vector/collections/import/list":
                return await self._zilliz_v1_list(request)
        if path.startswith("/v2/vectordb/jobs/import/") and method == "POST":
            action = parts[-1]
            if action in ("getProgress", "describe", "get_progress") and len(parts) == 6:
                return await self._v2_describe(request)
            if action == "list" and len(parts) == 6:
                return await self._v2_list(request)
        if parts[1:3] == ["bulk", "imports"] and method == "GET":
            if len(parts) == 3:
                return await self._pinecone_list(request)
            if len(parts) == 4 and parts[3]:
                return await self._status(request, PINECONE, parts[3])
        return await self._delayed(request, None, None, _unknown_route(path))

    async def _delayed(
        self,
        request: Request,
        source: str | None,
        job_id: str | None,
        response: Response,
        extra_ms: float = 0.0,
    ) -> Response:
        """Record the request, then answer after the global latency (plus a step's own delay)."""
        with self._lock:
            self._record(request, source, job_id, response.status)
            delay = (self._latency_ms + extra_ms) / 1000.0
        if delay > 0:
            await asyncio.sleep(delay)
        return response

    def _record(self, request: Request, source: str | None, job_id: str | None, status: int) -> None:
        self._by_path[request.path] += 1
        if job_id is not None and source is not None:
            self._by_job[(source, job_id)] += 1
        self._log.append(RequestRecord(request.method, request.path, source, job_id, status, time.time()))

    async def _status(
        self,
        request: Request,
        source: str,
        job_id: str,
        *,
        backend: str | None = None,
        cluster_id: str | None = None,
    ) -> Response:
        """Serve one status request: not found, 401, or the job's current step (then advance)."""
        extra_ms = 0.0
        hang_s = 0.0
        with self._lock:
            job = self._jobs.get((source, job_id))
            if job is None or not _scope_matches(job, backend, cluster_id):
                response = _not_found(source, job_id)
            elif job.api_key is not None and _token(source, request) != job.api_key:
                response = _unauthorized(source, _token(source, request))
            else:
                step = job.take()
                extra_ms = step.delay_ms
                response = self._render_step(job, step, backend or job.backend or "filesystem")
                if step.fault is not None and step.fault.kind is FaultKind.HANG:
                    hang_s = step.fault.seconds
            self._record(request, source, job_id, response.status)
            delay = (self._latency_ms + extra_ms) / 1000.0 + hang_s
        if delay > 0:
            await asyncio.sleep(delay)
        return response

    # -- rendering -------------------------------------------------------------------------------------

    def _render_step(self, job: _Job, step: Step, backend: str) -> Response:
        if step.state is not None:
            return Response.json(self._render_state(job, step.state, backend))
        assert step.fault is not None
        return self._render_fault(job, step.fault, backend)

    def _render_state(self, job: _Job, st: JobState, backend: str) -> Any:
        source = job.source
        if source == WEAVIATE_EXPORT:
            obj = self._weaviate_export(job, st, backend)
        elif source == WEAVIATE_BACKUP:
            obj = self._weaviate_backup(job, st, backend)
        elif source == WEAVIATE_RESTORE:
            obj = self._weaviate_restore(job, st, backend)
        elif source == ZILLIZ_V1:
            obj = self._zilliz_v1(job, st)
        elif source == ZILLIZ_V2:
            obj = self._zilliz_v2(job, st)
        elif source == MILVUS:
            obj = self._milvus(job, st)
        else:
            obj = self._pinecone(job, st)
        if st.extra:
            obj.update(st.extra)
        if source in _ENVELOPED:
            body: dict[str, Any] = {"code": 200 if source == ZILLIZ_V1 else 0, "data": obj}
        else:
            body = obj
        return _drop_keys(body, obj, st.drop)

    def _completed(self, job: _Job, done: bool) -> datetime | None:
        """When the job first showed a terminal state (kept stable across polls; cleared if it regresses)."""
        if not done:
            job.completed = None
        elif job.completed is None:
            job.completed = datetime.now(UTC)
        return job.completed

    def _weaviate_export(self, job: _Job, st: JobState, backend: str) -> dict[str, Any]:
        status = st.status or "TRANSFERRING"
        completed = self._completed(job, status in _WEAVIATE_TERMINAL)
        obj: dict[str, Any] = {
            "backend": backend,
            "classes": [job.collection],
            "completedAt": _weaviate_time(completed) if completed else _ZERO_TIME,
        }
        error = st.error
        if error is None and status == "CANCELED":
            error = "export was canceled"  # a CANCELED export always carries an error text
        if error:
            obj["error"] = error
        obj["id"] = job.job_id
        obj["path"] = _location(backend, "exports", job.job_id)
        shards = st.shards if st.shards is not None else _default_shards(job, st, status)
        if shards:
            obj["shardStatus"] = _clean_shards(shards)
        obj["startedAt"] = _weaviate_time(job.started)
        obj["status"] = status
        if completed is not None:
            took = int((completed - job.started).total_seconds() * 1000)
            if took:
                obj["tookInMs"] = took
        return obj

    def _weaviate_backup(self, job: _Job, st: JobState, backend: str) -> dict[str, Any]:
        status = st.status or "STARTED"
        completed = self._completed(job, status in _WEAVIATE_TERMINAL)
        obj: dict[str, Any] = {
            "backend": backend,
            "completedAt": _weaviate_time(completed) if completed else _ZERO_TIME,
        }
        if st.error:
            obj["error"] = st.error
        obj["id"] = job.job_id
        obj["path"] = _location(backend, "backups", job.job_id)
        size = st.size if st.size is not None else (1.7342 if status == "SUCCESS" else None)
        if size:
            obj["size"] = size
        obj["startedAt"] = _weaviate_time(job.started)
        obj["status"] = status
        return obj

    def _weaviate_restore(self, job: _Job, st: JobState, backend: str) -> dict[str, Any]:
        status = st.status or "STARTED"
        obj: dict[str, Any] = {"backend": backend}
        error = st.error
        if error is None and status == "CANCELED":
            error = "restore canceled by user"
        if error:
            obj["error"] = error
        obj["id"] = job.job_id
        obj["path"] = _location(backend, "backups", job.job_id)
        obj["status"] = status
        return obj

    def _zilliz_v1(self, job: _Job, st: JobState) -> dict[str, Any]:
        ready = _ready_fraction(st)
        completed = self._completed(job, ready >= 1)
        complete_time = _seconds_time(completed) if completed else None
        files = st.files or ("data/1.parquet",)
        error = st.error or None
        details = [
            {
                "fileName": name,
                "fileSize": _FILE_SIZE,
                "readyPercentage": _number(ready),
                "completeTime": complete_time,
                "errorMessage": error,
            }
            for name in files
        ]
        return {
            "collectionName": job.collection,
            "fileName": files[0] if len(files) == 1 else files[0].rsplit("/", 1)[0] + "/",
            "fileSize": _FILE_SIZE * len(files),
            "readyPercentage": _number(ready),
            "completeTime": complete_time,
            "errorMessage": error,
            "jobId": job.job_id,
            "details": details,
        }

    def _zilliz_v2(self, job: _Job, st: JobState) -> dict[str, Any]:
        status = st.status or "Importing"
        progress = _progress_int(st, status)
        completed = self._completed(job, status == "Completed")
        complete_time = _seconds_time(completed) if completed else ""
        files = st.files or ("data/1.parquet",)
        total = st.total_rows if st.total_rows is not None else _DEFAULT_TOTAL_ROWS
        reason = st.error or ""
        details = [
            {
                "fileName": name,
                "fileSize": _FILE_SIZE,
                "state": _task_state(status),
                "progress": progress,
                "completeTime": complete_time,
                "reason": reason,
            }
            for name in files
        ]
        return {
            "jobId": job.job_id,
            "collectionName": job.collection,
            "fileName": files[0],
            "fileSize": _FILE_SIZE * len(files),
            "state": status,
            "progress": progress,
            "completeTime": complete_time,
            "reason": reason,
            "totalRows": total,
            "details": details,
        }

    def _milvus(self, job: _Job, st: JobState) -> dict[str, Any]:
        status = st.status or "Importing"
        progress = _progress_int(st, status)
        completed = self._completed(job, status == "Completed")
        complete_time = _seconds_time(completed) if completed else ""
        failed = status == "Failed"
        total = st.total_rows if st.total_rows is not None else (0 if failed else _DEFAULT_TOTAL_ROWS)
        rows = st.rows if st.rows is not None else (0 if failed else total * progress // 100)
        files = st.files or ("data/1.parquet",)
        details: list[dict[str, Any]] = []
        if status != "Pending":  # details list import tasks only: none before pre-import finishes
            per_file = total // len(files) if files else 0
            for name in files:
                detail: dict[str, Any] = {
                    "completeTime": complete_time,
                    "fileName": f"[{name}]",
                    "fileSize": _FILE_SIZE,
                    "importedRows": rows // len(files),
                    "progress": progress,
                    "state": _task_state(status),
                    "totalRows": per_file,
                }
                if st.error:
                    detail["reason"] = st.error
                details.append(detail)
        obj: dict[str, Any] = {
            "jobId": job.job_id,
            "collectionName": job.collection,
            "completeTime": complete_time,
            "state": status,
            "progress": progress,
            "importedRows": rows,
            "totalRows": total,
        }
        if st.error:  # Milvus omits `reason` when empty (Zilliz sends "")
            obj["reason"] = st.error
        obj["fileSize"] = _FILE_SIZE * len(details)
        obj["details"] = details
        return obj

    def _pinecone(self, job: _Job, st: JobState) -> dict[str, Any]:
        status = st.status or "InProgress"
        completed = self._completed(job, status in _PINECONE_TERMINAL)
        percent = 100.0 if status == "Completed" else 0.0
        if st.progress is not None:
            percent = float(st.progress)
        obj: dict[str, Any] = {
            "id": job.job_id,
            "uri": f"s3://jobwatch-sim/imports/{job.collection}/",
            "status": status,
            "createdAt": _seconds_time(job.started),
            "percentComplete": percent,
            "recordsImported": st.rows if st.rows is not None else 0,
        }
        if completed is not None:
            obj["finishedAt"] = _seconds_time(completed)
        if st.error:
            obj["error"] = st.error
        return obj

    def _render_fault(self, job: _Job, fault: Fault, backend: str) -> Response:
        kind = fault.kind
        headers = fault.headers
        if kind is FaultKind.HTTP or kind is FaultKind.RATE_LIMIT:
            status = fault.status or (429 if kind is FaultKind.RATE_LIMIT else 500)
            if fault.retry_after is not None:
                headers = (*headers, ("Retry-After", fault.retry_after))
            if fault.body is None:
                return Response.json(_error_body(job.source, status), status, headers=headers)
            ctype = fault.content_type or _guess_content_type(fault.body)
            return Response.text(status, fault.body, content_type=ctype, headers=headers)
        if kind is FaultKind.API_ERROR:
            code = fault.code if fault.code is not None else 65535
            body = {"code": code, "message": fault.message or "simulated API error"}
            return Response.json(body, fault.status or 200, headers=headers)
        if kind is FaultKind.HANG or kind is FaultKind.DISCONNECT:
            return Response.dropped(Disconnect.CLOSE)
        if kind is FaultKind.RESET:
            return Response.dropped(Disconnect.RESET)
        base = self._render_state(job, job.visible_state(), backend)
        if kind is FaultKind.ARRAY:
            return Response.json([base], fault.status or 200, headers=headers)
        if kind is FaultKind.DRIFT:
            obj = base.get("data", base) if job.source in _ENVELOPED else base
            drop = fault.drop or _STATUS_KEYS[job.source]
            return Response.json(_drop_keys(base, obj, drop), fault.status or 200, headers=headers)
        # MALFORMED: a truncated copy of a real body, served as JSON.
        full = Response.json(base).body
        return Response(fault.status or 200, full[: max(1, len(full) // 2)], "application/json", headers)

    # -- list endpoints (auto-discovery) ---------------------------------------------------------------

    def _list_jobs(
        self, request: Request, source: str, predicate: Callable[[_Job], bool]
    ) -> list[_Job] | Response:
        """Jobs of `source` matching `predicate` that the caller may see, or the source's 401."""
        jobs = [j for j in self._jobs.values() if j.source == source and predicate(j)]
        token = _token(source, request)
        keyed = [j for j in jobs if j.api_key is not None]
        if keyed and all(j.api_key != token for j in keyed):
            return _unauthorized(source, token)
        return [j for j in jobs if j.api_key is None or j.api_key == token]

    async def _weaviate_list(self, request: Request, backend: str) -> Response:
        with self._lock:
            found = self._list_jobs(request, WEAVIATE_BACKUP, lambda j: j.backend in (None, backend))
            if isinstance(found, Response):
                response = found
            else:
                found.sort(key=lambda j: j.started, reverse=request.query.get("order", "desc") != "asc")
                items = []
                for job in found:
                    full = self._weaviate_backup(job, job.visible_state(), backend)
                    item: dict[str, Any] = {"classes": [job.collection], "completedAt": full["completedAt"]}
                    item["id"] = job.job_id
                    if "size" in full:
                        item["size"] = full["size"]
                    item["startedAt"] = full["startedAt"]
                    item["status"] = full["status"]
                    items.append(item)
                response = Response.json(items)
        return await self._delayed(request, WEAVIATE_BACKUP, None, response)

    async def _zilliz_v1_get(self, request: Request) -> Response:
        job_id = request.query.get("jobId")
        cluster_id = request.query.get("clusterId")
        if not job_id or not cluster_id:
            message = "Invalid parameter: jobId and clusterId are required."
            body = {"code": ZILLIZ_V1_BAD_PARAMS_CODE, "message": message}
            return await self._delayed(request, ZILLIZ_V1, job_id, Response.json(body))
        return await self._status(request, ZILLIZ_V1, job_id, cluster_id=cluster_id)

    async def _zilliz_v1_list(self, request: Request) -> Response:
        cluster_id = request.query.get("clusterId")
        if not cluster_id:
            body = {"code": ZILLIZ_V1_BAD_PARAMS_CODE, "message": "Invalid parameter: clusterId is required."}
            return await self._delayed(request, ZILLIZ_V1, None, Response.json(body))
        page_size, page = _page_params(request.query.get("pageSize"), request.query.get("currentPage"))
        with self._lock:
            found = self._list_jobs(request, ZILLIZ_V1, lambda j: j.cluster_id in (None, cluster_id))
            if isinstance(found, Response):
                response = found
            else:
                tasks = [
                    {"collectionName": j.collection, "jobId": j.job_id, "state": _zilliz_v1_list_state(j)}
                    for j in found
                ]
                data = {
                    "tasks": tasks[(page - 1) * page_size : page * page_size],
                    "count": len(tasks),
                    "currentPage": page,
                    "pageSize": page_size,
                }
                response = Response.json({"code": 200, "data": data})
        return await self._delayed(request, ZILLIZ_V1, None, response)

    async def _v2_describe(self, request: Request) -> Response:
        """Zilliz v2 getProgress and Milvus describe share paths; `clusterId` in the body means Zilliz."""
        try:
            body = request.json()
        except ValueError as exc:
            return await self._delayed(request, MILVUS, None, _milvus_bind_error(f"invalid JSON: {exc}"))
        if not isinstance(body, dict):
            return await self._delayed(request, MILVUS, None, _milvus_bind_error("body is not an object"))
        zilliz = "clusterId" in body or "projectId" in body
        source = ZILLIZ_V2 if zilliz else MILVUS
        job_id = body.get("jobId")
        if job_id is None or job_id == "":
            message = "missing required parameters, error: Key: 'JobIDReq.JobID' Error:Field validation for "
            message += "'JobID' failed on the 'required' tag"
            missing = Response.json({"code": 1802, "message": message})
            return await self._delayed(request, source, None, missing)
        if not isinstance(job_id, str):
            kind = "number" if isinstance(job_id, int | float) else type(job_id).__name__
            message = f"json: cannot unmarshal {kind} into Go struct field JobIDReq.jobId of type string"
            return await self._delayed(request, source, None, _milvus_bind_error(message))
        cluster = body.get("clusterId")
        cluster_id = cluster if isinstance(cluster, str) else None
        return await self._status(request, source, job_id, cluster_id=cluster_id)

    async def _v2_list(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError as exc:
            return await self._delayed(request, MILVUS, None, _milvus_bind_error(f"invalid JSON: {exc}"))
        if not isinstance(body, dict):
            return await self._delayed(request, MILVUS, None, _milvus_bind_error("body is not an object"))
        with self._lock:
            if "clusterId" in body:
                source = ZILLIZ_V2
                cluster = body.get("clusterId")
                found = self._list_jobs(request, ZILLIZ_V2, lambda j: j.cluster_id in (None, cluster))
                if isinstance(found, Response):
                    response = found
                else:
                    size, page = _page_params(body.get("pageSize"), body.get("currentPage"))
                    records = [
                        {
                            "collectionName": j.collection,
                            "jobId": j.job_id,
                            "state": _zilliz_v2_list_state(j.visible_state().status or "Importing"),
                        }
                        for j in found
                    ]
                    data = {
                        "count": len(records),
                        "currentPage": page,
                        "pageSize": size,
                        "records": records[(page - 1) * size : page * size],
                    }
                    response = Response.json({"code": 0, "data": data})
            else:
                source = MILVUS
                collection = body.get("collectionName")
                found = self._list_jobs(request, MILVUS, lambda j: collection in (None, "", j.collection))
                if isinstance(found, Response):
                    response = found
                else:
                    milvus_records = []
                    for j in found:
                        st = j.visible_state()
                        status = st.status or "Importing"
                        record: dict[str, Any] = {
                            "collectionName": j.collection,
                            "jobId": j.job_id,
                            "progress": _progress_int(st, status),
                            "state": status,
                        }
                        if st.error:
                            record["reason"] = st.error
                        milvus_records.append(record)
                    response = Response.json({"code": 0, "data": {"records": milvus_records}})
        return await self._delayed(request, source, None, response)

    async def _pinecone_list(self, request: Request) -> Response:
        try:
            limit = max(1, min(100, int(request.query.get("limit", "100"))))
            offset = int(request.query.get("paginationToken") or "0")
        except ValueError:
            body = {"code": 3, "message": "invalid limit or paginationToken", "details": []}
            return await self._delayed(request, PINECONE, None, Response.json(body, 400))
        with self._lock:
            found = self._list_jobs(request, PINECONE, lambda j: True)
            if isinstance(found, Response):
                response = found
            else:
                page = found[offset : offset + limit]
                out: dict[str, Any] = {"data": [self._pinecone(j, j.visible_state()) for j in page]}
                if offset + limit < len(found):
                    out["pagination"] = {"next": str(offset + limit)}
                response = Response.json(out)
        return await self._delayed(request, PINECONE, None, response)

    # -- control API -----------------------------------------------------------------------------------

    def _control(self, request: Request) -> Response:
        """`/_sim/*`: script the simulator from another process. Errors are 400 `{"error": "..."}`."""
        try:
            return self._control_inner(request)
        except (ValueError, KeyError, TypeError) as exc:
            return Response.json({"error": f"{type(exc).__name__}: {exc}"}, 400)

    def _control_inner(self, request: Request) -> Response:
        method, path = request.method, request.path
        if method == "POST" and path == "/_sim/jobs":
            spec = _json_object(request)
            source = str(spec["source"])
            backend, cluster = _scope_fields(source, spec)
            self.add_job(
                source,
                str(spec["jobId"]),
                steps_from_json(spec["steps"]),
                backend=backend,
                cluster_id=cluster,
                api_key=spec.get("apiKey"),
                collection=spec.get("collection"),
            )
            return Response.json({"ok": True, "source": source, "jobId": spec["jobId"]}, 201)
        if method == "GET" and path == "/_sim/jobs":
            return Response.json({"jobs": self.jobs_info()})
        if method == "POST" and path.startswith("/_sim/advance/"):
            job_id = path[len("/_sim/advance/") :]
            steps = int(request.query.get("steps", "1"))
            matched = self.advance(job_id, source=request.query.get("source"), steps=steps)
            return Response.json({"advanced": matched}, 200 if matched else 404)
        if method == "POST" and path == "/_sim/static":
            spec = _json_object(request)
            source = str(spec["source"])
            backend, cluster = _scope_fields(source, spec)
            if "ids" in spec:
                ids = [str(i) for i in spec["ids"]]
            else:
                count, prefix = int(spec["count"]), str(spec.get("prefix", "job-"))
                ids = [f"{prefix}{i:05d}" for i in range(count)]
            added = self.add_static_jobs(
                source,
                ids,
                _step_field(spec),
                backend=backend,
                cluster_id=cluster,
                api_key=spec.get("apiKey"),
                collection=spec.get("collection"),
            )
            return Response.json({"added": added, "first": ids[:1], "last": ids[-1:]}, 201)
        if method == "POST" and path == "/_sim/set-all":
            spec = _json_object(request)
            step = _step_field(spec)
            if step is None:
                raise ValueError("set-all needs 'state' or 'step'")
            return Response.json({"changed": self.set_all(str(spec["source"]), step)})
        if method == "GET" and path == "/_sim/requests":
            return Response.json(self._requests_json(request.query))
        if method == "POST" and path == "/_sim/reset":
            self.reset()
            return Response.json({"ok": True})
        if method == "PUT" and path == "/_sim/latency":
            spec = _json_object(request)
            self.latency_ms = float(spec.get("latencyMs", spec.get("latency_ms", 0)))
            return Response.json({"latencyMs": self.latency_ms})
        if method == "GET" and path == "/_sim/latency":
            return Response.json({"latencyMs": self.latency_ms})
        return Response.json({"error": f"no control route {method} {path}"}, 404)

    def _requests_json(self, query: Mapping[str, str]) -> dict[str, Any]:
        with self._lock:
            total = len(self._log)
            by_path = dict(self._by_path)
            by_job: Counter[str] = Counter()
            for (_, job_id), n in self._by_job.items():
                by_job[job_id] += n
            out: dict[str, Any] = {"total": total, "byJob": dict(by_job), "byPath": by_path}
            if query.get("log", "true").lower() not in ("0", "false", "no"):
                since = int(query.get("since", "0"))
                records = list(self._log)[since:]
                if "limit" in query:
                    records = records[: int(query["limit"])]
                out["requests"] = [r.to_json() for r in records]
        return out

    # -- helpers ---------------------------------------------------------------------------------------

    @staticmethod
    def _new_job(
        source: str,
        job_id: str,
        steps: list[Step],
        backend: str | None,
        cluster_id: str | None,
        api_key: str | None,
        collection: str | None,
        shared: _Shared | None = None,
    ) -> _Job:
        if not job_id:
            raise ValueError("job id must not be empty")
        digest = hashlib.sha1(f"{source}/{job_id}".encode(), usedforsecurity=False).hexdigest()
        return _Job(
            source=source,
            job_id=job_id,
            steps=steps,
            backend=backend,
            cluster_id=cluster_id,
            api_key=api_key,
            collection=collection or _DEFAULT_COLLECTION[source],
            # A job "started a minute ago" so durations (tookInMs) are never zero by accident.
            started=datetime.now(UTC).replace(microsecond=123_000) - timedelta(minutes=1),
            shard_name=digest[:12],
            shared=shared,
        )


# -- module helpers ----------------------------------------------------------------------------------


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; valid: {', '.join(SOURCES)}")


def _as_step(value: JobState | Step) -> Step:
    return value if isinstance(value, Step) else Step(state=value)


def _scope_matches(job: _Job, backend: str | None, cluster_id: str | None) -> bool:
    if backend is not None and job.backend is not None and job.backend != backend:
        return False
    return not (job.source in (ZILLIZ_V1, ZILLIZ_V2) and job.cluster_id not in (None, cluster_id))


def _token(source: str, request: Request) -> str | None:
    if source == PINECONE:
        return request.headers.get("api-key")
    return request.bearer_token()


def _unauthorized(source: str, token: str | None) -> Response:
    """The vendor's own 401 (shapes from shared/reference)."""
    if source in _WEAVIATE:
        if token is None:  # written by hand in Weaviate's anonymous middleware: no Content-Type
            return Response.text(401, _WEAVIATE_ANON_401, content_type=None)
        return Response.json({"code": 401, "message": "unauthorized: invalid api key"}, 401)
    if source == ZILLIZ_V1:
        return Response.json(_ZILLIZ_V1_401, 401)
    if source == ZILLIZ_V2:
        return Response.json(_ZILLIZ_V2_401, 401)
    if source == MILVUS:
        return Response.json(_MILVUS_401, 401)
    return Response.json({"code": 16, "message": "Invalid API Key", "details": []}, 401)


def _not_found(source: str, job_id: str) -> Response:
    """How each API says 'no such job': a 404 for Weaviate/Pinecone, HTTP 200 + code for the rest."""
    if source == WEAVIATE_EXPORT:
        return Response.json({"error": [{"message": "export not found"}]}, 404)
    if source == WEAVIATE_BACKUP:
        message = f'coordinator cannot get status: metadata not found: "{job_id}": backup not found'
        return Response.json({"error": [{"message": message}]}, 404)
    if source == WEAVIATE_RESTORE:
        message = f'coordinator cannot get restore status: metadata not found: "{job_id}": backup not found'
        return Response.json({"error": [{"message": message}]}, 404)
    if source == ZILLIZ_V1:
        message = f"Import job not found: jobId {job_id} does not exist in this cluster."
        return Response.json({"code": ZILLIZ_V1_NOT_FOUND_CODE, "message": message})
    if source == ZILLIZ_V2:
        message = f"The import job {job_id} does not exist."
        return Response.json({"code": ZILLIZ_V2_NOT_FOUND_CODE, "message": message})
    if source == MILVUS:
        message = f"import job does not exist, jobID={job_id}: importing data failed"
        return Response.json({"code": 2100, "message": message})
    return Response.json({"code": 5, "message": f"Import {job_id} not found", "details": []}, 404)


def _error_body(source: str, status: int) -> Any:
    """A fault's default body in the source's own error shape."""
    phrase = _status_phrase(status)
    if source in _WEAVIATE:
        return {"error": [{"message": f"simulated {status} {phrase}"}]}
    if source == PINECONE:
        return {"code": _GRPC_CODE.get(status, 2), "message": f"simulated {status} {phrase}", "details": []}
    if source == MILVUS and status == 429:
        return {"code": 1807, "message": "request is rejected by limiter"}
    return {"code": status, "message": f"simulated {status} {phrase}"}


def _status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


def _guess_content_type(body: str) -> str:
    stripped = body.lstrip()
    if stripped.startswith("<"):
        return "text/html"
    if stripped.startswith(("{", "[")):
        return "application/json"
    return "text/plain; charset=utf-8"


def _weaviate_405(method: str, allowed: str) -> Response:
    message = f"method {method} is not allowed, but [{allowed}] are"
    return Response.json({"code": 405, "message": message}, 405, headers=(("Allow", allowed),))


def _zilliz_v1_not_found_path() -> Response:
    return Response.text(404, "404 page not found")


def _unknown_route(path: str) -> Response:
    if path.startswith("/v1/"):  # Weaviate (go-openapi) shape
        return Response.json({"code": 404, "message": f"path {path} was not found"}, 404)
    if path.startswith("/bulk/"):
        return Response.json({"code": 5, "message": f"path {path} not found", "details": []}, 404)
    return Response.text(404, "404 page not found")  # gin default, as Milvus answers unknown paths


def _milvus_bind_error(detail: str) -> Response:
    return Response.json({"code": 1801, "message": f"can only accept json format request, error: {detail}"})


def _drop_keys(body: Any, obj: dict[str, Any], drop: Sequence[str]) -> Any:
    """Remove keys from the job object (or, if absent there, from the top-level body)."""
    for key in drop:
        if key in obj:
            del obj[key]
        elif isinstance(body, dict) and key in body:
            del body[key]
    return body


def _default_shards(job: _Job, st: JobState, status: str) -> dict[str, dict[str, dict[str, Any]]] | None:
    """One shard per export, as node reports show it: none yet for STARTED, none for CANCELED."""
    if status in ("STARTED", "CANCELED"):
        return None
    shard_status = status if status in ("SUCCESS", "FAILED") else "TRANSFERRING"
    shard: dict[str, Any] = {}
    if status == "FAILED" and st.error:
        shard["error"] = st.error
    if st.objects:
        shard["objectsExported"] = st.objects
    shard["status"] = shard_status
    return {job.collection: {job.shard_name: shard}}


def _clean_shards(shards: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """`objectsExported` is omitempty in Weaviate: a zero count is left out, never sent as 0."""
    out: dict[str, Any] = {}
    for cls_name, per_shard in shards.items():
        out[cls_name] = {
            name: {k: v for k, v in progress.items() if not (k == "objectsExported" and not v)}
            for name, progress in per_shard.items()
        }
    return out


def _ready_fraction(st: JobState) -> float:
    if st.ready is not None:
        return float(st.ready)
    if st.progress is not None:
        return float(st.progress) / 100.0
    return 1.0 if st.status in ("ImportCompleted", "Completed") else 0.0


def _progress_int(st: JobState, status: str) -> int:
    if st.progress is not None:
        return int(st.progress)
    return 100 if status == "Completed" else 0


def _task_state(job_state: str) -> str:
    """Per-file task states use `InProgress` where the job says `Importing`."""
    return "InProgress" if job_state == "Importing" else job_state


def _zilliz_v1_list_state(job: _Job) -> str:
    st = job.visible_state()
    if st.status:
        return st.status
    if st.error:
        return "ImportFailed"
    return "ImportCompleted" if _ready_fraction(st) >= 1 else "ImportRunning"


def _zilliz_v2_list_state(status: str) -> str:
    return "InProgress" if status == "Importing" else status


def _page_params(size: Any, page: Any) -> tuple[int, int]:
    try:
        size_n = int(size) if size not in (None, "") else 10
        page_n = int(page) if page not in (None, "") else 1
    except (TypeError, ValueError):
        return 10, 1
    return max(1, size_n), max(1, page_n)


def _json_object(request: Request) -> dict[str, Any]:
    data = request.json()
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def _scope_fields(source: str, spec: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """`backend`/`clusterId` explicitly, or the generic `scope` (backend for Weaviate, cluster for Zilliz)."""
    backend = spec.get("backend")
    cluster = spec.get("clusterId")
    scope = spec.get("scope")
    if scope is not None:
        if source in _WEAVIATE and backend is None:
            backend = scope
        elif source in (ZILLIZ_V1, ZILLIZ_V2) and cluster is None:
            cluster = scope
    return backend, cluster


def _step_field(spec: Mapping[str, Any]) -> Step | None:
    if spec.get("step") is not None:
        return Step.from_json(spec["step"])
    if spec.get("state") is not None:
        return Step(state=JobState.from_json(spec["state"]))
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="jobwatch upstream simulator (binds 127.0.0.1 only)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (see the READY line)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every upstream request")
    args = parser.parse_args(argv)
    return UpstreamSimulator(port=args.port, latency_ms=args.latency_ms).serve_cli()


if __name__ == "__main__":
    raise SystemExit(main())
