"""A local Slack (incoming webhooks and the Web API's chat methods) that validates payloads like Slack.

Why: a message that renders in a unit test can still be refused by Slack (too many blocks, a header
over 150 characters...), and Slack's failure answers are plain-text words with odd status codes
(`invalid_blocks` 400, `channel_is_archived` 410, `rate_limited` 429 + Retry-After). This sink
enforces the documented limits, records what was accepted and what was refused, and can be scripted
to fail, including the nasty case where the post went through but the client saw an error.

The Web API part (`POST /api/chat.postMessage`, `POST /api/chat.update`, base URL `api_url`) checks
the bot token (`Authorization: Bearer xoxb-…`, or a `token` field), answers like Slack (HTTP 200 with
`ok: true/false`, increasing unique `ts`), attaches replies to their parent's thread, records
`reply_broadcast`, keeps each message's current (last updated) text and blocks, and answers
`message_not_found` for an update of an unknown or deleted message. `channel_view()` shows a channel
as a person would see it: root messages in order, each with its replies (`channel_text()` in plain
text). Scripted answers serve both kinds; an answer with a `method` waits for a call of that method.

`python -m <package>.slack_sink --port P` runs it standalone; `/_sink/*` is its control API.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import html
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from .http11 import Disconnect, HttpApp, Request, Response

__all__ = [
    "DEFAULT_BOT_TOKEN",
    "SINK_PRESETS",
    "ApiCall",
    "ApiMessage",
    "SinkMessage",
    "SinkResponse",
    "SlackSink",
    "SlackThread",
    "render_post",
    "validate_payload",
]

WEBHOOK_PATH = "/services/T000/B000/XXXX"
"""The path of `SlackSink.url`; any `/services/...` path is accepted."""

MAX_BLOCKS = 50
MAX_HEADER_CHARS = 150
MAX_SECTION_TEXT_CHARS = 3000
MAX_SECTION_FIELDS = 10
MAX_FIELD_CHARS = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_BLOCK_ID_CHARS = 255
KNOWN_BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "video",
    }
)
_TEXT_TYPES = frozenset({"plain_text", "mrkdwn"})
_SLACK_CONTENT_TYPE = "text/html"  # Slack answers webhook posts with text/html bodies like `ok`
_JSON_CONTENT_TYPE = "application/json; charset=utf-8"

API_PREFIX = "/api/"
"""Web API methods live under this path: `api_url` is what a `WebClient(base_url=...)` takes."""
DEFAULT_BOT_TOKEN = "xoxb-000000000000-0000000000000-jobwatchlocalsink"
"""The bot token the sink accepts unless told another (`SlackSink(bot_token=...)`)."""
API_RATE_LIMIT_ERROR = "ratelimited"


@dataclass(frozen=True, slots=True)
class SinkResponse:
    """One scripted answer to the next webhook post.

    `record=True` means Slack accepted the post (it is validated and recorded as delivered) whatever
    is answered; `drop=True` closes the connection instead of answering (after recording, if `record`).
    """

    status: int = 200
    body: str = "ok"
    retry_after: str | None = None
    record: bool = False
    drop: bool = False
    delay_ms: float = 0.0
    method: str | None = None
    """Only for a Web API call of this method (`chat.update`); None: the next request of any kind."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "body": self.body}
        if self.retry_after is not None:
            out["retryAfter"] = self.retry_after
        if self.record:
            out["record"] = True
        if self.drop:
            out["drop"] = True
        if self.delay_ms:
            out["delayMs"] = self.delay_ms
        if self.method is not None:
            out["method"] = self.method
        return out

    @classmethod
    def api_error(
        cls,
        error: str,
        *,
        method: str | None = None,
        status: int | None = None,
        retry_after: str | None = None,
        record: bool = False,
    ) -> SinkResponse:
        """A Web API error answer: HTTP 200 with `{"ok": false, "error": ...}`, except `ratelimited`,
        which Slack answers with HTTP 429 and `Retry-After` (1 s unless told)."""
        limited = error == API_RATE_LIMIT_ERROR
        return cls(
            status=status if status is not None else 429 if limited else 200,
            body=json.dumps({"ok": False, "error": error}),
            retry_after=retry_after if retry_after is not None else "1" if limited else None,
            record=record,
            method=method,
        )

    @classmethod
    def from_json(cls, data: Any) -> SinkResponse:
        """A preset name (see SINK_PRESETS), `api:<error>` (a Web API error, see `api_error`), an object
        with status/body/retryAfter/record/drop/delayMs/method, or one with `error` (a Web API error)."""
        if isinstance(data, str):
            if data.startswith("api:") and len(data) > 4:
                return cls.api_error(data[4:])
            try:
                return SINK_PRESETS[data]
            except KeyError:
                raise ValueError(f"unknown preset {data!r}; known: {', '.join(SINK_PRESETS)}") from None
        if not isinstance(data, Mapping):
            raise ValueError("a scripted response must be a preset name or an object")
        if "error" in data:
            return _api_error_from_json(data)
        unknown = set(data) - {
            "status",
            "body",
            "retryAfter",
            "retry_after",
            "record",
            "drop",
            "delayMs",
            "method",
        }
        if unknown:
            raise ValueError(f"unknown response fields {sorted(unknown)}")
        retry_after = data.get("retryAfter", data.get("retry_after"))
        method = data.get("method")
        return cls(
            status=int(data.get("status", 200)),
            body=str(data.get("body", "ok")),
            retry_after=None if retry_after is None else str(retry_after),
            record=bool(data.get("record", False)),
            drop=bool(data.get("drop", False)),
            delay_ms=float(data.get("delayMs", 0.0)),
            method=None if method is None else str(method),
        )


def _api_error_from_json(data: Mapping[str, Any]) -> SinkResponse:
    unknown = set(data) - {"error", "method", "status", "retryAfter", "record"}
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)} in a Web API error")
    status, retry_after, method = data.get("status"), data.get("retryAfter"), data.get("method")
    return SinkResponse.api_error(
        str(data["error"]),
        method=None if method is None else str(method),
        status=None if status is None else int(status),
        retry_after=None if retry_after is None else str(retry_after),
        record=bool(data.get("record", False)),
    )


SINK_PRESETS: dict[str, SinkResponse] = {
    "ok": SinkResponse(200, "ok", record=True),
    "rate_limited": SinkResponse(429, "rate_limited", retry_after="1"),
    "no_service": SinkResponse(404, "no_service"),
    "channel_not_found": SinkResponse(404, "channel_not_found"),
    "channel_is_archived": SinkResponse(410, "channel_is_archived"),
    "action_prohibited": SinkResponse(403, "action_prohibited"),
    "invalid_token": SinkResponse(403, "invalid_token"),
    "server_error": SinkResponse(500, "internal_error"),
    "service_unavailable": SinkResponse(503, "service_unavailable"),
    "accept_then_429": SinkResponse(429, "rate_limited", retry_after="1", record=True),
    "accept_then_500": SinkResponse(500, "internal_error", record=True),
    "accept_then_drop": SinkResponse(0, "", record=True, drop=True),
    "drop": SinkResponse(0, "", drop=True),
}
"""Named scripted answers. `accept_then_*`: the message was posted although the client saw a failure."""


@dataclass(frozen=True, slots=True)
class SinkMessage:
    """One webhook post as received, with what the sink answered (status 0: connection dropped)."""

    path: str
    payload: Any
    """The decoded JSON payload; None when the body was not JSON."""
    raw: str
    received_at: float
    status: int
    response: str
    accepted: bool

    @property
    def text(self) -> str | None:
        """Top-level `text` of the payload, if any (the notification fallback)."""
        if isinstance(self.payload, dict) and isinstance(self.payload.get("text"), str):
            return str(self.payload["text"])
        return None

    @property
    def blocks(self) -> list[Any]:
        if isinstance(self.payload, dict) and isinstance(self.payload.get("blocks"), list):
            return list(self.payload["blocks"])
        return []

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "payload": self.payload,
            "raw": None if self.payload is not None else self.raw,
            "receivedAt": self.received_at,
            "status": self.status,
            "response": self.response,
            "accepted": self.accepted,
        }


class PayloadError(ValueError):
    """Why Slack would refuse a payload; `code` is the word Slack answers with."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def validate_payload(payload: Any) -> None:
    """Raise PayloadError (`no_text`, `invalid_blocks`, `invalid_payload`) as Slack would answer."""
    if not isinstance(payload, dict):
        raise PayloadError("invalid_payload", "payload must be a JSON object")
    text = payload.get("text")
    blocks = payload.get("blocks")
    attachments = payload.get("attachments")
    if text is not None and not isinstance(text, str):
        raise PayloadError("invalid_payload", "text must be a string")
    if blocks is None and attachments is None and not text:
        raise PayloadError("no_text", "payload has neither text nor blocks")
    if attachments is not None and not isinstance(attachments, list):
        raise PayloadError("invalid_payload", "attachments must be an array")
    if blocks is None:
        return
    if not isinstance(blocks, list):
        raise PayloadError("invalid_blocks", "blocks must be an array")
    if len(blocks) > MAX_BLOCKS:
        raise PayloadError("invalid_blocks", f"{len(blocks)} blocks, at most {MAX_BLOCKS}")
    if not blocks and not text and attachments is None:
        raise PayloadError("no_text", "empty blocks and no text")
    for index, block in enumerate(blocks):
        _validate_block(index, block)


def _validate_block(index: int, block: Any) -> None:
    where = f"blocks[{index}]"
    if not isinstance(block, dict):
        raise PayloadError("invalid_blocks", f"{where} must be an object")
    kind = block.get("type")
    if kind not in KNOWN_BLOCK_TYPES:
        raise PayloadError("invalid_blocks", f"{where}: unknown block type {kind!r}")
    block_id = block.get("block_id")
    if block_id is not None and (not isinstance(block_id, str) or len(block_id) > MAX_BLOCK_ID_CHARS):
        raise PayloadError("invalid_blocks", f"{where}.block_id must be a string of <= 255 chars")
    if kind == "header":
        text = _text_object(f"{where}.text", block.get("text"), MAX_HEADER_CHARS)
        if text.get("type") != "plain_text":
            raise PayloadError("invalid_blocks", f"{where}.text must be plain_text")
    elif kind == "section":
        text_obj = block.get("text")
        fields = block.get("fields")
        if text_obj is None and fields is None:
            raise PayloadError("invalid_blocks", f"{where} needs text or fields")
        if text_obj is not None:
            _text_object(f"{where}.text", text_obj, MAX_SECTION_TEXT_CHARS)
        if fields is not None:
            if not isinstance(fields, list) or not fields:
                raise PayloadError("invalid_blocks", f"{where}.fields must be a non-empty array")
            if len(fields) > MAX_SECTION_FIELDS:
                raise PayloadError(
                    "invalid_blocks", f"{where}.fields has {len(fields)} items, at most {MAX_SECTION_FIELDS}"
                )
            for n, item in enumerate(fields):
                _text_object(f"{where}.fields[{n}]", item, MAX_FIELD_CHARS)
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            raise PayloadError("invalid_blocks", f"{where}.elements must be a non-empty array")
        if len(elements) > MAX_CONTEXT_ELEMENTS:
            raise PayloadError(
                "invalid_blocks", f"{where}.elements has {len(elements)}, at most {MAX_CONTEXT_ELEMENTS}"
            )
        for n, element in enumerate(elements):
            if not isinstance(element, dict):
                raise PayloadError("invalid_blocks", f"{where}.elements[{n}] must be an object")
            if element.get("type") in _TEXT_TYPES:
                _text_object(f"{where}.elements[{n}]", element, MAX_SECTION_TEXT_CHARS)
            elif element.get("type") != "image":
                raise PayloadError("invalid_blocks", f"{where}.elements[{n}]: bad element type")


def _text_object(where: str, value: Any, limit: int) -> dict[str, Any]:
    if not isinstance(value, dict) or value.get("type") not in _TEXT_TYPES:
        raise PayloadError("invalid_blocks", f"{where} must be a plain_text or mrkdwn text object")
    text = value.get("text")
    if not isinstance(text, str) or not text:
        raise PayloadError("invalid_blocks", f"{where}.text must be a non-empty string")
    if len(text) > limit:
        raise PayloadError("invalid_blocks", f"{where}.text is {len(text)} chars, at most {limit}")
    return value


def _decode(request: Request) -> Any:
    """JSON body, or the `payload=` form field Slack also accepts; raises ValueError if neither."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/x-www-form-urlencoded"):
        form = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
        if "payload" not in form:
            raise ValueError("form body without payload field")
        return json.loads(form["payload"][0])
    return json.loads(request.body)


# -- the Web API: messages, threads, calls -------------------------------------------------------------

_MENTION_RE = re.compile(r"<(@[UW][A-Z0-9]+|!subteam\^[A-Z0-9]+|!here|!channel|!everyone)(?:\|[^>]*)?>")
"""Control sequences Slack turns into a mention (what notifies people)."""


def _mrkdwn_texts(text: str, blocks: Sequence[Any]) -> Iterable[str]:
    """Every text Slack parses for mentions: the top-level text and the blocks' mrkdwn objects."""
    yield text
    for block in blocks:
        if not isinstance(block, dict):
            continue
        objects = [block.get("text"), *(block.get("fields") or []), *(block.get("elements") or [])]
        for obj in objects:
            if isinstance(obj, dict) and obj.get("type") == "mrkdwn" and isinstance(obj.get("text"), str):
                yield obj["text"]


def _as_seen(text: str) -> str:
    """Text as a person reads it: mentions as `@name`, entities decoded."""
    return html.unescape(_MENTION_RE.sub(lambda m: "@" + m.group(1).lstrip("@!"), text))


def _block_lines(block: Any) -> list[str]:
    if not isinstance(block, dict):
        return []
    kind = block.get("type")
    texts = [obj.get("text") for obj in [block.get("text")] if isinstance(obj, dict)]
    if kind == "section":
        texts += [
            f.get("text", "").replace("\n", ": ", 1) for f in block.get("fields") or [] if isinstance(f, dict)
        ]
    elif kind == "context":
        elements = [e.get("text") for e in block.get("elements") or [] if isinstance(e, dict)]
        texts = [" · ".join(str(e) for e in elements if e)]
    elif kind == "divider":
        texts = ["---"]
    return [line for text in texts if isinstance(text, str) for line in text.split("\n")]


@dataclass
class ApiMessage:
    """One message posted through the Web API, as it stands now (updates replace text and blocks)."""

    channel: str
    ts: str
    text: str
    blocks: list[Any]
    thread_ts: str | None = None
    """The root's ts for a reply; None for a message in the channel."""
    reply_broadcast: bool = False
    edits: int = 0
    deleted: bool = False

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None

    @property
    def mentions(self) -> list[str]:
        """The mentions in this message that would notify someone, each once, in order of appearance."""
        found = (
            m.group(0) for text in _mrkdwn_texts(self.text, self.blocks) for m in _MENTION_RE.finditer(text)
        )
        return list(dict.fromkeys(found))

    @property
    def visible_text(self) -> str:
        """The message as a person reads it: its blocks line by line (else its text), entities decoded."""
        lines = [line for block in self.blocks for line in _block_lines(block)]
        return _as_seen("\n".join(lines) if lines else self.text)

    def to_slack(self) -> dict[str, Any]:
        """The `message` object of Slack's answer."""
        out: dict[str, Any] = {"type": "message", "bot_id": "B0SINK", "text": self.text, "ts": self.ts}
        if self.blocks:
            out["blocks"] = self.blocks
        if self.thread_ts is not None:
            out["thread_ts"] = self.thread_ts
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "ts": self.ts,
            "text": self.text,
            "blocks": self.blocks,
            "threadTs": self.thread_ts,
            "replyBroadcast": self.reply_broadcast,
            "edits": self.edits,
            "deleted": self.deleted,
            "mentions": self.mentions,
        }


@dataclass(frozen=True, slots=True)
class SlackThread:
    """A root message of a channel and the replies in its thread, oldest first."""

    root: ApiMessage
    replies: tuple[ApiMessage, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"root": self.root.to_json(), "replies": [r.to_json() for r in self.replies]}


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One Web API call as received, with what the sink answered (status 0: connection dropped)."""

    method: str
    args: dict[str, Any]
    status: int
    answer: Any
    """The JSON answered (or the scripted body as text)."""
    received_at: float
    accepted: bool
    """The call took effect (a message was posted or updated), whatever the client was answered."""

    @property
    def ok(self) -> bool:
        return isinstance(self.answer, dict) and self.answer.get("ok") is True

    @property
    def error(self) -> str | None:
        return (
            str(self.answer.get("error"))
            if isinstance(self.answer, dict) and "error" in self.answer
            else None
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "args": self.args,
            "status": self.status,
            "answer": self.answer,
            "receivedAt": self.received_at,
            "accepted": self.accepted,
        }


class ApiError(Exception):
    """A Web API call Slack would refuse; `code` is its `error`."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1")) or value == 1


def _api_args(request: Request) -> dict[str, Any]:
    """A Web API call's arguments from a JSON or form body (and the query string)."""
    ctype = request.headers.get("content-type", "")
    args: dict[str, Any] = dict(request.query)
    if ctype.startswith("application/x-www-form-urlencoded"):
        form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        args.update({key: values[0] for key, values in form.items()})
    elif request.body.strip():
        try:
            body = json.loads(request.body)
        except ValueError:
            raise ApiError("invalid_json") from None
        if not isinstance(body, dict):
            raise ApiError("invalid_json")
        args.update(body)
    if isinstance(args.get("blocks"), str):  # form bodies carry blocks as a JSON string
        try:
            args["blocks"] = json.loads(args["blocks"])
        except ValueError:
            raise ApiError("invalid_blocks") from None
    return args


def _checked_content(text: Any, blocks: Any) -> tuple[str, list[Any]]:
    """Text and blocks of a message, validated as Slack would (its error codes)."""
    payload: dict[str, Any] = {"text": text}
    if blocks is not None:
        payload["blocks"] = blocks
    try:
        validate_payload(payload)
    except PayloadError as exc:
        raise ApiError("invalid_arguments" if exc.code == "invalid_payload" else exc.code) from None
    return (text or ""), list(blocks or [])


def _channel_of(args: Mapping[str, Any]) -> str:
    channel = args.get("channel")
    if not isinstance(channel, str) or not channel:
        raise ApiError("channel_not_found")
    return channel


class _WebApi:
    """The messages of every channel and the Web API methods that change them (under the sink's lock)."""

    def __init__(self) -> None:
        self.messages: list[ApiMessage] = []
        self.by_ts: dict[tuple[str, str], ApiMessage] = {}
        self.calls: list[ApiCall] = []
        self._last_us = 0

    def next_ts(self) -> str:
        """Slack's `1767225600.000100` form: unique and increasing, even within one microsecond."""
        self._last_us = max(int(time.time() * 1_000_000), self._last_us + 1)
        return f"{self._last_us // 1_000_000}.{self._last_us % 1_000_000:06d}"

    def post_message(self, args: Mapping[str, Any]) -> dict[str, Any]:
        channel = _channel_of(args)
        text, blocks = _checked_content(args.get("text"), args.get("blocks"))
        parent = None
        if args.get("thread_ts"):
            parent = self.by_ts.get((channel, str(args["thread_ts"])))
            if parent is None or parent.deleted:
                raise ApiError("thread_not_found")
            if parent.thread_ts is not None:  # replies always attach to the root
                parent = self.by_ts[(channel, parent.thread_ts)]
        message = ApiMessage(
            channel=channel,
            ts=self.next_ts(),
            text=text,
            blocks=blocks,
            thread_ts=None if parent is None else parent.ts,
            reply_broadcast=parent is not None and _truthy(args.get("reply_broadcast")),
        )
        self.messages.append(message)
        self.by_ts[(channel, message.ts)] = message
        return {"ok": True, "channel": channel, "ts": message.ts, "message": message.to_slack()}

    def update(self, args: Mapping[str, Any]) -> dict[str, Any]:
        channel = _channel_of(args)
        message = self.by_ts.get((channel, str(args.get("ts") or "")))
        if message is None or message.deleted:
            raise ApiError("message_not_found")
        text = args.get("text", message.text)
        blocks = args.get("blocks", message.blocks)  # omitted blocks are kept; [] removes them
        message.text, message.blocks = _checked_content(text, blocks)
        message.edits += 1
        return {
            "ok": True,
            "channel": channel,
            "ts": message.ts,
            "text": message.text,
            "message": message.to_slack(),
        }

    def answer(
        self, method: str, args: Mapping[str, Any], token: str | None, expected: str
    ) -> dict[str, Any]:
        """Slack's answer to one call (and its effect): auth first, then the method."""
        handlers = {"chat.postMessage": self.post_message, "chat.update": self.update}
        try:
            if method not in handlers:
                raise ApiError("unknown_method")
            if not token:
                raise ApiError("not_authed")
            if token != expected:
                raise ApiError("invalid_auth")
            return handlers[method](args)
        except ApiError as exc:
            return {"ok": False, "error": exc.code}

    def view(self, channel: str) -> list[SlackThread]:
        roots = [m for m in self.messages if m.channel == channel and m.thread_ts is None and not m.deleted]
        threads = []
        for root in roots:
            replies = [
                dataclasses.replace(m)
                for m in self.messages
                if m.channel == channel and m.thread_ts == root.ts
            ]
            threads.append(SlackThread(dataclasses.replace(root), tuple(replies)))
        return threads


def render_channel(channel: str, threads: Sequence[SlackThread]) -> str:
    """A channel in plain text, as a person scrolling it would read it (for the demo and test failures)."""
    lines = [f"#{channel}"]
    for thread in threads:
        root = thread.root
        edited = f" (edited {root.edits}x)" if root.edits else ""
        lines.append(f"● {root.ts}{edited}")
        lines += [f"  {line}" for line in root.visible_text.splitlines()]
        for reply in thread.replies:
            also = " [also sent to the channel]" if reply.reply_broadcast else ""
            lines.append(f"  ↳ {reply.ts}{also}")
            lines += [f"      {line}" for line in reply.visible_text.splitlines()]
    return "\n".join(lines)


def render_post(where: str, text: str, blocks: Sequence[Any], at: float | None = None) -> str:
    """One post as a person reads it in Slack: a header line (time, where), then its visible lines.

    Why: a person trying jobwatch locally watches the sink's terminal, not its JSON; `--print-posts`
    prints every accepted post this way as it arrives.
    """
    stamp = time.strftime("%H:%M:%S", time.localtime(time.time() if at is None else at))
    head = f"── {stamp} Slack {where} "
    lines = [line for block in blocks for line in _block_lines(block)] or text.splitlines()
    body = [f"  {_as_seen(_unmarked(line))}" for line in lines if line.strip()]
    return "\n".join([head + "─" * max(3, 78 - len(head)), *body])


_LINK_RE = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")
_BOLD_RE = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_CODE_RE = re.compile(r"`([^`\n]+)`")


def _unmarked(line: str) -> str:
    """mrkdwn as Slack displays it: links as their label (and address), no bold stars or code ticks."""
    line = _LINK_RE.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1), line)
    return _CODE_RE.sub(r"\1", _BOLD_RE.sub(r"\1", line))


class SlackSink(HttpApp):
    """Incoming-webhook and Web API stand-in. Thread-safe; `messages()` lists accepted webhook posts in
    arrival order, `channel_view()` a channel's Web API messages as threads."""

    def __init__(self, *, port: int = 0, latency_ms: float = 0.0, bot_token: str = DEFAULT_BOT_TOKEN) -> None:
        super().__init__(port=port)
        self._lock = threading.Condition()
        self.latency_ms = latency_ms
        self.bot_token = bot_token
        """The one bot token the Web API accepts (`invalid_auth` for any other)."""
        self._accepted: list[SinkMessage] = []
        self._rejected: list[SinkMessage] = []
        self._script: deque[SinkResponse] = deque()
        self._api = _WebApi()
        self.printer: Callable[[str], None] | None = None
        """Given every accepted post rendered by `render_post` (`--print-posts`); None prints nothing."""

    @property
    def url(self) -> str:
        """A webhook URL like `http://127.0.0.1:PORT/services/T000/B000/XXXX`."""
        return self.base_url + WEBHOOK_PATH

    @property
    def api_url(self) -> str:
        """The Web API base URL, `http://127.0.0.1:PORT/api/` (what `WebClient(base_url=...)` takes)."""
        return self.base_url + API_PREFIX

    # -- in-process API --------------------------------------------------------------------------------

    def messages(self, path: str | None = None) -> list[SinkMessage]:
        """Accepted posts (including `accept_then_*` ones the client saw fail)."""
        with self._lock:
            return [m for m in self._accepted if path is None or m.path == path]

    def rejected(self) -> list[SinkMessage]:
        """Posts Slack would not have delivered: invalid payloads and scripted failures."""
        with self._lock:
            return list(self._rejected)

    def script(self, responses: Iterable[SinkResponse | str | Mapping[str, Any]]) -> None:
        """Queue answers for the next posts (then back to normal validation + 200 `ok`)."""
        parsed = [r if isinstance(r, SinkResponse) else SinkResponse.from_json(r) for r in responses]
        with self._lock:
            self._script.extend(parsed)

    def pending_script(self) -> list[SinkResponse]:
        with self._lock:
            return list(self._script)

    def reset(self) -> None:
        """Forget every post, message, call and scripted answer (the bot token stays)."""
        with self._lock:
            self._accepted.clear()
            self._rejected.clear()
            self._script.clear()
            self._api = _WebApi()

    # -- in-process API: the Web API ---------------------------------------------------------------------

    def api_calls(self, method: str | None = None) -> list[ApiCall]:
        """Every Web API call in arrival order (answered ok or not), optionally of one method."""
        with self._lock:
            return [c for c in self._api.calls if method is None or c.method == method]

    def channel_view(self, channel: str) -> list[SlackThread]:
        """The channel as a person sees it: root messages in order with their current text and blocks,
        each with its thread's replies (copies: later updates do not change them)."""
        with self._lock:
            return self._api.view(channel)

    def channel_text(self, channel: str) -> str:
        """`channel_view` in plain text: roots, then their indented replies, mentions as `@name`."""
        return render_channel(channel, self.channel_view(channel))

    def channels(self) -> list[str]:
        """Channels with at least one Web API message, in order of their first message."""
        with self._lock:
            return list(dict.fromkeys(m.channel for m in self._api.messages))

    def delete_message(self, channel: str, ts: str) -> bool:
        """Delete a message as a person would (its thread goes with it); False if there was none."""
        with self._lock:
            message = self._api.by_ts.get((channel, ts))
            if message is None or message.deleted:
                return False
            message.deleted = True
            return True

    def wait_for_api_calls(
        self, count: int, method: str | None = None, timeout: float = 5.0
    ) -> list[ApiCall]:
        """Block until at least `count` Web API calls (of `method`) took effect."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                done = [c for c in self._api.calls if c.accepted and (method is None or c.method == method)]
                if len(done) >= count:
                    return done
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(done)} of {count} Slack Web API calls after {timeout}s")
                self._lock.wait(remaining)

    def wait_for_messages(self, count: int, timeout: float = 5.0) -> list[SinkMessage]:
        """Block until at least `count` posts were accepted (for a Lambda in another process)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._accepted) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self._accepted)} of {count} Slack messages after {timeout}s")
                self._lock.wait(remaining)
            return list(self._accepted)

    # -- HTTP ------------------------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        if request.path.startswith("/_sink/"):
            return self._control(request)
        is_api = request.path.startswith(API_PREFIX)
        if not is_api and not request.path.startswith("/services/"):
            return Response.text(404, "no_service", content_type=_SLACK_CONTENT_TYPE)
        if request.method != "POST":
            return Response.text(405, "invalid_method", content_type=_SLACK_CONTENT_TYPE)
        response, delay_ms = self._receive_api(request) if is_api else self._receive(request)
        delay = (self.latency_ms + delay_ms) / 1000.0
        if delay > 0:
            await asyncio.sleep(delay)
        return response

    def _receive(self, request: Request) -> tuple[Response, float]:
        raw = request.body.decode("utf-8", "replace")
        payload: Any = None
        error: PayloadError | None = None
        try:
            payload = _decode(request)
        except (ValueError, UnicodeDecodeError):
            error = PayloadError("invalid_payload", "body is not JSON")
        with self._lock:
            scripted = self._take_script(None)
            if scripted is not None and not scripted.record:
                status, body = (0, "") if scripted.drop else (scripted.status, scripted.body)
                self._rejected.append(
                    SinkMessage(request.path, payload, raw, time.time(), status, body, accepted=False)
                )
                return _answer(scripted), scripted.delay_ms
            if error is None:
                try:
                    validate_payload(payload)
                except PayloadError as exc:
                    error = exc
            if error is not None:
                self._rejected.append(
                    SinkMessage(request.path, payload, raw, time.time(), 400, error.code, accepted=False)
                )
                return Response.text(400, error.code, content_type=_SLACK_CONTENT_TYPE), 0.0
            answer = scripted or SINK_PRESETS["ok"]
            status, body = (0, "") if answer.drop else (answer.status, answer.body)
            message = SinkMessage(request.path, payload, raw, time.time(), status, body, accepted=True)
            self._accepted.append(message)
            self._lock.notify_all()
            self._print_webhook_post(message)
            return _answer(answer), answer.delay_ms

    def _print_webhook_post(self, message: SinkMessage) -> None:
        if self.printer is not None:
            where = f"incoming webhook {message.path}"
            self.printer(render_post(where, message.text or "", message.blocks, message.received_at))

    def _print_api_post(self, method: str, answer: Mapping[str, Any]) -> None:
        """A Web API message as it now stands: new in a channel, a thread reply, or an edit."""
        if self.printer is None:
            return
        posted = self._api.by_ts.get((str(answer.get("channel")), str(answer.get("ts"))))
        if posted is None:
            return
        where = f"#{posted.channel}"
        if posted.is_reply:
            where += f", reply in thread {posted.thread_ts}"
            if posted.reply_broadcast:
                where += " (also sent to the channel)"
        if method == "chat.update":
            where += f", message {posted.ts} edited"
        self.printer(render_post(where, posted.text, posted.blocks))

    def _take_script(self, method: str | None) -> SinkResponse | None:
        """The first scripted answer for this request: one for any request, or for its API method."""
        for index, scripted in enumerate(self._script):
            if scripted.method is None or scripted.method == method:
                del self._script[index]
                return scripted
        return None

    def _receive_api(self, request: Request) -> tuple[Response, float]:
        method = request.path[len(API_PREFIX) :]
        try:
            args, bad = _api_args(request), None
        except ApiError as exc:
            args, bad = {}, exc.code
        token = request.bearer_token() or args.pop("token", None)
        args.pop("token", None)
        with self._lock:
            scripted = self._take_script(method)
            if scripted is not None and not scripted.record:
                status, body = (0, "") if scripted.drop else (scripted.status, scripted.body)
                self._api.calls.append(ApiCall(method, args, status, _json_or_text(body), time.time(), False))
                return _answer(scripted, _JSON_CONTENT_TYPE), scripted.delay_ms
            answer = (
                {"ok": False, "error": bad} if bad else self._api.answer(method, args, token, self.bot_token)
            )
            accepted = answer["ok"] is True
            if accepted:
                self._print_api_post(method, answer)
            if scripted is None or not accepted:  # a scripted `record` answer still needs a valid call
                self._api.calls.append(ApiCall(method, args, 200, answer, time.time(), accepted))
                self._lock.notify_all()
                return Response.json(answer, content_type=_JSON_CONTENT_TYPE), 0.0
            status, body = (0, "") if scripted.drop else (scripted.status, scripted.body)
            self._api.calls.append(ApiCall(method, args, status, _json_or_text(body), time.time(), True))
            self._lock.notify_all()
            return _answer(scripted, _JSON_CONTENT_TYPE), scripted.delay_ms

    def _control_api(self, request: Request) -> Response | None:
        """`GET /_sink/api` (calls and channels), `POST /_sink/api/delete` ({channel, ts})."""
        if request.method == "GET" and request.path == "/_sink/api":
            with self._lock:
                calls = [c.to_json() for c in self._api.calls]
            views = {ch: [t.to_json() for t in self.channel_view(ch)] for ch in self.channels()}
            return Response.json({"calls": calls, "channels": views})
        if request.method == "POST" and request.path == "/_sink/api/delete":
            data = request.json()
            if not isinstance(data, dict) or not isinstance(data.get("channel"), str):
                raise ValueError('expected {"channel": ..., "ts": ...}')
            return Response.json({"deleted": self.delete_message(data["channel"], str(data.get("ts")))})
        return None

    def _control(self, request: Request) -> Response:
        method, path = request.method, request.path
        try:
            if method == "GET" and path == "/_sink/messages":
                return Response.json(
                    {
                        "messages": [m.to_json() for m in self.messages()],
                        "rejected": [m.to_json() for m in self.rejected()],
                        "pendingScript": [r.to_json() for r in self.pending_script()],
                    }
                )
            if method == "POST" and path == "/_sink/script":
                data = request.json()
                if not isinstance(data, list):
                    raise ValueError("script must be a JSON array")
                self.script(data)
                return Response.json({"queued": len(self.pending_script())})
            if method == "POST" and path == "/_sink/reset":
                self.reset()
                return Response.json({"ok": True})
            api = self._control_api(request)
            if api is not None:
                return api
        except ValueError as exc:
            return Response.json({"error": str(exc)}, 400)
        return Response.json({"error": f"no control route {method} {path}"}, 404)


def _json_or_text(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body


def _answer(scripted: SinkResponse, json_type: str | None = None) -> Response:
    """The scripted answer; a JSON body gets `json_type` (Web API answers) when given."""
    if scripted.drop:
        return Response.dropped(Disconnect.CLOSE)
    headers: tuple[tuple[str, str], ...] = ()
    if scripted.retry_after is not None:
        headers = (("Retry-After", scripted.retry_after),)
    is_json = json_type is not None and scripted.body.lstrip().startswith("{")
    content_type = json_type if is_json else _SLACK_CONTENT_TYPE
    return Response.text(scripted.status, scripted.body, content_type=content_type, headers=headers)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="local Slack sink: incoming webhooks and the Web API chat methods (127.0.0.1 only)"
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (see the READY line)")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--bot-token", default=DEFAULT_BOT_TOKEN, help="the bot token the Web API accepts")
    parser.add_argument(
        "--print-posts", action="store_true", help="print every accepted post on stdout as a person reads it"
    )
    args = parser.parse_args(argv)
    sink = SlackSink(port=args.port, latency_ms=args.latency_ms, bot_token=args.bot_token)
    if args.print_posts:
        sink.printer = _print_flushed
    return sink.serve_cli()


def _print_flushed(text: str) -> None:
    print(text, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
