"""What every function's entry point shares: AWS clients, stores and the secret cache, built once per
process, and the remaining-time callable of a Lambda context.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

from jobwatch.adapters import aws
from jobwatch.adapters.dynamodb.jobs import JobStore
from jobwatch.adapters.secrets import SecretResolver
from jobwatch.settings import Settings, get_settings

if TYPE_CHECKING:  # the poller's cold start does not pay for the Slack side
    pass


def _remaining(context: Any) -> Callable[[], float]:
    getter = getattr(context, "get_remaining_time_in_millis", None)
    if getter is None:
        return lambda: math.inf
    return lambda: float(getter()) / 1000.0


@cache
def secret_resolver() -> SecretResolver:
    return SecretResolver(aws.secretsmanager(), get_settings().secret_cache_s)


def job_store(settings: Settings) -> JobStore:
    return JobStore(aws.dynamodb(), settings.table, retention_days=settings.retention_days)
