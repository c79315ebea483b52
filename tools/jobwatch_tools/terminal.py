"""Pure text rendering for the operator CLI: progress bars, relative times, ETAs, snapshot details.

Kept free of I/O and of rich so each piece is unit-tested on its own and the plain (piped) output and
the rich (terminal) output say the same thing. Timestamps come in as the store's ISO strings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from jobwatch.domain.eta import NoEstimate, seconds_left
from jobwatch.domain.humanize import format_duration, format_eta, format_progress, parse_timestamp

BAR_WIDTH = 20
MAX_LISTED = 5
"""List values of a detail show this many entries, then `+N more` (a terminal line, not a report)."""

_UNITS = ((86_400, "day"), (3_600, "h"), (60, "min"))


def clamp_progress(progress: float | None) -> float | None:
    """Percent in 0..100, or None when unknown (NaN and infinities are unknown too)."""
    if progress is None or not math.isfinite(progress):
        return None
    return min(100.0, max(0.0, progress))


def progress_bar(progress: float | None, width: int = BAR_WIDTH) -> str:
    """`[#####---------------]` in ASCII so it survives any pipe and log; `[?...]` when unknown."""
    value = clamp_progress(progress)
    if value is None:
        return "[" + "?" * width + "]"
    filled = math.floor(value / 100 * width)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def progress_cell(progress: float | None) -> str:
    """`40% [########------------]`: the percent first so `split()` finds it as one word."""
    return f"{format_progress(progress)} {progress_bar(progress)}"


def seconds_between(start: str | None, end: datetime) -> float | None:
    parsed = parse_timestamp(start)
    return None if parsed is None else (end - parsed).total_seconds()


def relative_time(value: str | None, now: datetime) -> str:
    """`just now`, `45 s ago`, `3 min ago`, `2 h ago`, `4 days ago` (`in 3 min` ahead of the clock)."""
    seconds = seconds_between(value, now)
    if seconds is None:
        return value or "never"
    ahead = seconds < 0
    amount = abs(seconds)
    if amount < 5:
        return "just now"
    text = _amount(amount)
    return f"in {text}" if ahead else f"{text} ago"


def _amount(seconds: float) -> str:
    for size, unit in _UNITS:
        if seconds >= size:
            count = int(seconds // size)
            plural = "s" if unit == "day" and count != 1 else ""
            return f"{count} {unit}{plural}"
    return f"{int(seconds)} s"


def eta_seconds(progress: float | None, elapsed_s: float | None) -> float | None:
    """Linear estimate of the time left: the rate since the start (0 % then), kept up. The domain's
    rule (`jobwatch.domain.eta.seconds_left`), so `follow` and messages agree: None when it cannot be
    told (no progress yet, no elapsed time, at 100 %, or more than 30 days away)."""
    value = clamp_progress(progress)
    if value is None or elapsed_s is None:
        return None
    left = seconds_left(0.0, value, elapsed_s)
    return None if isinstance(left, NoEstimate) else left


def eta_text(progress: float | None, elapsed_s: float | None) -> str:
    left = eta_seconds(progress, elapsed_s)
    return "ETA unknown" if left is None else f"ETA {format_duration(left)}"


def stored_eta_text(eta: str | None, note: str | None, now: datetime) -> str:
    """A tracked job's stored estimate (`jobwatch show`/`list`): `14:32 UTC (in 23 min)`,
    `no estimate (progress flat)`, or empty when the job is not running (neither is set)."""
    if eta is not None:
        return format_eta(eta, now.isoformat()) or eta
    return f"no estimate ({note})" if note else ""


def detail_label(key: str) -> str:
    """`objectsExported` -> `objects exported`, `sizeGiB` -> `size GiB`: a readable label."""
    words = _WORD.findall(key)
    if not words:
        return key
    return " ".join(word if any(c.isupper() for c in word[1:]) else word.lower() for word in words)


_WORD = re.compile(r"[KMGTP]iB|[A-Z]{2,}(?![a-z])|[A-Z]?[a-z0-9]+|[A-Z]")
"""camelCase and snake_case words; binary units (`GiB`) and acronyms (`ID`) stay whole."""


def detail_value(value: Any) -> str:
    """One detail value on one line: counts with separators, lists shortened, mappings as k=v."""
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "-"}[value]
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_scalar(v)}" for k, v in sorted(value.items())) or "-"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return _listed(value)
    return str(value)


def _scalar(value: Any) -> str:
    """A nested value kept short: deeper structures are only counted."""
    if isinstance(value, Mapping):
        return f"{{{len(value)} fields}}"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return f"[{len(value)} items]"
    return detail_value(value)


def _listed(values: Sequence[Any]) -> str:
    shown = [_scalar(v) for v in values[:MAX_LISTED]]
    more = len(values) - len(shown)
    return ", ".join(shown + ([f"+{more} more"] if more > 0 else [])) or "(none)"


def detail_lines(details: Mapping[str, Any], indent: str = "  ") -> list[str]:
    """`details` as aligned `label: value` lines, keys sorted, for `show` and `check`."""
    if not details:
        return []
    labels = {key: detail_label(key) for key in details}
    width = max(len(label) for label in labels.values()) + 1
    return [
        f"{indent}{(labels[key] + ':').ljust(width)} {detail_value(details[key])}" for key in sorted(details)
    ]


def volume_text(details: Mapping[str, Any]) -> str | None:
    """Rows, objects or records so far (with the total when the source says it), or None."""
    done, total = _count(details.get("importedRows")), _count(details.get("totalRows"))
    if done is not None:
        return f"rows {done:,}" + (f"/{total:,}" if total else "")
    for key, word in (("objectsExported", "objects"), ("recordsImported", "records")):
        count = _count(details.get(key))
        if count is not None:
            return f"{word} {count:,}"
    return None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
