"""Weaviate backup creation: `GET {endpoint}/v1/backups/{backend}/{id}[?bucket=&path=]`.

Statuses STARTED, TRANSFERRING, TRANSFERRED, FINALIZING and CANCELLING are all still running (a backup
can even stay STARTED for good after a restart at an override location, hence stall detection);
SUCCESS, FAILED and CANCELED are terminal. `size` (GiB before compression) appears once finished.
The parsing is shared with restore in `_weaviate.BackupStatusSource`.
"""

from __future__ import annotations

from typing import ClassVar

from jobwatch.sources._weaviate import BackupStatusSource
from jobwatch.sources.base import Source


class WeaviateBackupSource(BackupStatusSource):
    """A backup being written to a backup backend (filesystem, s3, gcs, azure)."""

    name: ClassVar[str] = "weaviate-backup"
    title: ClassVar[str] = "Weaviate backup"
    success_word: ClassVar[str] = "backup finished"


SOURCE: Source = WeaviateBackupSource()
