"""Slack through a bot token (Web API): one living thread per job and destination.

The first transition of a job posts a *root* message that shows the job's current state (emoji and
phase, title and id, a progress bar, rows/objects/files where the source knows them, duration, the
last change and when); every transition then edits that root in place (`chat.update`) and posts the
transition itself as a reply in its thread (`chat.postMessage` with `thread_ts`). FAILED, LOST and
STALLED replies are also broadcast to the channel (`reply_broadcast`). Where the root lives is kept
per (destination, job) in a `ThreadStore`; a root someone deleted (`message_not_found`) is replaced
by a new one. The root carries the job's buttons (Snooze 4 h, Mute, Untrack), which Slack sends to the
interactivity endpoint (`entrypoints.slack_interactions`, docs/decisions.md, D46).

Every Slack answer is classified for the delivery engine, which owns retries, order and
dead-letters: the SDK's own retry handlers are switched off (`retry_handlers=[]`), so it never
sleeps or posts twice on its own. Slack answers API errors with HTTP 200 and `ok: false`:
- refused for good (PERMANENT, the error named in the detail): channel_not_found, not_in_channel,
  invalid_auth, not_authed, account_inactive, token_revoked, missing_scope, is_archived,
  invalid_blocks, and any other 4xx except 408/429;
- `ratelimited` / HTTP 429: RATE_LIMITED with the `Retry-After` seconds;
- `msg_too_long`: the message is shrunk to a short text without blocks and sent once more in the
  same send (PERMANENT if even that is too long);
- HTTP 5xx, 408, timeouts, connection errors and unknown `ok: false` errors: RETRY (bounded by the
  engine's attempt cap, then dead-lettered with the error).

`slack_sdk` is imported on the first send only, so a process that never sends to Slack does not pay
its import (about 85 ms on python 3.11, 100 ms on 3.13). The bot token is read from Secrets Manager
by name on first use and cached; an auth error drops the cache so a rotated token is picked up.
Mentions come only from the routes (`Notice.mentions`, validated there and filtered again here);
every upstream string is escaped as in `render.slack_blocks`.
"""

from __future__ import annotations

import http.client
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobwatch.channels.base import (
    DELIVERED,
    ChannelLimits,
    ChannelTuning,
    Notice,
    SendOutcome,
    SendResult,
)
from jobwatch.domain.humanize import NOT_AVAILABLE
from jobwatch.domain.model import Transition
from jobwatch.domain.routing import SlackAppDestination
from jobwatch.ports import Secrets, SecretUnavailableError, ThreadRoot, ThreadStore
from jobwatch.render.slack_actions import actions_block
from jobwatch.render.slack_blocks import (
    MAX_FIELD_CHARS,
    MAX_HEADER_CHARS,
    fit,
    mention_line,
    render_payload,
    slack_len,
    validate_payload,
)
from jobwatch.render.view import NOT_OBSERVED, TEST_NOTICE, TransitionView, describe

if TYPE_CHECKING:
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web import SlackResponse, WebClient

CLAIM_LEASE_S = 120.0
SECRET_PAUSE_S = 60.0
"""An unreadable token secret pauses the batch this long (and counts as a failed attempt)."""
TIMEOUT_S = 10.0
"""Per Web API call; the engine retries a timeout like any failure that may pass."""
BROADCAST_EVENTS = frozenset({"FAILED", "LOST", "STALLED"})
"""Replies that are also shown in the channel, not only in the job's thread."""

PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "missing_scope",
        "is_archived",
        "invalid_blocks",
    }
)
AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked"})
"""Errors after which the cached token is dropped, so the next send reads the secret again."""
RATE_LIMITED_ERROR = "ratelimited"
TOO_LONG_ERROR = "msg_too_long"
ROOT_GONE_ERRORS = frozenset({"message_not_found"})
"""`chat.update` of the root answered this: the root is gone, so the job gets a new root."""

SHORT_TEXT_CHARS = 300
"""The shrunk message sent after `msg_too_long`."""
_BAR_CELLS = 20
_ROOT_FACT_PREFIXES = ("Rows", "Objects", "Records", "Files", "Rejected", "Size")
"""Source facts shown on the root: the counts a reader follows while a job runs."""
_MAX_ROOT_FACTS = 4
_MODIFIER_GRAVE = "\u02cb"


# -- the payload ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlackAppPayload:
    """What one send needs: the root's new content, the reply, and whose thread they belong to."""

    job_key: str
    transition_id: str
    root: dict[str, Any]
    """`text` (fallback) and `blocks`: the job's current state, without mentions."""
    reply: dict[str, Any]
    """The transition itself (`render_payload`: text, blocks, unfurl flags), with the routes' mentions."""
    broadcast: bool
    """Send the reply with `reply_broadcast` (FAILED, LOST, STALLED)."""
    root_short: str
    """The root as one short line, sent instead when Slack answers `msg_too_long`."""
    reply_short: str
    """The reply as one short line (mentions kept), sent instead when Slack answers `msg_too_long`."""


# -- rendering the root (pure) ----------------------------------------------------------------------------


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _code(raw: str, limit: int) -> str:
    """Upstream text as inline code; its own backticks are swapped so it cannot end the span."""
    if raw == NOT_AVAILABLE:
        return NOT_AVAILABLE
    return "`" + fit(raw.replace("`", _MODIFIER_GRAVE), limit - 2) + "`"


def _field(label: str, value: str) -> dict[str, Any]:
    head = f"*{fit(label, 100)}*\n"
    return _mrkdwn(head + fit(value, MAX_FIELD_CHARS - slack_len(head)))


def progress_bar(progress: float | None, cells: int = _BAR_CELLS) -> str:
    """`▓▓▓▓▓░░░░░…` for a known progress (rounded down, like the percentage); empty when unknown."""
    if progress is None or not math.isfinite(progress):
        return ""
    filled = math.floor(min(100.0, max(0.0, progress)) / 100 * cells)
    return "▓" * filled + "░" * (cells - filled)


def _state(view: TransitionView, phase: str) -> str:
    """`FAILED`; `RUNNING (stalled)` when a health event kept the phase; `not observed yet`."""
    if view.phase_change == NOT_OBSERVED:
        return f"{NOT_OBSERVED} ({view.outcome})"
    if view.phase_unchanged:
        return f"{phase} ({view.outcome})"
    return phase


def _root_facts(view: TransitionView) -> list[dict[str, Any]]:
    facts = [f for f in view.facts if f.label.startswith(_ROOT_FACT_PREFIXES)]
    return [_field(f.label, f.value) for f in facts[:_MAX_ROOT_FACTS]]


def render_root(t: Transition, view: TransitionView | None = None) -> tuple[dict[str, Any], str]:
    """The root message (text and blocks) showing the job's state after this transition, and its
    one-line short form. No mentions: a root is edited, and an edit notifies nobody. It ends with the
    job's buttons (Snooze 4 h, Mute, Untrack: `render.slack_actions`)."""
    view = view or describe(t)
    state = _state(view, t.current.phase.value)
    title = TEST_NOTICE if view.is_test else view.title
    heading = fit(f"{view.emoji} {state} · {title}", MAX_HEADER_CHARS)
    header = {"type": "header", "text": {"type": "plain_text", "text": heading, "emoji": True}}
    bar = progress_bar(t.current.progress)
    progress = f"{bar} {view.progress}" if bar else view.progress
    if view.eta:
        progress += f" · ETA {view.eta}"
    summary = f"*{fit(view.title, 200)}* {_code(view.job_id, 600)}\n{progress}"
    fields = [
        _field("Phase", state),
        _field("Progress", view.progress),
        *([_field("ETA", view.eta)] if view.eta else []),
        *_root_facts(view),
        _field("Duration", view.duration),
        _field("Last change", f"{view.outcome} · {view.occurred_at}"),
        _field(view.location_label, view.location),
    ]
    context = {
        "type": "context",
        "elements": [
            _mrkdwn(f"Updated {fit(view.occurred_at, 64)} · transition {_code(view.transition_id, 300)}"),
            _mrkdwn(f"Endpoint: {fit(view.endpoint, 1_900)}"),
        ],
    }
    section = {"type": "section", "text": _mrkdwn(summary), "fields": fields}
    blocks = [header, section, context, actions_block(t.job_key)]
    line = f"{view.emoji} {state} · {view.title} {view.job_id} · {view.progress}"
    text = fit(f"{line} · last change: {view.outcome} at {view.occurred_at}", 1_000)
    return {"text": text, "blocks": blocks}, fit(line, SHORT_TEXT_CHARS)


def _reply_short(view: TransitionView, mentions: Sequence[str]) -> str:
    line = fit(f"{view.emoji} {view.event} · {view.title} {view.job_id}: {view.outcome}", SHORT_TEXT_CHARS)
    who = mention_line(mentions)
    return f"{who} {line}" if who else line


def render(notice: Notice) -> SlackAppPayload:
    t = notice.transition
    view = describe(t)
    root, root_short = render_root(t, view)
    return SlackAppPayload(
        job_key=t.job_key,
        transition_id=t.transition_id,
        root=root,
        reply=render_payload(t, notice.mentions),
        broadcast=str(t.event) in BROADCAST_EVENTS,
        root_short=root_short,
        reply_short=_reply_short(view, notice.mentions),
    )


def problems(payload: SlackAppPayload) -> list[str]:
    found = [f"root {p}" for p in validate_payload(payload.root)]
    found += [f"reply {p}" for p in validate_payload(payload.reply)]
    for name, short in (("root", payload.root_short), ("reply", payload.reply_short)):
        if not short.strip():
            found.append(f"{name} short text: empty")
    return found


# -- classifying Slack's answers -------------------------------------------------------------------------


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return str(value[0] if isinstance(value, list | tuple) and value else value)
    return None


def retry_after_s(headers: Mapping[str, Any]) -> float | None:
    """Seconds of a `Retry-After` header (Slack sends whole seconds); None when absent or unreadable."""
    value = _header(headers, "retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def error_code(response: Any) -> str:
    """The `error` of a Slack answer (`ok: false`), or `http_<status>` when the body had none."""
    data = getattr(response, "data", None)
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, str) and error and len(error) <= 80 and " " not in error:
        return error
    return f"http_{getattr(response, 'status_code', 0)}"


def classify(
    method: str, status: int, error: str, headers: Mapping[str, Any], needed: Any = None
) -> SendResult:
    """One failed Web API call as a delivery outcome (the table in this module's docstring)."""
    detail = f"{method}: {error} (HTTP {status})"
    if error == "missing_scope" and isinstance(needed, str):
        detail += f"; needs {needed[:100]}"
    if status == 429 or error == RATE_LIMITED_ERROR:
        return SendResult(SendOutcome.RATE_LIMITED, detail, retry_after_s(headers))
    if error in PERMANENT_ERRORS or error == TOO_LONG_ERROR:
        return SendResult(SendOutcome.PERMANENT, detail)
    if status >= 500 or status in (200, 408):
        return SendResult(SendOutcome.RETRY, detail)
    return SendResult(SendOutcome.PERMANENT, detail)


def classify_api_error(method: str, exc: SlackApiError) -> tuple[str, SendResult]:
    response = exc.response
    error = error_code(response)
    data = getattr(response, "data", None)
    needed = data.get("needed") if isinstance(data, dict) else None
    status = int(getattr(response, "status_code", 0) or 0)
    headers = getattr(response, "headers", None) or {}
    return error, classify(method, status, error, headers, needed)


class _Failed(Exception):
    """A Web API call that did not go through; `result` is what the send reports."""

    def __init__(self, result: SendResult, error: str = "") -> None:
        super().__init__(result.detail)
        self.result = result
        self.error = error


# -- the channel ---------------------------------------------------------------------------------------


@dataclass
class _Connection:
    client: WebClient
    api_error: type[SlackApiError]


@dataclass
class _Send:
    """One send: the calls it makes on one connection."""

    connection: _Connection
    payload: SlackAppPayload

    def call(self, method: str, short: str | None, **kwargs: Any) -> SlackResponse:
        """Call a Web API method; after `msg_too_long`, once more with `short` as the whole message."""
        api: Callable[..., SlackResponse] = getattr(self.connection.client, method.replace(".", "_"))
        try:
            return api(**kwargs)
        except self.connection.api_error as exc:
            error, result = classify_api_error(method, exc)
            if error == TOO_LONG_ERROR and short is not None:
                return self.call(method, None, **_shrunk(method, kwargs, short))
            raise _Failed(result, error) from exc
        except (OSError, http.client.HTTPException) as exc:  # timeouts, refused or dropped connections
            raise _Failed(
                SendResult(SendOutcome.RETRY, f"{method}: no answer: {type(exc).__name__}")
            ) from exc


def _shrunk(method: str, kwargs: dict[str, Any], short: str) -> dict[str, Any]:
    smaller = {k: v for k, v in kwargs.items() if k != "blocks"}
    smaller["text"] = short
    if method == "chat.update":
        smaller["blocks"] = []  # omitted blocks would be kept by Slack
    return smaller


def _posted_root(answer: SlackResponse, channel: str) -> ThreadRoot:
    ts = answer.get("ts")
    if not isinstance(ts, str) or not ts:
        raise _Failed(SendResult(SendOutcome.RETRY, "chat.postMessage: answer without ts"))
    answered = answer.get("channel")
    return ThreadRoot(channel=answered if isinstance(answered, str) and answered else channel, ts=ts)


class SlackAppChannel:
    """`channels.base.Channel` for a `SlackAppDestination`: a living root per job, replies in its thread."""

    def __init__(
        self,
        destination: SlackAppDestination,
        secrets: Secrets,
        threads: ThreadStore,
        tuning: ChannelTuning,
        *,
        base_url: str | None = None,
    ) -> None:
        self._destination = destination
        self._secrets = secrets
        self._threads = threads
        self._base_url = base_url
        self._connection: _Connection | None = None
        self.limits = ChannelLimits(
            name=destination.id,
            metric_prefix="SlackApp",
            min_interval_s=tuning.min_interval_s,
            max_retry_after_s=tuning.max_retry_after_s,
            max_attempts=tuning.max_attempts,
            retry_base_s=tuning.retry_base_s,
            claim_lease_s=CLAIM_LEASE_S,
            ordered=True,
            order_wait_s=tuning.order_wait_s,
            order_retry_s=tuning.order_retry_s,
        )

    def render(self, notice: Notice) -> SlackAppPayload:
        return render(notice)

    def problems(self, payload: SlackAppPayload) -> list[str]:
        return problems(payload)

    def _connect(self) -> _Connection:
        """The Web API client with the bot token, made on first use (this is where slack_sdk is imported)."""
        if self._connection is None:
            token = self._secrets.get(self._destination.token_secret).strip()
            if not token:
                raise SecretUnavailableError(f"secret {self._destination.token_secret!r} is empty")
            from slack_sdk.errors import SlackApiError
            from slack_sdk.web import WebClient

            options: dict[str, Any] = {"token": token, "timeout": int(TIMEOUT_S), "retry_handlers": []}
            if self._base_url is not None:
                options["base_url"] = self._base_url
            self._connection = _Connection(WebClient(**options), SlackApiError)
        return self._connection

    def send(self, payload: SlackAppPayload) -> SendResult:
        try:
            connection = self._connect()
        except SecretUnavailableError as exc:
            return SendResult(SendOutcome.BLOCKED, f"bot token secret unavailable: {exc}", SECRET_PAUSE_S)
        run = _Send(connection, payload)
        try:
            root = self._root(run)
            reply = dict(payload.reply)
            if payload.broadcast:
                reply["reply_broadcast"] = True
            run.call(
                "chat.postMessage", payload.reply_short, channel=root.channel, thread_ts=root.ts, **reply
            )
        except _Failed as failed:
            if failed.error in AUTH_ERRORS:
                self._connection = None  # a rotated token is read again on the next send
            return failed.result
        return DELIVERED

    def _root(self, run: _Send) -> ThreadRoot:
        """The job's root, brought up to date: edited in place, or posted (again) and remembered."""
        payload, destination = run.payload, self._destination
        root = self._threads.root(destination.id, payload.job_key)
        if root is not None:
            try:
                run.call("chat.update", payload.root_short, channel=root.channel, ts=root.ts, **payload.root)
            except _Failed as failed:
                if failed.error not in ROOT_GONE_ERRORS:
                    raise
            else:
                return root
        answer = run.call(
            "chat.postMessage",
            payload.root_short,
            channel=destination.channel,
            unfurl_links=False,
            unfurl_media=False,
            **payload.root,
        )
        root = _posted_root(answer, destination.channel)
        self._threads.save_root(destination.id, payload.job_key, root)
        return root
