"""The `{code, message, data}` envelope of Zilliz Cloud (v1, v2) and Milvus REST, and the v2 job body.

Why one module: all three APIs answer most errors with HTTP 200 and a non-success body code, and the
success code is 200 on Zilliz v1 but 0 on v2/Milvus, with docs mixing them (milvus/NOTES.md §0.5), so
one check accepts both. Zilliz v2 `getProgress` and Milvus `describe` return the same job body (Zilliz
Cloud runs Milvus), read once here. A job failure is a *successful* envelope whose data says Failed; it
is never turned into an API error, and an API error is never turned into a failed job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.domain.model import Phase, Snapshot
from jobwatch.sources import _facts
from jobwatch.sources._fields import clamp_percent
from jobwatch.sources._shape import (
    as_object,
    capped,
    drift,
    error_text,
    is_success,
    json_type,
    load_object,
    opt_int,
    opt_list,
    opt_number,
    opt_text,
    opt_timestamp,
    progress_for,
    req_status,
)
from jobwatch.sources.base import Fact, HttpResponse, http_status_error, retry_after_seconds

SUCCESS_CODES = frozenset({0, 200})


@dataclass(frozen=True, slots=True)
class CodeKinds:
    """Body codes that mean something more specific than a generic API error, per product."""

    auth: frozenset[int] = frozenset()
    not_found: frozenset[int] = frozenset()
    rate_limited: frozenset[int] = frozenset()

    def kind(self, code: int) -> PollErrorKind | None:
        if code in self.auth:
            return PollErrorKind.AUTH
        if code in self.not_found:
            return PollErrorKind.NOT_FOUND
        if code in self.rate_limited:
            return PollErrorKind.RATE_LIMITED
        return None


ZILLIZ_CODES = CodeKinds(auth=frozenset({80001, 80002, 21119}))
"""Observed Zilliz auth codes: v1 80001 invalid token / 80002 token not found, v2 21119 illegal API key.
No authoritative Zilliz code table exists (NOTES §4); both planes share one set, a code cannot mean
"bad key" on one and something else on the other."""

MILVUS_CODES = CodeKinds(
    auth=frozenset({1400, 1401, 1800}),
    not_found=frozenset({2100}),
    rate_limited=frozenset({8, 1807}),
)
"""merr codes: 1400 not authenticated, 1401 privilege not permitted, 1800 user hasn't authenticated;
2100 "import job does not exist" (unknown or garbage-collected job: gone, not failed); 8 rate limit
exceeded, 1807 request rejected by the HTTP limiter (sent with HTTP 200 by default)."""


def _int_code(value: Any) -> int | None:
    """Body codes are integers; a decimal string is accepted because the Zilliz v2 spec types it string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 20:
        return int(value.strip())
    return None


def unwrap(response: HttpResponse, codes: CodeKinds) -> dict[str, Any]:
    """`data` of a successful envelope, or the PollError the response means."""
    if not is_success(response):
        text, raw_code = error_text(response.body)
        error = http_status_error(
            response, text or f"HTTP {response.status_code} without an error text in the body"
        )
        code = _int_code(raw_code)
        if code is not None:
            error.api_code = code
            refined = codes.kind(code)
            if error.kind is PollErrorKind.HTTP_STATUS and refined is not None:
                # e.g. HTTP 500 + 2100 when newer Milvus maps statuses: the code is the more specific fact.
                error.kind = refined
        raise error
    body = load_object(response)
    message = body.get("message")
    message = message.strip() if isinstance(message, str) and message.strip() else None
    if "code" not in body:
        raise drift("code", "is missing" + (f" (message: {message})" if message else ""))
    code = _int_code(body["code"])
    if code is None:
        raise drift("code", f"is {json_type(body['code'])}, expected an integer")
    if code not in SUCCESS_CODES:
        kind = codes.kind(code) or PollErrorKind.API_ERROR
        raise PollError(
            kind,
            message or f"error code {code} without a message",
            http_status=response.status_code,
            api_code=code,
            retry_after_s=retry_after_seconds(response.headers),
        )
    data = body.get("data")
    if not isinstance(data, dict):
        hint = f" (message: {message})" if message else ""
        raise drift("data", f"is {json_type(data)}, expected an object{hint}")
    return data


def _file(entry: dict[str, Any], where: str) -> dict[str, Any]:
    return {
        "fileName": opt_text(entry, "fileName", where),
        "fileSize": opt_int(entry, "fileSize", where),
        "state": opt_text(entry, "state", where),
        "progress": clamp_percent(opt_number(entry, "progress", where)),
        "importedRows": opt_int(entry, "importedRows", where),
        "totalRows": opt_int(entry, "totalRows", where),
        "completeTime": opt_timestamp(entry, "completeTime", where),
        "error": opt_text(entry, "reason", where),
    }


def v2_job_snapshot(data: dict[str, Any], phases: Mapping[str, Phase]) -> Snapshot:
    """Snapshot of a v2 `jobs/import` progress body (Zilliz v2 getProgress, Milvus describe).

    `progress` is already 0..100 (unlike v1's fraction); pre-GA Milvus sent negatives, so it is clamped.
    `completeTime` is "" (Milvus) or absent while running, and `reason` "" (Zilliz) or absent (Milvus).
    `allFilesCompleted` records that every listed file says Completed: Milvus keeps the job Importing at
    80-90 % after that while it sorts and builds indexes (milvus #39348), which stall detection must know.
    """
    state = req_status(data, "state", "data")
    phase = phases.get(state)
    known = phase is not None
    phase = phase or Phase.RUNNING
    files = [
        _file(as_object(raw, f"data.details[{index}]"), f"data.details[{index}]")
        for index, raw in enumerate(opt_list(data, "details", "data"))
    ]
    collection = opt_text(data, "collectionName", "data")
    kept, left_out = capped(files, first=lambda item: item["state"] == "Failed")
    details: dict[str, Any] = {
        "collectionName": collection,
        "collections": [collection] if collection else [],
        "fileName": opt_text(data, "fileName", "data"),
        "fileSize": opt_int(data, "fileSize", "data"),
        "importedRows": opt_int(data, "importedRows", "data"),
        "totalRows": opt_int(data, "totalRows", "data"),
        "files": kept,
        "filesTotal": len(files),
        "filesDone": sum(1 for item in files if item["state"] == "Completed"),
        "filesFailed": sum(1 for item in files if item["state"] == "Failed"),
        "allFilesCompleted": bool(files) and all(item["state"] == "Completed" for item in files),
    }
    if left_out:
        details["filesTruncated"] = left_out
    return Snapshot(
        phase=phase,
        status=state,
        progress=progress_for(phase, opt_number(data, "progress", "data")),
        error=opt_text(data, "reason", "data"),
        started_at=None,  # the v2 body has no start time
        completed_at=opt_timestamp(data, "completeTime", "data"),
        details=details,
        status_known=known,
    )


def v2_facts(snapshot: Snapshot) -> list[Fact]:
    """Rows, files, size and failed files: what a reader of a v2 import message wants."""
    details = snapshot.details
    facts = _facts.fact("Rows", _facts.rows(details.get("importedRows"), details.get("totalRows")))
    facts += _facts.file_facts(details, lambda item: item.get("state") == "Failed")
    return facts
