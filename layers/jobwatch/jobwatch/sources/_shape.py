"""Strict readers for upstream JSON bodies, shared by every source.

Why strict: a field with the wrong type means the upstream API changed shape (schema drift). Guessing a
phase from a drifted body could announce a false success or failure, so every reader here raises
`PollError(INVALID_BODY)` instead. Known upstream quirks (doc placeholders, Go zero dates) are still
normalised through `_fields`, because those are documented behaviour, not drift.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.domain.model import Phase
from jobwatch.sources._fields import clamp_percent, text_or_none, timestamp_or_none
from jobwatch.sources.base import HttpResponse, decode_json_object, http_status_error

T = TypeVar("T")

LIST_CAP = 50
"""Per-file / per-shard summaries keep this many entries; the rest is only counted (details stay small)."""

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_EXCERPT_CHARS = 200
_ID_CHARS = 80
_SCAN_BYTES = 4096
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]{0,500}>")


def load_object(response: HttpResponse) -> dict[str, Any]:
    """The body as a JSON object, through the one strict decoder (`base.decode_json`: duplicated keys
    are INVALID_BODY, nesting deeper than MAX_JSON_DEPTH is TOO_DEEP)."""
    return decode_json_object(response)


def check_job_id(obj: dict[str, Any], key: str, expect_id: str | None, where: str = "") -> None:
    """Refuse a body that names another job than the one asked about.

    The id is compared as a string, exactly (ids are opaque: no case folding, no trimming). A JSON
    integer is read as its decimal text, because Milvus ids are int64 and a build that marshals them
    as numbers must still match `"451910421389390804"`; Python's json keeps such integers exact. Any
    other type (a float, which may already have lost digits, a boolean, an object) is schema drift.
    Absent, null and "" name no job and are accepted: not every status body carries an id (see each
    source), and refusing them would turn a harmless omission into an outage.
    """
    value = obj.get(key)
    if value is None or value == "":
        return
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    elif not isinstance(value, str):
        raise drift(_path(where, key), f"is {json_type(value)}, expected a string")
    if expect_id is not None and value != expect_id:
        named = value if len(value) <= _ID_CHARS else value[: _ID_CHARS - 3] + "..."
        raise PollError(PollErrorKind.INVALID_BODY, f"the answer is about job {named!r}, not {expect_id!r}")


def drift(where: str, problem: str) -> PollError:
    """The error for a body that is JSON but not the documented shape."""
    return PollError(PollErrorKind.INVALID_BODY, f"schema drift: {where} {problem}")


def json_type(value: Any) -> str:
    """JSON type name of a decoded value, for drift messages a human can act on."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def opt_str(obj: dict[str, Any], key: str, where: str = "") -> str | None:
    """A string field that may be absent or null; any other type is drift."""
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise drift(_path(where, key), f"is {json_type(value)}, expected a string")


def opt_text(obj: dict[str, Any], key: str, where: str = "") -> str | None:
    """A free-text field: blank and doc-generator placeholders ("Unknown type") count as absent."""
    return text_or_none(opt_str(obj, key, where))


def req_status(obj: dict[str, Any], key: str, where: str = "") -> str:
    """The status field every status body carries; without it the body says nothing about the job."""
    value = obj.get(key)
    if value is None:
        raise drift(_path(where, key), "is missing")
    if not isinstance(value, str):
        raise drift(_path(where, key), f"is {json_type(value)}, expected a string")
    if not value.strip():
        raise drift(_path(where, key), "is empty")
    return value


def opt_int(obj: dict[str, Any], key: str, where: str = "") -> int | None:
    """An int64 field. An integral float is accepted too: JSON has one number type."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise drift(_path(where, key), f"is {json_type(value)}, expected an integer")
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise drift(_path(where, key), "is outside the int64 range")
    return value


def opt_number(obj: dict[str, Any], key: str, where: str = "") -> float | None:
    """A finite number field. NaN/Infinity (which Python's json accepts) and huge ints are drift."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise drift(_path(where, key), f"is {json_type(value)}, expected a number")
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise drift(_path(where, key), "is outside the int64 range")
        return float(value)
    if not math.isfinite(value):
        raise drift(_path(where, key), "is not a finite number")
    return value


def opt_object(obj: dict[str, Any], key: str, where: str = "") -> dict[str, Any] | None:
    value = obj.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise drift(_path(where, key), f"is {json_type(value)}, expected an object")


def as_object(value: Any, where: str) -> dict[str, Any]:
    """An array item or map value that must be an object."""
    if isinstance(value, dict):
        return value
    raise drift(where, f"is {json_type(value)}, expected an object")


def opt_list(obj: dict[str, Any], key: str, where: str = "") -> list[Any]:
    """An array field; absent and null both read as empty (Go marshals a nil slice as null)."""
    value = obj.get(key)
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise drift(_path(where, key), f"is {json_type(value)}, expected an array")


def opt_str_list(obj: dict[str, Any], key: str, where: str = "") -> list[str]:
    items = opt_list(obj, key, where)
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise drift(f"{_path(where, key)}[{index}]", f"is {json_type(item)}, expected a string")
    return items


def opt_timestamp(obj: dict[str, Any], key: str, where: str = "") -> str | None:
    """ISO-8601 UTC or None. Unparseable text is None (not drift): it cannot change the phase."""
    text = opt_str(obj, key, where)
    try:
        return timestamp_or_none(text)
    except (OverflowError, ValueError):
        # A valid date whose UTC conversion leaves datetime's range, e.g. 9999-12-31T23:59-23:59.
        return None


def capped(
    items: Sequence[T], limit: int = LIST_CAP, first: Callable[[T], bool] | None = None
) -> tuple[list[T], int]:
    """At most `limit` items and how many were left out.

    `first` marks the entries a reader acts on (failed files): they are kept ahead of the rest, each
    group in upstream order, so a cap never hides a failure behind fifty healthy files.
    """
    ordered = list(items)
    if first is not None and len(ordered) > limit:
        ordered = [item for item in items if first(item)] + [item for item in items if not first(item)]
    return ordered[:limit], max(0, len(ordered) - limit)


def progress_for(phase: Phase, running: float | None) -> float | None:
    """One progress rule for every source, so renderers and stall detection read it the same way.

    SUCCEEDED is 100 whatever upstream rounded to; FAILED and CANCELED carry no progress (Milvus resets it
    to 0 on failure, so the number would mislead); PENDING and RUNNING show the upstream value, clamped.
    """
    if phase is Phase.SUCCEEDED:
        return 100.0
    if phase in (Phase.FAILED, Phase.CANCELED):
        return None
    return clamp_percent(running)


def _code(value: Any) -> int | str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _excerpt(body: bytes) -> str | None:
    """Readable text of a non-JSON body: an HTML page's <title>, else the text without tags."""
    head = body[:_SCAN_BYTES]
    title = _TITLE.search(head)
    raw = title.group(1) if title else head
    text = _TAG.sub(" ", raw.decode("utf-8", "replace"))
    text = " ".join(text.split())
    if not text:
        return None
    return text if len(text) <= _EXCERPT_CHARS else text[: _EXCERPT_CHARS - 3] + "..."


def error_text(body: bytes) -> tuple[str | None, int | str | None]:
    """Upstream error text and code from any error body shape the sources meet.

    Shapes: Weaviate handlers `{"error":[{"message"}]}`; go-openapi, Zilliz, Milvus and Pinecone
    `{"code","message"}`; Pinecone control plane `{"error":{"code","message"}}`; otherwise raw text or an
    HTML page (proxies, gin's 404). Never raises: it runs on bodies that are already known to be errors.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return _excerpt(body), None
    if not isinstance(data, dict):
        return _excerpt(body), None
    code = _code(data.get("code"))
    err = data.get("error")
    if isinstance(err, list):
        messages = [
            item["message"].strip()
            for item in err
            if isinstance(item, dict) and isinstance(item.get("message"), str) and item["message"].strip()
        ]
        if messages:
            return "; ".join(messages), code
    if isinstance(err, dict) and isinstance(err.get("message"), str) and err["message"].strip():
        return err["message"].strip(), _code(err.get("code")) or code
    if isinstance(err, str) and err.strip():
        return err.strip(), code
    message = data.get("message")
    if isinstance(message, str) and message.strip():
        return message.strip(), code
    return _excerpt(body), code


def raise_http_error(response: HttpResponse) -> NoReturn:
    """Non-2xx: the kind comes from the HTTP status, the message from the body's own error text."""
    text, code = error_text(response.body)
    error = http_status_error(
        response, text or f"HTTP {response.status_code} without an error text in the body"
    )
    if code is not None and code != response.status_code:
        error.api_code = code
    raise error


def is_success(response: HttpResponse) -> bool:
    return 200 <= response.status_code < 300
