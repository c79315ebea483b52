"""The simulator's job model and what every vendor module plugs into it.

Why: the server walks scripts and records requests the same way for every source; only the bodies
differ. A `Job` is one scripted job and its cursor; a `Dialect` is everything one source does its own
way (job body, envelope, 401/404/error shapes, where the API key goes, how a job is scoped).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any, Literal

from ..http11 import Request, Response
from .script import JobState, Step

FILE_SIZE = 3_279_917
"""The size of every generated import file (the reference sample's file)."""
DEFAULT_TOTAL_ROWS = 100_000


@dataclass(slots=True)
class SharedStep:
    """The one step all jobs of a static group serve (flipped by `set_all`)."""

    step: Step


@dataclass(slots=True)
class Job:
    source: str
    job_id: str
    steps: list[Step]
    backend: str | None
    cluster_id: str | None
    api_key: str | None
    collection: str
    started: datetime
    shard_name: str
    shared: SharedStep | None = None
    index: int = 0
    served: int = 0
    last_state: JobState | None = None
    completed: datetime | None = None

    @classmethod
    def new(
        cls,
        source: str,
        job_id: str,
        steps: list[Step],
        *,
        backend: str | None,
        cluster_id: str | None,
        api_key: str | None,
        collection: str,
        shared: SharedStep | None = None,
    ) -> Job:
        if not job_id:
            raise ValueError("job id must not be empty")
        digest = hashlib.sha1(f"{source}/{job_id}".encode(), usedforsecurity=False).hexdigest()
        return cls(
            source=source,
            job_id=job_id,
            steps=steps,
            backend=backend,
            cluster_id=cluster_id,
            api_key=api_key,
            collection=collection,
            # A job "started a minute ago" so durations (tookInMs) are never zero by accident.
            started=datetime.now(UTC).replace(microsecond=123_000) - timedelta(minutes=1),
            shard_name=digest[:12],
            shared=shared,
        )

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

    def completion(self, done: bool) -> datetime | None:
        """When the job first showed a terminal state (kept stable across polls; cleared if it regresses)."""
        if not done:
            self.completed = None
        elif self.completed is None:
            self.completed = datetime.now(UTC)
        return self.completed


def resolve_holds(steps: Sequence[Step]) -> list[Step]:
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


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one source speaks. Each vendor module defines one per source it simulates."""

    source: str
    default_collection: str
    status_keys: tuple[str, ...]
    """What a drift fault drops by default: the key(s) that carry the job's status."""
    render: Callable[[Job, JobState, str], dict[str, Any]]
    """The job object for a state; the third argument is the backend the request named."""
    unauthorized: Callable[[str | None], Response]
    """The vendor's own 401, given the token the request carried (None: none)."""
    not_found: Callable[[str], Response]
    """How the API says 'no such job' (not always a 404)."""
    error_body: Callable[[int], Any]
    """A fault's default body for an HTTP status, in the vendor's error shape."""
    envelope_code: int | None = None
    """Enveloped APIs answer `{"code": envelope_code, "data": job}`; None: the job object itself."""
    scope: Literal["backend", "cluster"] | None = None
    """What narrows a job id: a Weaviate backend (in the path) or a Zilliz cluster."""
    key_header: str | None = None
    """The header carrying the API key; None: `Authorization: Bearer`."""

    def token(self, request: Request) -> str | None:
        if self.key_header is not None:
            return request.headers.get(self.key_header)
        return request.bearer_token()

    def body(self, job: Job, st: JobState, backend: str) -> Any:
        """The whole status body for a state: job object, `extra`/`drop` applied, enveloped if needed."""
        obj = self.render(job, st, backend)
        if st.extra:
            obj.update(st.extra)
        if self.envelope_code is None:
            return drop_keys(obj, obj, st.drop)
        return drop_keys({"code": self.envelope_code, "data": obj}, obj, st.drop)

    def job_object(self, body: dict[str, Any]) -> Any:
        """The job object inside a `body()` (the `data` of enveloped APIs, when still present)."""
        return body.get("data", body) if self.envelope_code is not None else body


def drop_keys(body: Any, obj: dict[str, Any], drop: Sequence[str]) -> Any:
    """Remove keys from the job object (or, if absent there, from the top-level body)."""
    for key in drop:
        if key in obj:
            del obj[key]
        elif isinstance(body, dict) and key in body:
            del body[key]
    return body


def simulated_message(status: int) -> str:
    """The text of a fault's default error body: `simulated 503 Service Unavailable`."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "error"
    return f"simulated {status} {phrase}"


def seconds_time(dt: datetime) -> str:
    """RFC 3339 to the second, UTC `Z` (Zilliz, Milvus and Pinecone timestamps)."""
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
