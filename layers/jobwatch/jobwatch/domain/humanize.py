"""Durations, percentages and timestamps in words: shared by notes, messages and the CLI."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from jobwatch.domain.text import clean_text

NOT_AVAILABLE = "n/a"


def format_duration(seconds: float | None) -> str:
    """Compact human duration: `45s`, `12m 05s`, `3h 04m 05s`, `2d 03h 04m`."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return NOT_AVAILABLE
    total = int(seconds)
    if total < 60:
        return f"{total}s"
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h {minutes:02d}m"
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s"


def format_progress(progress: float | None) -> str:
    """Percent with at most one decimal, rounded down so a running job never shows `100%`."""
    if progress is None or not math.isfinite(progress):
        return NOT_AVAILABLE
    value = min(100.0, max(0.0, progress))
    if value >= 100.0:
        return "100%"
    floored = math.floor(value * 10) / 10
    return f"{floored:.1f}".removesuffix(".0") + "%"


def parse_timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_timestamp(value: str | None) -> str:
    """`2024-05-01 12:03:04 UTC`; an unparsable value is shown cleaned rather than dropped."""
    parsed = parse_timestamp(value)
    if parsed is not None:
        return parsed.strftime("%Y-%m-%d %H:%M:%S UTC")
    return clean_text(value, 64) if value else NOT_AVAILABLE


def format_in(seconds: float) -> str:
    """A rough time ahead: `under 1 min`, `23 min`, `3 h 05 min`, `2 d 03 h`."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return "under 1 min"
    days, rest = divmod(minutes, 1_440)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours:02d} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min"


def format_eta(eta: str | None, now: str | None) -> str | None:
    """`14:32 UTC (in 23 min)`, with the date when it is another day than `now`; None without an
    estimate (or with one that cannot be read)."""
    at, reference = parse_timestamp(eta), parse_timestamp(now)
    if at is None:
        return None
    if reference is None:
        return at.strftime("%Y-%m-%d %H:%M UTC")
    clock = at.strftime("%H:%M UTC" if at.date() == reference.date() else "%Y-%m-%d %H:%M UTC")
    ahead = (at - reference).total_seconds()
    return f"{clock} (in {format_in(ahead)})" if ahead >= 0 else f"{clock} (passed)"
