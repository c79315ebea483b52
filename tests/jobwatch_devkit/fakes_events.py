"""An in-memory EventBridge `events` client (PutEvents only), for the component tier.

It checks entries the way EventBridge does (at most 10 per call, `Source` not `aws.`, `DetailType`
1-128 characters, `Detail` a JSON object, each entry under 256 KB as EventBridge counts it) and
answers like it: a refused entry is a *partial failure* (`FailedEntryCount` and the entry's
`ErrorCode`), not an exception. Scripted faults: `fail_entries(code)` makes the next calls' entries
fail, `raise_error(code)` makes the next calls raise botocore's `ClientError`.
"""

from __future__ import annotations

import json
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

MAX_ENTRIES = 10
MAX_ENTRY_BYTES = 262_144


@dataclass(frozen=True)
class _Fault:
    code: str
    message: str
    raise_it: bool
    status: int


def _size(entry: Mapping[str, Any]) -> int:
    size = 14 if entry.get("Time") is not None else 0
    size += sum(len(str(entry.get(name) or "").encode()) for name in ("Source", "DetailType", "Detail"))
    return size + sum(len(str(r).encode()) for r in entry.get("Resources") or ())


def entry_problem(entry: Mapping[str, Any]) -> tuple[str, str] | None:
    """(ErrorCode, ErrorMessage) EventBridge would answer for this entry; None if it takes it."""
    source, detail_type = str(entry.get("Source") or ""), str(entry.get("DetailType") or "")
    if not source or source.startswith("aws."):
        return "InvalidArgument", "Parameter Source is not valid."
    if not 0 < len(detail_type) <= 128:
        return "InvalidArgument", "Parameter DetailType is not valid."
    try:
        detail = json.loads(str(entry.get("Detail")))
    except ValueError:
        return "MalformedDetail", "Detail is malformed."
    if not isinstance(detail, dict):
        return "MalformedDetail", "Detail must be a JSON object."
    if _size(entry) >= MAX_ENTRY_BYTES:
        return "InvalidArgument", "Total size of the entries in the request is over the limit."
    return None


def _client_error(code: str, message: str, status: int) -> ClientError:
    """What botocore raises for an error answer."""
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "PutEvents")


class FakeEventBridge:
    """boto3's `events` client, as far as `put_events` goes. `events` holds every accepted entry."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.calls = 0
        self._faults: deque[_Fault] = deque()

    def fail_entries(self, code: str, message: str = "scripted failure", *, times: int = 1) -> None:
        """The next `times` calls answer normally but fail their entries with `code`."""
        self._faults.extend([_Fault(code, message, False, 200)] * times)

    def raise_error(
        self, code: str, message: str = "scripted error", *, status: int = 400, times: int = 1
    ) -> None:
        """The next `times` calls raise `ClientError` with `code` (as botocore does for a 4xx/5xx)."""
        self._faults.extend([_Fault(code, message, True, status)] * times)

    def put_events(self, *, Entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        self.calls += 1
        fault = self._faults.popleft() if self._faults else None
        if fault is not None and fault.raise_it:
            raise _client_error(fault.code, fault.message, fault.status)
        if not 0 < len(Entries) <= MAX_ENTRIES:
            raise _client_error("ValidationException", "1 to 10 entries per call", 400)
        results: list[dict[str, Any]] = []
        for entry in Entries:
            problem = (fault.code, fault.message) if fault is not None else entry_problem(entry)
            if problem is not None:
                results.append({"ErrorCode": problem[0], "ErrorMessage": problem[1]})
                continue
            event_id = str(uuid.uuid4())
            self.events.append({**entry, "EventId": event_id})
            results.append({"EventId": event_id})
        failed = sum(1 for result in results if "ErrorCode" in result)
        return {"FailedEntryCount": failed, "Entries": results}

    def details(self) -> list[dict[str, Any]]:
        """The `Detail` of every accepted event, decoded."""
        return [json.loads(event["Detail"]) for event in self.events]
