"""The transition event as bytes on a wire with a size limit (SNS 256 KiB, EventBridge 256 KB).

One shrinking order for every channel that carries the JSON event, so a consumer sees the same
truncation whichever way the event reached it (docs/event-schema.md, "Size limit and truncation"):
nested snapshot details go first, then long scalar details (`detailsTruncated: true` marks both),
then errors and the note are cut to the e-mail's caps.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

from jobwatch.render.email import MAX_EMAIL_ERROR_CHARS, MAX_NOTE_CHARS
from jobwatch.render.view import cap_block

MAX_KEPT_DETAIL_CHARS = 256
"""A string detail longer than this is dropped in the second shrinking step."""


def event_json(value: Any) -> str:
    """Compact JSON that is always valid UTF-8 (a lone surrogate from upstream becomes `?`)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "replace"))


def _details(event: dict[str, Any], name: str) -> dict[str, Any] | None:
    snapshot = event.get(name)
    details = snapshot.get("details") if isinstance(snapshot, dict) else None
    return details if isinstance(details, dict) else None


def _drop_nested_details(name: str) -> Callable[[dict[str, Any]], None]:
    def step(event: dict[str, Any]) -> None:
        details = _details(event, name)
        if details is None:
            return
        nested = [key for key, value in details.items() if isinstance(value, list | dict)]
        for key in nested:
            del details[key]
        if nested:
            details["detailsTruncated"] = True

    return step


def _short_scalar(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float):
        return True
    return isinstance(value, str) and len(value) <= MAX_KEPT_DETAIL_CHARS


def _keep_short_scalars(name: str) -> Callable[[dict[str, Any]], None]:
    def step(event: dict[str, Any]) -> None:
        details = _details(event, name)
        if not details:
            return
        kept = {key: value for key, value in details.items() if _short_scalar(value)}
        event[name]["details"] = {**kept, "detailsTruncated": True}

    return step


def _cap_texts(event: dict[str, Any]) -> None:
    for name in ("previous", "current"):
        snapshot = event.get(name)
        error = snapshot.get("error") if isinstance(snapshot, dict) else None
        if isinstance(error, str) and len(error) > MAX_EMAIL_ERROR_CHARS:
            snapshot["error"] = cap_block(error, MAX_EMAIL_ERROR_CHARS)  # type: ignore[index]
    note = event.get("note")
    if isinstance(note, str) and len(note) > MAX_NOTE_CHARS:
        event["note"] = cap_block(note, MAX_NOTE_CHARS)


_SHRINK_STEPS: tuple[Callable[[dict[str, Any]], None], ...] = (
    _drop_nested_details("previous"),
    _drop_nested_details("current"),
    _keep_short_scalars("previous"),
    _keep_short_scalars("current"),
    _cap_texts,
)


def shrinking(wire: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The event itself, then ever smaller copies of it: the least useful bytes go first.

    The caller serialises each and takes the first that fits; the input is never modified.
    """
    yield wire
    event = copy.deepcopy(wire)
    for step in _SHRINK_STEPS:
        step(event)
        yield event
