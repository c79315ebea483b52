"""The one place that sets up logging, tracing and metrics (Powertools).

Structured JSON logs; every line about a job carries `jobKey`, `jobId` and `source` through
`job_fields()`, passed per call because polls run concurrently and must not share appended keys.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from jobwatch.model import JobSpec

SERVICE = "jobwatch"
NAMESPACE = "Jobwatch"

# stderr: in Lambda both streams reach CloudWatch; locally stdout stays free for command output.
logger = Logger(service=SERVICE, logger_handler=logging.StreamHandler(sys.stderr))
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

__all__ = ["MetricUnit", "job_fields", "logger", "metrics", "tracer"]


def job_fields(spec: JobSpec, **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"jobKey": spec.key, "jobId": spec.job_id, "source": spec.source}
    fields.update(extra)
    return fields
