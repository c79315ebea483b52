"""A local Slack incoming-webhook endpoint that validates payloads the way Slack does.

Why: a message that renders in a unit test can still be refused by Slack (too many blocks, a header
over 150 characters...), and Slack's failure answers are plain-text words with odd status codes
(`invalid_blocks` 400, `channel_is_archived` 410, `rate_limited` 429 + Retry-After). This sink
enforces the documented limits, records what was accepted and what was refused, and can be scripted
to fail, including the nasty case where the post went through but the client saw an error.

`python -m <package>.slack_sink --port P` runs it standalone; `/_sink/*` is its control API.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from .http11 import Disconnect, HttpApp, Request, Response

__all__ = [
    "SINK_PRESETS",
    "SinkMessage",
    "SinkResponse",
    "SlackSink",
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
        return out

    @classmethod
    def from_json(cls, data: Any) -> SinkResponse:
        """A preset name (see SINK_PRESETS) or an object with status/body/retryAfter/record/drop/delayMs."""
        if isinstance(data, str):
            try:
                return SINK_PRESETS[data]
            except KeyError:
                raise ValueError(f"unknown preset {data!r}; known: {', '.join(SINK_PRESETS)}") from None
        if not isinstance(data, Mapping):
            raise ValueError("a scripted response must be a preset name or an object")
        unknown = set(data) - {"status", "body", "retryAfter", "retry_after", "record", "drop", "delayMs"}
        if unknown:
            raise ValueError(f"unknown response fields {sorted(unknown)}")
        retry_after = data.get("retryAfter", data.get("retry_after"))
        return cls(
            status=int(data.get("status", 200)),
            body=str(data.get("body", "ok")),
            retry_after=None if retry_after is None else str(retry_after),
            record=bool(data.get("record", False)),
            drop=bool(data.get("drop", False)),
            delay_ms=float(data.get("delayMs", 0.0)),
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


class SlackSink(HttpApp):
    """Incoming-webhook stand-in. Thread-safe; `messages()` lists accepted posts in arrival order."""

    def __init__(self, *, port: int = 0, latency_ms: float = 0.0) -> None:
        super().__init__(port=port)
        self._lock = threading.Condition()
        self.latency_ms = latency_ms
        self._accepted: list[SinkMessage] = []
        self._rejected: list[SinkMessage] = []
        self._script: deque[SinkResponse] = deque()

    @property
    def url(self) -> str:
        """A webhook URL like `http://127.0.0.1:PORT/services/T000/B000/XXXX`."""
        return self.base_url + WEBHOOK_PATH

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
        with self._lock:
            self._accepted.clear()
            self._rejected.clear()
            self._script.clear()

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
        if not request.path.startswith("/services/"):
            return Response.text(404, "no_service", content_type=_SLACK_CONTENT_TYPE)
        if request.method != "POST":
            return Response.text(405, "invalid_method", content_type=_SLACK_CONTENT_TYPE)
        response, delay_ms = self._receive(request)
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
            scripted = self._script.popleft() if self._script else None
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
            self._accepted.append(
                SinkMessage(request.path, payload, raw, time.time(), status, body, accepted=True)
            )
            self._lock.notify_all()
            return _answer(answer), answer.delay_ms

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
        except ValueError as exc:
            return Response.json({"error": str(exc)}, 400)
        return Response.json({"error": f"no control route {method} {path}"}, 404)


def _answer(scripted: SinkResponse) -> Response:
    if scripted.drop:
        return Response.dropped(Disconnect.CLOSE)
    headers: tuple[tuple[str, str], ...] = ()
    if scripted.retry_after is not None:
        headers = (("Retry-After", scripted.retry_after),)
    return Response.text(scripted.status, scripted.body, content_type=_SLACK_CONTENT_TYPE, headers=headers)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="local Slack incoming-webhook sink (binds 127.0.0.1 only)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (see the READY line)")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    return SlackSink(port=args.port, latency_ms=args.latency_ms).serve_cli()


if __name__ == "__main__":
    raise SystemExit(main())
