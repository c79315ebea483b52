"""What the source tests share: canned responses, parsing that must succeed or fail, specs and facts.

A plain module, not a conftest: the tests in this directory import it by name (pytest puts their
directory on sys.path).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobwatch.domain.errors import PollError
from jobwatch.domain.model import JobSpec, Snapshot
from jobwatch.sources.base import HttpResponse, Source

HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>502 Bad Gateway</h1><hr><center>nginx</center></body></html>"
)


def response(status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> HttpResponse:
    """An HttpResponse; dicts and lists are JSON-encoded, str is UTF-8, bytes are sent as they are."""
    if isinstance(body, bytes):
        raw = body
    elif isinstance(body, str):
        raw = body.encode()
    elif body is None:
        raw = b""
    else:
        raw = json.dumps(body).encode()
    return HttpResponse(status_code=status, body=raw, headers=headers or {})


def parse_ok(source: Source, body: Any, status: int = 200) -> Snapshot:
    """Parse and check the snapshot is publishable as it is: JSON-only, no NaN, round-trips."""
    snapshot = source.parse(response(status, body))
    wire = snapshot.to_wire()
    assert json.loads(json.dumps(wire, allow_nan=False)) == wire
    assert Snapshot.model_validate(wire) == snapshot
    return snapshot


def parse_error(source: Source, resp: HttpResponse) -> PollError:
    with pytest.raises(PollError) as info:
        source.parse(resp)
    return info.value


def spec(source: str, **fields: Any) -> JobSpec:
    values: dict[str, Any] = {"source": source, "endpoint": "https://db.example.com", "job_id": "job-1"}
    values.update(fields)
    return JobSpec(**values)


def facts_dict(source: Source, job: JobSpec, snapshot: Snapshot) -> dict[str, str]:
    facts = source.facts(job, snapshot)
    labels = [fact.label for fact in facts]
    assert len(labels) == len(set(labels)), f"duplicate fact labels: {labels}"
    return {fact.label: fact.value for fact in facts}


# --- hostile bodies --------------------------------------------------------------------------------

_ABSENT = object()


def with_value(body: Any, path: tuple[str, ...], value: Any = _ABSENT) -> Any:
    """A deep copy of `body` with the key at `path` set to `value` (or removed when no value is given)."""
    copy = json.loads(json.dumps(body))
    *parents, key = path
    target = copy
    for name in parents:
        target = target[name]
    if value is _ABSENT:
        target.pop(key, None)
    else:
        target[key] = value
    return copy


def with_duplicate(body: Any, path: tuple[str, ...], first: Any) -> bytes:
    """`body` as JSON in which the object holding `path` names its last key twice: `first`, then the
    body's own value (the last one is what Python's json would keep)."""
    *parents, key = path
    marker = "\x00duplicate\x00"
    copy = json.loads(json.dumps(body))
    holder = copy
    for name in parents[:-1]:
        holder = holder[name]
    inner = holder[parents[-1]] if parents else copy
    pairs = [json.dumps({k: v})[1:-1] for k, v in inner.items() if k != key]
    pairs += [f"{json.dumps(key)}: {json.dumps(first)}", f"{json.dumps(key)}: {json.dumps(inner[key])}"]
    doubled = "{" + ", ".join(pairs) + "}"
    if not parents:
        return doubled.encode()
    holder[parents[-1]] = marker
    return json.dumps(copy).replace(json.dumps(marker), doubled).encode()


def nested(levels: int) -> Any:
    """JSON nesting exactly `levels` deep, alternating objects and arrays: `[{"a": [...]}]`."""
    value: Any = "bottom"
    for level in range(levels):
        value = {"a": value} if level % 2 else [value]
    return value


def depth_of(value: Any) -> int:
    """Nesting depth of decoded JSON ({} and [] each count one level), recursively: for small bodies."""
    if isinstance(value, dict):
        return 1 + max((depth_of(child) for child in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(child) for child in value), default=0)
    return 0
