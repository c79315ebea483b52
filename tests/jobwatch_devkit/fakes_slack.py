"""In-memory fakes for the Slack app channel (`jobwatch.channels.slack_app`), and job stories to feed it.

`FakeSlackApi` stands in for Slack's Web API *under* slack_sdk (its urllib call), so the component tier
runs the real SDK with no sockets; the Slack sink (`jobwatch_devkit.slack_sink`) is the stand-in
over real sockets for the integration tier.

`InMemoryThreadStore` keeps the same promises as `DynamoThreadStore` (tests/integration/
test_thread_store_contract.py holds both to one contract): one root per (destination, job), a
later save replaces it, and a root older than the retention is no longer returned.
"""

from __future__ import annotations

import io
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request

from jobwatch.adapters.clock import utc_iso
from jobwatch.domain.model import JobSpec, Phase, Snapshot, Transition
from jobwatch.domain.severity import severity_for
from jobwatch.domain.transitions import transition_id
from jobwatch.ports import ThreadRoot


class InMemoryThreadStore:
    """`ports.ThreadStore` in a dict; `saves` counts writes (what DynamoDB would bill)."""

    def __init__(self, retention_days: int = 30, *, now: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._roots: dict[tuple[str, str], tuple[ThreadRoot, float]] = {}
        self._retention_s = retention_days * 86400
        self._now = now
        self.saves = 0

    def root(self, destination_id: str, job_key: str) -> ThreadRoot | None:
        with self._lock:
            found = self._roots.get((destination_id, job_key))
        if found is None:
            return None
        root, expires_at = found
        return None if expires_at < self._now() else root

    def save_root(self, destination_id: str, job_key: str, root: ThreadRoot) -> None:
        with self._lock:
            self._roots[(destination_id, job_key)] = (root, int(self._now()) + self._retention_s)
            self.saves += 1

    def roots(self) -> dict[tuple[str, str], ThreadRoot]:
        """Every stored root by (destination id, job key), expired or not (for assertions)."""
        with self._lock:
            return {key: root for key, (root, _) in self._roots.items()}


# -- job stories: chains of transitions as the poller would publish them ------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One transition of a story: the event and the snapshot it leaves the job in."""

    event: str
    phase: Phase
    progress: float | None = None
    error: str | None = None
    note: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def job_story(
    spec: JobSpec, *steps: Step, start: float = 1_767_225_600.0, every_s: float = 60.0
) -> list[Transition]:
    """The job's transitions, one per step, chained by `previous_transition_id` as the poller chains
    them, `every_s` apart from `start` (the job started at `start`)."""
    transitions: list[Transition] = []
    previous: Snapshot | None = None
    for version, step in enumerate(steps, start=1):
        current = Snapshot(
            phase=step.phase,
            status=step.phase.value,
            progress=step.progress,
            error=step.error,
            started_at=utc_iso(start),
            completed_at=utc_iso(start + version * every_s) if step.phase.terminal else None,
            details=dict(step.details),
        )
        transitions.append(
            Transition(
                transition_id=transition_id(spec.key, version),
                job_key=spec.key,
                source=spec.source,
                job_id=spec.job_id,
                event=step.event,
                severity=severity_for(step.event),
                occurred_at=utc_iso(start + version * every_s),
                job=spec,
                previous=previous,
                current=current,
                note=step.note,
                previous_transition_id=transitions[-1].transition_id if transitions else None,
            )
        )
        previous = current
    return transitions


# -- Slack's Web API in process --------------------------------------------------------------------------


FAKE_BOT_TOKEN = "xoxb-fake"


@dataclass(frozen=True, slots=True)
class _Scripted:
    method: str | None
    status: int
    body: dict[str, Any]
    retry_after: str | None
    raises: BaseException | None


@dataclass
class _UrllibAnswer:
    """What `urllib.request.urlopen` returns, as far as slack_sdk reads it."""

    code: int
    body: bytes
    headers: Message = field(default_factory=Message)

    def read(self) -> bytes:
        return self.body


def _json_headers(retry_after: str | None = None) -> Message:
    headers = Message()
    headers["Content-Type"] = "application/json; charset=utf-8"
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return headers


class FakeSlackApi:
    """Slack's Web API behind slack_sdk's own transport, in process (no sockets): patch
    `slack_sdk.web.base_client.urlopen` with `fake.urlopen`. Posts and updates messages (`ts` from a
    counter; an unknown `ts` is `message_not_found`); `fail_next` scripts an error, an HTTP status or
    an exception (a timeout, a refused connection) for the next call (of one method)."""

    def __init__(self, token: str = FAKE_BOT_TOKEN) -> None:
        self.token = token
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.timeouts: list[float | None] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self._script: list[_Scripted] = []
        self._ts = itertools.count(1)

    def fail_next(
        self,
        error: str | None = None,
        *,
        status: int = 200,
        retry_after: str | None = None,
        raises: BaseException | None = None,
        method: str | None = None,
    ) -> None:
        body = {"ok": False, "error": error} if error else {"ok": False}
        self._script.append(_Scripted(method, status, body, retry_after, raises))

    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]

    def _scripted(self, method: str) -> _Scripted | None:
        for index, scripted in enumerate(self._script):
            if scripted.method in (None, method):
                return self._script.pop(index)
        return None

    def _handle(self, method: str, args: dict[str, Any], token: str) -> dict[str, Any]:
        if token != f"Bearer {self.token}":
            return {"ok": False, "error": "invalid_auth"}
        if method == "chat.postMessage":
            ts = f"1767225600.{next(self._ts):06d}"
            self.messages[ts] = dict(args)
            return {"ok": True, "channel": args["channel"], "ts": ts, "message": {"text": args.get("text")}}
        if method == "chat.update":
            if args.get("ts") not in self.messages:
                return {"ok": False, "error": "message_not_found"}
            self.messages[args["ts"]].update(args)
            return {"ok": True, "channel": args["channel"], "ts": args["ts"]}
        return {"ok": False, "error": "unknown_method"}

    def urlopen(self, request: Request, context: Any = None, timeout: float | None = None) -> _UrllibAnswer:
        method = request.full_url.rstrip("/").rsplit("/", 1)[-1]
        data = request.data if isinstance(request.data, bytes) else b"{}"
        args = json.loads(data or b"{}")
        self.calls.append((method, args))
        self.timeouts.append(timeout)
        scripted = self._scripted(method)
        if scripted is not None and scripted.raises is not None:
            raise scripted.raises
        if scripted is not None and scripted.status != 200:
            body = json.dumps(scripted.body).encode()
            headers = _json_headers(scripted.retry_after)
            raise HTTPError(request.full_url, scripted.status, "scripted", headers, io.BytesIO(body))
        if scripted is not None:
            return _UrllibAnswer(200, json.dumps(scripted.body).encode(), _json_headers(scripted.retry_after))
        answer = self._handle(method, args, _auth(request))
        return _UrllibAnswer(200, json.dumps(answer).encode(), _json_headers())


def _auth(request: Request) -> str:
    return str(request.get_header("Authorization") or "")
