"""Weaviate backup restore: `GET {endpoint}/v1/backups/{backend}/{id}/restore[?bucket=&path=]`.

Restore goes STARTED -> TRANSFERRING -> TRANSFERRED (files staged, not the end) -> FINALIZING (schema
applied, no longer cancelable) -> SUCCESS or FAILED, or CANCELLING -> CANCELED. The status response has
no timestamps, so started_at/completed_at stay None and details say `timestampsObserved: true`: any
duration shown comes from when jobwatch saw each status.
"""

from __future__ import annotations

from typing import ClassVar

from jobwatch.sources._weaviate import BackupStatusSource
from jobwatch.sources.base import Source


class WeaviateRestoreSource(BackupStatusSource):
    """A backup being restored into the cluster."""

    name: ClassVar[str] = "weaviate-restore"
    title: ClassVar[str] = "Weaviate restore"
    success_word: ClassVar[str] = "restore finished"
    path_suffix: ClassVar[tuple[str, ...]] = ("restore",)
    has_timestamps: ClassVar[bool] = False


SOURCE: Source = WeaviateRestoreSource()
