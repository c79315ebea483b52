"""A job's script: the states and faults the simulator serves, and the builders tests write them with.

Why its own module: scripts cross process boundaries (the `/_sim/*` control API takes them as JSON)
and know nothing of any vendor; a state is source-independent and each vendor module renders it into
that source's exact body.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

_HTML_503 = (
    "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
    "<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


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
    OVERSIZED = "oversized"
    """A body past any sane body cap (`size` bytes decoded): gzip-compressed so it is a few KB on the
    wire (`mode` "gzip"), sent as is ("plain"), or only announced by a Content-Length that never
    arrives ("length")."""
    ENDLESS = "endless"
    """HTTP 200, chunked, a body that never ends (sent as fast as the client reads it)."""
    SLOW = "slow"
    """HTTP 200 with a Content-Length, then the body one byte every `seconds`: each byte arrives well
    within a read timeout, the whole body never within any total deadline."""
    DEEP = "deep"
    """HTTP 200, JSON nested `depth` levels deep (inside an otherwise valid status body)."""
    ECHO = "echo"
    """An error (`status`; or `code` and `message` in HTTP 200) whose body and headers repeat the
    request's Authorization / Api-Key value, as some proxies and gateways do."""


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
    size: int = 0
    """OVERSIZED: the decoded body's size in bytes."""
    mode: str | None = None
    """OVERSIZED: `gzip` (default), `plain` or `length`."""
    depth: int = 0
    """DEEP: nesting levels."""
    lure: JobState | None = None
    """OVERSIZED, ENDLESS, SLOW, DEEP: the state the hostile body claims (default: the job's last
    state). A client that accepted the body would see it, so a lure that differs from the script
    turns any such acceptance into a visible state change."""

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
        if self.kind in (FaultKind.HANG, FaultKind.SLOW):
            out["seconds"] = self.seconds
        if self.drop:
            out["drop"] = list(self.drop)
        out.update(self._hostile_json())
        return out

    def _hostile_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.size:
            out["size"] = self.size
        if self.mode is not None:
            out["mode"] = self.mode
        if self.depth:
            out["depth"] = self.depth
        if self.lure is not None:
            out["lure"] = self.lure.to_json()
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
            size=int(data.get("size", 0)),
            mode=None if data.get("mode") is None else str(data["mode"]),
            depth=int(data.get("depth", 0)),
            lure=None if data.get("lure") is None else JobState.from_json(data["lure"]),
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


OVERSIZED_MODES = ("gzip", "plain", "length")
DEFAULT_OVERSIZED_BYTES = 4 * 1024 * 1024
"""Four times jobwatch's default body cap (1 MiB); gzip makes it about 4 KB on the wire."""


def fault_oversized(
    size: int = DEFAULT_OVERSIZED_BYTES,
    *,
    mode: str = "gzip",
    lure: JobState | None = None,
    repeat: int = 1,
) -> Step:
    """A status body of `size` bytes (valid JSON: the lure state padded with whitespace), sent
    gzip-compressed (`mode="gzip"`: a compression bomb in small), as is (`"plain"`), or announced by
    `Content-Length: size` with only its first bytes sent (`"length"`)."""
    if mode not in OVERSIZED_MODES:
        raise ValueError(f"mode must be one of {OVERSIZED_MODES}, not {mode!r}")
    fault = Fault(FaultKind.OVERSIZED, size=size, mode=mode, lure=lure)
    return Step(fault=fault, repeat=repeat)


def fault_endless(*, lure: JobState | None = None, repeat: int = 1) -> Step:
    """HTTP 200, chunked: a status body that opens a JSON array and never closes it."""
    return Step(fault=Fault(FaultKind.ENDLESS, lure=lure), repeat=repeat)


def fault_slow(every_s: float = 0.25, *, lure: JobState | None = None, repeat: int = 1) -> Step:
    """HTTP 200 with a Content-Length, then one byte every `every_s` seconds (a drip): keep `every_s`
    under the client's read timeout, so only a total deadline can end it."""
    return Step(fault=Fault(FaultKind.SLOW, seconds=every_s, lure=lure), repeat=repeat)


def fault_deep(depth: int = 64, *, lure: JobState | None = None, repeat: int = 1) -> Step:
    """HTTP 200: the status body with a value nested `depth` levels deep (jobwatch refuses > 32)."""
    return Step(fault=Fault(FaultKind.DEEP, depth=depth, lure=lure), repeat=repeat)


def fault_echo(
    status: int = 401,
    *,
    code: int | None = None,
    message: str | None = None,
    retry_after: float | str | None = None,
    repeat: int = 1,
) -> Step:
    """An error whose body and headers repeat the request's credential (Authorization or Api-Key).

    With `code`, the Zilliz/Milvus form: `{code, message}` in HTTP `status` (pass 200); otherwise the
    source's own error body for `status`. `retry_after` adds a Retry-After header.
    """
    value = None if retry_after is None else _retry_after_text(retry_after)
    fault = Fault(FaultKind.ECHO, status=status, code=code, message=message, retry_after=value)
    return Step(fault=fault, repeat=repeat)


def hold(step: Step | None = None) -> Step:
    """`hold()` re-serves the previous step until `advance()`; `hold(step)` serves `step` that way."""
    return Step(hold=True) if step is None else step.held()


def _retry_after_text(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)
