"""Formatting for `facts()` lines, so every source writes counts, sizes and lists the same way.

Inputs come from `Snapshot.details`, which is stored JSON that other versions of jobwatch may have
written; every helper therefore accepts `Any` and returns None for values it cannot format.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jobwatch.sources.base import Fact

_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_MAX_LISTED = 3


def as_int(value: Any) -> int | None:
    """An integer from details, or None (booleans are not counts)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def count(value: Any) -> str | None:
    """`520161` -> `520,161`."""
    number = as_int(value)
    return None if number is None else f"{number:,}"


def byte_size(value: Any) -> str | None:
    """Binary units with one decimal (`26571700` -> `25.3 MiB`); object stores and consoles use these."""
    number = as_int(value)
    if number is None or not 0 <= number < 2**63:
        return None
    size = float(number)
    for unit in _BYTE_UNITS:
        if size < 1024 or unit == _BYTE_UNITS[-1]:
            return f"{number} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return None  # pragma: no cover - the loop always returns


def progress_of(done: Any, total: Any, *extras: tuple[Any, str]) -> str | None:
    """`5/7 done · 1 failed`: the part that finished well, then each non-zero extra count."""
    done_n, total_n = as_int(done), as_int(total)
    if done_n is None or total_n is None or total_n <= 0:
        return None
    parts = [f"{done_n:,}/{total_n:,} done"]
    for value, label in extras:
        number = as_int(value)
        if number:
            parts.append(f"{number:,} {label}")
    return " · ".join(parts)


def listing(entries: Any, describe: Callable[[dict[str, Any]], str | None], truncated: Any = 0) -> str | None:
    """The first few entries of a details list, then `+N more` (a message is not a report)."""
    hidden = max(0, as_int(truncated) or 0)
    if not isinstance(entries, list) or not entries:
        return f"{hidden:,} not listed" if hidden else None
    described = [describe(entry) for entry in entries[:_MAX_LISTED] if isinstance(entry, dict)]
    shown = [text for text in described if text]
    if not shown:
        return None
    more = max(0, len(entries) - _MAX_LISTED) + hidden
    text = "; ".join(shown)
    return f"{text}; +{more:,} more" if more > 0 else text


def with_reason(name: Any, reason: Any) -> str | None:
    """`name (reason)`, or just the name: one entry of a failed-file / failed-shard list."""
    if not isinstance(name, str) or not name:
        return None
    if isinstance(reason, str) and reason:
        return f"{name} ({reason})"
    return name


def fact(label: str, value: str | None) -> list[Fact]:
    """Zero or one fact, so callers can write `facts += fact(...)` without None checks."""
    return [] if value is None else [Fact(label, value)]


def rows(imported: Any, total: Any) -> str | None:
    """`520,161 of 1,000,000`; either side alone when the other is unknown."""
    imported_n, total_n = as_int(imported), as_int(total)
    if not imported_n and not total_n:
        return None  # unknown, or the "0 of 0" Milvus reports after a failure
    if imported_n is not None and total_n:
        return f"{imported_n:,} of {total_n:,}"
    if total_n:
        return f"{total_n:,} total"
    return f"{imported_n or 0:,}"


def file_facts(details: dict[str, Any], failed: Callable[[dict[str, Any]], bool]) -> list[Fact]:
    """`Files`, `Size` and `Failed files` lines shared by the Zilliz/Milvus import sources."""
    facts = fact(
        "Files",
        progress_of(
            details.get("filesDone"), details.get("filesTotal"), (details.get("filesFailed"), "failed")
        ),
    )
    facts += fact("Size", byte_size(details.get("fileSize")))
    files = details.get("files")
    failed_files = [
        item for item in (files if isinstance(files, list) else []) if isinstance(item, dict) and failed(item)
    ]
    # Files beyond the 50 kept in details are only counted; `listing` adds them to "+N more".
    hidden = max(0, (as_int(details.get("filesFailed")) or 0) - len(failed_files))
    facts += fact(
        "Failed files",
        listing(failed_files, lambda item: with_reason(item.get("fileName"), item.get("error")), hidden),
    )
    return facts
