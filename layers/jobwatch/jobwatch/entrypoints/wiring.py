"""What every function's entry point shares: AWS-backed adapters built once per process, and the
remaining-time callable of a Lambda context. Clients come from `adapters.aws` (cached per process)."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from typing import Any

from jobwatch.adapters import aws
from jobwatch.adapters.clock import SystemClock
from jobwatch.adapters.dynamodb.jobs import DynamoJobStore
from jobwatch.adapters.dynamodb.ledger import DynamoDeliveryLedger
from jobwatch.adapters.dynamodb.watches import DynamoWatchStore
from jobwatch.adapters.secrets import SecretResolver
from jobwatch.domain.shards import layout_of
from jobwatch.settings import StoreSettings


def remaining(context: Any) -> Callable[[], float]:
    """Seconds left in this invocation (infinite outside Lambda)."""
    getter = getattr(context, "get_remaining_time_in_millis", None)
    if getter is None:
        return lambda: math.inf
    return lambda: float(getter()) / 1000.0


@cache
def secret_resolver(cache_s: float) -> SecretResolver:
    """One cache of secret values per process (values are never logged)."""
    return SecretResolver(aws.secretsmanager(), cache_s)


def job_store(settings: StoreSettings) -> DynamoJobStore:
    return DynamoJobStore(
        aws.dynamodb(), settings.table, retention_days=settings.retention_days, layout=layout_of(settings)
    )


def delivery_ledger(settings: StoreSettings) -> DynamoDeliveryLedger:
    return DynamoDeliveryLedger(aws.dynamodb(), settings.table, retention_days=settings.retention_days)


def watch_store(settings: StoreSettings) -> DynamoWatchStore:
    return DynamoWatchStore(aws.dynamodb(), settings.table)


CLOCK = SystemClock()
