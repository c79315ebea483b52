"""The real clock (`ports.Clock`)."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def utc_iso(epoch_s: float) -> str:
    """ISO 8601 UTC with milliseconds and `Z`: the form every stored and published timestamp has."""
    moment = datetime.fromtimestamp(epoch_s, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SystemClock:
    def now(self) -> float:
        return time.time()

    def now_iso(self) -> str:
        return utc_iso(time.time())
