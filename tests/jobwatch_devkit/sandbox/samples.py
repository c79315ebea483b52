"""The sandbox's built-in scenario: a few jobs of every source walking through their real statuses.

Why Python data and not a packaged JSON file: the devkit ships no package data, and this module is the
scenario file format exactly (`json.dumps(DEFAULT_SCENARIO)` is a valid `--scenario` file; the
sandbox writes it to `.sandbox/scenario.json` for people to copy and edit). Every status request
serves a job's next step; the last step repeats. The README's examples use these ids.
"""

from __future__ import annotations

from typing import Any

SANDBOX_API_KEY = "sandbox-key"
"""The API key jobs with `apiKey` demand; secret SANDBOX_SECRET holds it."""
SANDBOX_SECRET = "jobwatch/sandbox-key"

_ROWS = 2_400_000
_DIM_ERROR = "file 2.parquet: field 'vector' has dim 768, expected 1536"

DEFAULT_SCENARIO: dict[str, Any] = {
    "secrets": {SANDBOX_SECRET: SANDBOX_API_KEY},
    "jobs": [
        {
            "source": "weaviate-export",
            "jobId": "nightly",
            "backend": "s3",
            "collection": "Article",
            "apiKey": SANDBOX_API_KEY,
            "steps": [
                "STARTED",
                {"status": "TRANSFERRING", "objects": 120_000},
                {"status": "TRANSFERRING", "objects": 640_000},
                {"status": "SUCCESS", "objects": 1_000_090},
            ],
        },
        {
            "source": "weaviate-backup",
            "jobId": "backup-2026-01-15",
            "backend": "s3",
            "collection": "Article",
            "steps": ["STARTED", "TRANSFERRING", {"status": "SUCCESS", "size": 48.62}],
        },
        {
            "source": "weaviate-restore",
            "jobId": "backup-2026-01-14",
            "backend": "s3",
            "collection": "Article",
            "steps": ["STARTED", "TRANSFERRING", "TRANSFERRED", "FINALIZING", "SUCCESS"],
        },
        {
            "source": "zilliz-import-v1",
            "jobId": "job-123",
            "clusterId": "in01-abc",
            "collection": "medium_articles",
            "apiKey": SANDBOX_API_KEY,
            "steps": [{"ready": 0.0}, {"ready": 0.4}, {"ready": 0.8}, {"ready": 1.0}],
        },
        {
            "source": "zilliz-import-v1",
            "jobId": "job-456",
            "clusterId": "in01-abc",
            "collection": "medium_articles",
            "apiKey": SANDBOX_API_KEY,
            "note": "fails: a vector dimension mismatch",
            "steps": [{"ready": 0.0}, {"ready": 0.2}, {"ready": 0.2, "error": _DIM_ERROR}],
        },
        {
            "source": "zilliz-import-v2",
            "jobId": "job-789",
            "clusterId": "in03-def",
            "collection": "medium_articles",
            "apiKey": SANDBOX_API_KEY,
            "steps": [
                {"status": "Pending", "totalRows": 100_000},
                {
                    "status": "Importing",
                    "progress": 45,
                    "totalRows": 100_000,
                    "extra": {"importedRows": 45_000},
                },
                {"status": "Completed", "totalRows": 100_000, "extra": {"importedRows": 100_000}},
            ],
        },
        {
            "source": "milvus-import",
            "jobId": "458021734452345601",
            "collection": "events",
            "steps": [
                {"status": "Pending", "totalRows": _ROWS},
                {"status": "Importing", "progress": 40, "rows": _ROWS * 40 // 100, "totalRows": _ROWS},
                {"status": "Importing", "progress": 80, "rows": _ROWS, "totalRows": _ROWS},
                {"status": "Completed", "progress": 100, "rows": _ROWS, "totalRows": _ROWS},
            ],
        },
        {
            "source": "pinecone-import",
            "jobId": "101",
            "collection": "articles",
            "steps": [
                "Pending",
                {"status": "InProgress", "progress": 35.5, "rows": 355_000},
                {"status": "Completed", "progress": 100, "rows": 1_000_000},
            ],
        },
    ],
}
