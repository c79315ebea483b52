"""Weaviate export (v1.37+): `GET {endpoint}/v1/export/{backend}/{id}` with `Authorization: Bearer <key>`.

Progress: 100 on SUCCESS. While running it is the share of shards that finished (SUCCESS, FAILED or
SKIPPED over all shards listed in `shardStatus`), because Weaviate reports no total object count that
`objectsExported` could be compared with; it is None while `shardStatus` is absent (no node report yet).
FAILED and CANCELED carry no progress (see `_shape.progress_for`).

Traps handled (shared/reference/weaviate/NOTES.md): `completedAt` is Go's zero date while running;
`tookInMs` and `objectsExported` are omitted when 0; a CANCELED export carries `error` ("export was
canceled"), kept as the error while the phase stays CANCELED; GET never returns STARTED today but the
docs list it, so it is RUNNING.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from jobwatch.domain.model import JobSpec, Phase, Snapshot
from jobwatch.sources import _facts
from jobwatch.sources._shape import (
    as_object,
    capped,
    opt_int,
    opt_object,
    opt_str,
    opt_str_list,
    opt_text,
    opt_timestamp,
    progress_for,
)
from jobwatch.sources._weaviate import base_details, build_request, read_status, status_body
from jobwatch.sources.base import Fact, HttpRequest, HttpResponse, Source

_PHASES: Mapping[str, Phase] = {
    "STARTED": Phase.RUNNING,
    "TRANSFERRING": Phase.RUNNING,
    "SUCCESS": Phase.SUCCEEDED,
    "FAILED": Phase.FAILED,
    "CANCELED": Phase.CANCELED,
}

_SHARD_COUNTERS: Mapping[str, str] = {
    "TRANSFERRING": "transferring",
    "SUCCESS": "succeeded",
    "FAILED": "failed",
    "SKIPPED": "skipped",
}
_SHARD_FINISHED = ("succeeded", "failed", "skipped")


def _shard_details(shard_status: dict[str, Any]) -> tuple[dict[str, Any], float | None]:
    """Counts, object total and failed/skipped lists from `shardStatus` (className -> shard -> progress)."""
    counts = dict.fromkeys(("total", "transferring", "succeeded", "failed", "skipped"), 0)
    unknown = 0
    objects = 0
    failed: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for collection, shards in shard_status.items():
        for shard, raw in as_object(shards, f"shardStatus.{collection}").items():
            where = f"shardStatus.{collection}.{shard}"
            entry = as_object(raw, where)
            status = opt_str(entry, "status", where)
            objects += opt_int(entry, "objectsExported", where) or 0
            counts["total"] += 1
            counter = _SHARD_COUNTERS.get(status or "")
            if counter is None:
                unknown += 1  # a shard status newer than this code: counted, never guessed
            else:
                counts[counter] += 1
            if status == "FAILED":
                failed.append(
                    {"collection": collection, "shard": shard, "error": opt_text(entry, "error", where)}
                )
            elif status == "SKIPPED":
                skipped.append(
                    {"collection": collection, "shard": shard, "reason": opt_text(entry, "skipReason", where)}
                )
    shards_summary: dict[str, Any] = dict(counts)
    if unknown:
        shards_summary["unknown"] = unknown
    details: dict[str, Any] = {"objectsExported": objects, "shards": shards_summary}
    for key, items in (("failedShards", failed), ("skippedShards", skipped)):
        kept, left_out = capped(items)
        details[key] = kept
        if left_out:
            details[f"{key}Truncated"] = left_out
    total = counts["total"]
    percent = 100.0 * sum(counts[key] for key in _SHARD_FINISHED) / total if total else None
    return details, percent


class WeaviateExportSource:
    """Parquet export of collections to object storage; one export per cluster at a time."""

    name: ClassVar[str] = "weaviate-export"
    title: ClassVar[str] = "Weaviate export"
    required_fields: ClassVar[tuple[str, ...]] = ("backend",)
    path_fields: ClassVar[tuple[str, ...]] = ("backend", "job_id")
    success_word: ClassVar[str] = "export finished"
    max_requests_per_second: ClassVar[float | None] = None
    """None documented; the server flushes shard progress every 10 s, so faster polls gain nothing."""

    def build_request(self, spec: JobSpec, api_key: str | None) -> HttpRequest:
        """No bucket/path parameters exist for exports: the location is server configuration."""
        return build_request(spec, api_key, "export")

    def parse(self, response: HttpResponse, expect_id: str | None = None) -> Snapshot:
        body = status_body(response, expect_id)
        status, phase, known = read_status(body, _PHASES)
        details = base_details(body)
        details["collections"] = opt_str_list(body, "classes")
        took = opt_int(body, "tookInMs")
        if took is not None:
            details["tookInMs"] = took
        running: float | None = None
        shard_status = opt_object(body, "shardStatus")
        if shard_status is not None:  # absent for CANCELED and for a failure before any node report
            shard_details, running = _shard_details(shard_status)
            details.update(shard_details)
        return Snapshot(
            phase=phase,
            status=status,
            progress=progress_for(phase, running),
            error=opt_text(body, "error"),
            started_at=opt_timestamp(body, "startedAt"),
            completed_at=opt_timestamp(body, "completedAt"),
            details=details,
            status_known=known,
        )

    def facts(self, spec: JobSpec, snapshot: Snapshot) -> list[Fact]:
        details = snapshot.details
        shards = details.get("shards")
        shards = shards if isinstance(shards, dict) else {}
        facts = _facts.fact("Objects exported", _facts.count(details.get("objectsExported")))
        facts += _facts.fact(
            "Shards",
            _facts.progress_of(
                shards.get("succeeded"),
                shards.get("total"),
                (shards.get("failed"), "failed"),
                (shards.get("skipped"), "skipped"),
            ),
        )
        facts += _facts.fact(
            "Failed shards",
            _facts.listing(
                details.get("failedShards"),
                lambda entry: _facts.with_reason(
                    f"{entry.get('collection')}/{entry.get('shard')}", entry.get("error")
                ),
                details.get("failedShardsTruncated"),
            ),
        )
        return facts


SOURCE: Source = WeaviateExportSource()
