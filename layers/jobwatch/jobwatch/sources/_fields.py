"""Field normalizers shared by sources: the upstream traps listed in shared/reference/*/NOTES.md."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

# Doc generators render nullable fields as this placeholder (Zilliz v1 seed sample); it means null.
_NULL_PLACEHOLDERS = frozenset({"unknown type", "null", "none", ""})


def text_or_none(value: Any) -> str | None:
    """A string field that may be null, empty, or a doc-generator placeholder."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    stripped = text.strip()
    if stripped.lower() in _NULL_PLACEHOLDERS:
        return None
    return stripped


def timestamp_or_none(value: Any) -> str | None:
    """ISO-8601 UTC string, or None for null, empty, placeholders and Go's zero time (year < 1970)."""
    text = text_or_none(value)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.year < 1970:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC).isoformat().replace("+00:00", "Z")
    except (ValueError, OverflowError):  # unparsable, or out of range once shifted to UTC
        return None


def number_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def int_or_none(value: Any) -> int | None:
    number = number_or_none(value)
    if number is None or number != number or number in (float("inf"), float("-inf")):
        return None
    return int(number)


def clamp_percent(value: float | None) -> float | None:
    """Progress is shown 0..100; upstream bugs have produced negatives (milvus #31221)."""
    if value is None:
        return None
    return round(min(100.0, max(0.0, value)), 2)
